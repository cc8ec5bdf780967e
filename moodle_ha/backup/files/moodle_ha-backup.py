#!/usr/bin/python3
# Managed by Salt (moodle_ha.backup). Local changes are overwritten.
"""
moodle_ha-backup: consistent backups of a Galera + gluster Moodle, and their restore.

    moodle_ha-backup run                    take one backup (database, then dataroot)
    moodle_ha-backup list                   verified backups, newest first
    moodle_ha-backup verify NAME            re-read every archive against the manifest
    moodle_ha-backup restore-db NAME --confirm NAME
    moodle_ha-backup restore-dataroot NAME --confirm NAME

Every command takes ``--config`` (default /etc/moodle_ha/backup.json, written by Salt) and
``--json`` (print the result as one JSON document on stdout). Progress goes to stderr, one
line per phase. Python standard library only: the backup keeps working without Salt.

A backup is a directory ``<target_dir>/<name>/`` holding ``mariadb.tar[.gz|.zst][.enc]``
(a *prepared* mariabackup, restorable as a datadir as is), ``dataroot.tar…`` and
``manifest.json`` (times, Galera position, Moodle version, sizes and sha256 of every archive).
It is written as ``<name>.partial`` and renamed only once verified.
"""

import argparse
import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

CONFIG = "/etc/moodle_ha/backup.json"
MANIFEST = "manifest.json"
LAST_RUN = "last-run.json"
PARTIAL = ".partial"
FORMAT = 1
# wsrep_local_state: 4 Synced, 2 Donor/Desynced.
STATE_SYNCED = 4
NAME_RE = re.compile(r"^[0-9]{8}T[0-9]{6}Z$")
GALERA_INFO_RE = re.compile(
    r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):(-?[0-9]+)\b")
# Names of mariabackup's Galera position file, newest first.
GALERA_INFO_FILES = ("mariadb_backup_galera_info", "xtrabackup_galera_info")
COMPRESSORS = {
    "gzip": {"suffix": ".gz", "pack": ["gzip", "-c", "-6"], "unpack": ["gzip", "-d", "-c"]},
    "zstd": {"suffix": ".zst", "pack": ["zstd", "-q", "-c", "-T0"],
             "unpack": ["zstd", "-q", "-d", "-c"]},
    "none": {"suffix": "", "pack": None, "unpack": None},
}
CHUNK = 1 << 20
# `openssl enc -pass file:KEY` reads the first line of KEY, 1023 bytes at most (OpenSSL's
# APP_PASS_LEN less one), and drops the '\n' that ends it (a '\r' stays).
KEY_MAX = 1023


class BackupError(Exception):
    """A failure with a message meant for the operator."""


# --------------------------------------------------------------------------- pure helpers


def backup_name(when):
    """Directory name of a backup started at ``when`` (an aware UTC datetime)."""
    return when.strftime("%Y%m%dT%H%M%SZ")


def parse_galera_info(text):
    """
    Position recorded by ``mariabackup --galera-info`` (``mariadb_backup_galera_info``, on
    10.x ``xtrabackup_galera_info``): ``{"uuid", "seqno"}``. The line is ``uuid:seqno``,
    followed on 11.x by the GTID domain (``uuid:23 0``).
    """
    match = GALERA_INFO_RE.match((text or "").strip())
    if not match:
        return None
    return {"uuid": match.group(1), "seqno": int(match.group(2))}


def parse_rows(text):
    """``SHOW ... STATUS`` rows from ``mariadb -B -N`` (name TAB value) as a dict."""
    rows = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("\t")
        if sep:
            rows[key] = value
    return rows


def retention_plan(entries, keep):
    """
    Which backup directories retention removes.

    ``entries``: ``[{"name", "verified": bool}]``. Keeps the newest ``keep`` verified backups
    (at least one, whatever ``keep`` says); removes only verified backups older than those.
    Unverified directories are never chosen here (``stale_partials`` handles partial ones).
    """
    keep = max(1, int(keep))
    verified = sorted((e["name"] for e in entries if e.get("verified")), reverse=True)
    return sorted(verified[keep:])


def drain_decision(me, writer_order, answers):
    """
    Whether the backup node leaves the DB pools for the backup: ``(drain, reason)``.

    HAProxy's writer is the first healthy node in ``writer_order``. Drain only when a node
    before ``me`` answers 200 (so ``me`` is not the writer: draining the writer would move
    it and leave two nodes taking writes for a while); then that node also serves reads.
    ``answers``: ``{node: http code or None}`` of the other nodes.
    """
    before = writer_order[: writer_order.index(me)] if me in writer_order else []
    healthy = [n for n in before if answers.get(n) == 200]
    if not healthy:
        if not any(answers.get(n) == 200 for n in writer_order if n != me):
            return False, "no other healthy node: stays in the pools"
        return False, "is the active writer (no healthy node before it): stays in the pools"
    serving = [n for n in writer_order if n != me and answers.get(n) == 200]
    return True, "drained from the DB pools ({} serve)".format(", ".join(serving))


def manifest_problems(manifest, directory):
    """Differences between a manifest and the archives on disk (sizes only: cheap)."""
    problems = []
    if manifest.get("format") != FORMAT:
        problems.append("unknown manifest format {!r}".format(manifest.get("format")))
    for archive in manifest.get("archives", []):
        path = os.path.join(directory, archive["file"])
        if not os.path.isfile(path):
            problems.append("{}: missing".format(archive["file"]))
        elif os.path.getsize(path) != archive["bytes"]:
            problems.append(f"{archive['file']}: {os.path.getsize(path)} bytes,"
                            f" manifest says {archive['bytes']}")
    return problems


def grastate_text(position):
    """grastate.dat of a datadir restored from a backup, marked safe to bootstrap."""
    return (f"# GALERA saved state\nversion: 2.1\nuuid:    {position['uuid']}\n"
            f"seqno:   {int(position['seqno'])}\nsafe_to_bootstrap: 1\n")


# --------------------------------------------------------------------------- environment


def log(message):
    print("moodle_ha-backup: " + message, file=sys.stderr, flush=True)


def load_config(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise BackupError(f"cannot read the configuration {path}: {exc}") from exc


def _run(cmd, timeout=None, check=True, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          timeout=timeout, check=False, **kwargs)
    if check and proc.returncode != 0:
        raise BackupError(f"{cmd[0]} failed (exit {proc.returncode}):"
                          f" {_tail(proc.stderr or proc.stdout)}")
    return proc


def _tail(text, lines=6):
    return " | ".join((text or "").strip().splitlines()[-lines:])


def sql(cfg, statement, timeout=30):
    """Run one statement as root over the server's unix socket (unix_socket auth)."""
    proc = _run([cfg["client"], "--no-defaults", "--protocol=socket", "--socket=" + cfg["socket"],
                 "--user=root", "-B", "-N", "-e", statement], timeout=timeout)
    return proc.stdout


def wsrep_status(cfg):
    return parse_rows(sql(cfg, "SHOW GLOBAL STATUS WHERE Variable_name IN "
                               "('wsrep_local_state', 'wsrep_cluster_status', "
                               "'wsrep_cluster_size', 'wsrep_local_recv_queue', "
                               "'wsrep_last_committed')"))


def clustercheck_code(host, port, timeout=3.0):
    """HTTP status of a node's clustercheck, or None when it does not answer."""
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
            head = conn.recv(64).decode("ascii", "replace").split()
    except OSError:
        return None
    if len(head) >= 2 and head[0].startswith("HTTP/") and head[1].isdigit():
        return int(head[1])
    return None


def port_open(host, port, timeout=2.0):
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def server_running(cfg):
    """True when a MariaDB server process runs on this host."""
    proc = _run(["pgrep", "-x", "-d", " ", "mariadbd|mysqld"], check=False)
    return proc.returncode == 0


def wait_for(predicate, timeout, interval=1.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


@contextlib.contextmanager
def locked(target_dir):
    os.makedirs(target_dir, mode=0o700, exist_ok=True)
    fh = open(os.path.join(target_dir, ".lock"), "w", encoding="utf-8")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise BackupError(f"another moodle_ha-backup runs on {target_dir}") from exc
        yield
    finally:
        fh.close()


# --------------------------------------------------------------------------- archives


def read_key(path):
    """
    The encryption key in ``path``: the file's bytes less the one ``\n`` that ends them
    (backup.key.jinja writes the pillar's key and a newline; a file without it reads the
    same). Refused when openssl would read anything but exactly these bytes: an empty key, a
    second line, a CR, a NUL or more than KEY_MAX bytes.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read(KEY_MAX + 2)
    except OSError as exc:
        raise BackupError(f"cannot read the encryption key {path}: {exc.strerror}") from exc
    key = data[:-1] if data.endswith(b"\n") else data
    problem = None
    if not key:
        problem = "it is empty"
    elif len(key) > KEY_MAX:
        problem = f"it is longer than {KEY_MAX} bytes (openssl would use only their start)"
    else:
        for byte, name in ((b"\n", "a second line"), (b"\r", "a CR (CRLF line end?)"),
                           (b"\0", "a NUL byte")):
            if byte in key:
                problem = f"it holds {name} (openssl would read the key only up to it)"
                break
    if problem:
        raise BackupError(f"encryption key {path} unusable: {problem}; it must be one line,"
                          " secrets:backup_encryption_key as it is in the pillar")
    return key


def _pipeline(cfg):
    """Commands after ``tar -c`` (compress, then encrypt) and before ``tar -x``, and the suffix."""
    comp = COMPRESSORS[cfg.get("compression", "gzip")]
    pack, unpack, suffix = [], [], ".tar" + comp["suffix"]
    if comp["pack"]:
        pack.append(comp["pack"])
        unpack.append(comp["unpack"])
    key = cfg.get("encryption_key_file")
    if key:
        # Checked, not passed: openssl reads the file itself, which read_key proved is one line.
        read_key(key)
        enc = ["openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-iter", "200000", "-salt",
               "-pass", "file:" + key]
        pack.append(enc)
        unpack.insert(0, enc[:3] + ["-d"] + enc[3:])
        suffix += ".enc"
    return pack, unpack, suffix


def write_archive(cfg, source_dir, dest, excludes=(), tar_ok=(0,)):
    """
    ``tar -c`` of ``source_dir`` through the compress/encrypt pipeline into ``dest``,
    hashing while writing: ``{"file", "bytes", "sha256"}``.
    """
    pack, _, _ = _pipeline(cfg)
    tar = ["tar", "-C", source_dir, "--numeric-owner", "-c"]
    tar += [f"--exclude=./{e}" for e in excludes]
    tar.append(".")
    procs = [subprocess.Popen(tar, stdout=subprocess.PIPE, stderr=subprocess.PIPE)]
    for cmd in pack:
        procs.append(subprocess.Popen(cmd, stdin=procs[-1].stdout, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE))
        procs[-2].stdout.close()
    digest, size = hashlib.sha256(), 0
    with open(dest, "wb") as out:
        while True:
            chunk = procs[-1].stdout.read(CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    procs[-1].stdout.close()
    for index, proc in enumerate(procs):
        err = proc.stderr.read().decode("utf-8", "replace")
        proc.stderr.close()
        code = proc.wait()
        allowed = tar_ok if index == 0 else (0,)
        if code not in allowed:
            raise BackupError(f"{proc.args[0]} failed (exit {code}) writing"
                              f" {os.path.basename(dest)}: {_tail(err)}")
    return {"file": os.path.basename(dest), "bytes": size, "sha256": digest.hexdigest()}


def read_archive(cfg, path, extract_to=None):
    """
    Read an archive back through decrypt/decompress and tar: the sha256 of its bytes and the
    member count. ``extract_to`` extracts it there; otherwise it is only listed.
    """
    _, unpack, _ = _pipeline(cfg)
    procs = []
    src = subprocess.PIPE
    for cmd in unpack:
        procs.append(subprocess.Popen(cmd, stdin=src, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE))
        if len(procs) > 1:
            procs[-2].stdout.close()
        src = procs[-1].stdout
    tar = ["tar", "--numeric-owner"]
    if extract_to:
        tar += ["-x", "--same-owner", "--same-permissions", "-C", extract_to, "-v"]
    else:
        tar += ["-t"]
    tar += ["-f", "-"]
    procs.append(subprocess.Popen(tar, stdin=src if procs else subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    if len(procs) > 1:
        procs[-2].stdout.close()
    head = procs[0].stdin
    digest = hashlib.sha256()
    members = []

    def _count():
        for line in procs[-1].stdout:
            members.append(line)

    reader = threading.Thread(target=_count, daemon=True)
    reader.start()
    try:
        with open(path, "rb") as fh:
            while True:
                chunk = fh.read(CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
                head.write(chunk)
    except BrokenPipeError:
        pass
    finally:
        with contextlib.suppress(BrokenPipeError):
            head.close()
    reader.join()
    for proc in procs:
        err = proc.stderr.read().decode("utf-8", "replace")
        code = proc.wait()
        if code != 0:
            raise BackupError(f"{proc.args[0]} failed (exit {code}) reading"
                              f" {os.path.basename(path)}: {_tail(err)}")
    return {"sha256": digest.hexdigest(), "members": len(members)}


# --------------------------------------------------------------------------- inventory


def inventory(target_dir):
    """Every backup directory: ``[{"name", "verified", "manifest"|None, "partial"}]``."""
    found = []
    try:
        names = os.listdir(target_dir)
    except FileNotFoundError:
        return found
    for entry in names:
        path = os.path.join(target_dir, entry)
        if not os.path.isdir(path):
            continue
        partial = entry.endswith(PARTIAL)
        name = entry[: -len(PARTIAL)] if partial else entry
        if not NAME_RE.match(name):
            continue
        manifest = None
        if not partial:
            with contextlib.suppress(OSError, ValueError):
                with open(os.path.join(path, MANIFEST), encoding="utf-8") as fh:
                    manifest = json.load(fh)
        found.append({"name": name, "partial": partial, "manifest": manifest,
                      "verified": bool(manifest and manifest.get("verified"))})
    return sorted(found, key=lambda e: e["name"], reverse=True)


def find_backup(cfg, name):
    if not name or not NAME_RE.match(name):
        raise BackupError(f"{name!r} is not a backup name (YYYYMMDDTHHMMSSZ)")
    for entry in inventory(cfg["target_dir"]):
        if entry["name"] == name and not entry["partial"]:
            if not entry["verified"]:
                raise BackupError(f"backup {name} has no verified manifest")
            return os.path.join(cfg["target_dir"], name), entry["manifest"]
    raise BackupError("no backup {} in {}".format(name, cfg["target_dir"]))


def prune(cfg):
    """Retention: older verified backups beyond the newest N; partial leftovers of old runs."""
    entries = inventory(cfg["target_dir"])
    removed = []
    for name in retention_plan(entries, cfg.get("retention", 7)):
        shutil.rmtree(os.path.join(cfg["target_dir"], name))
        removed.append(name)
    for entry in entries:
        if entry["partial"]:
            shutil.rmtree(os.path.join(cfg["target_dir"], entry["name"] + PARTIAL))
            removed.append(entry["name"] + PARTIAL)
    return removed


def _write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# --------------------------------------------------------------------------- backup


@contextlib.contextmanager
def out_of_pools(cfg, timings):
    """
    Keep the node out of HAProxy's DB pools and out of flow control for the duration: a drain
    file (clustercheck answers 404: HAProxy's disable-on-404 sends no new connection and lets
    open ones finish), then wsrep_desync. Both are undone whatever happens.
    """
    cc = cfg["clustercheck"]
    me = cfg["node"]
    answers = {n["name"]: clustercheck_code(n["ip"], cc["port"]) for n in cfg["galera_nodes"]
               if n["name"] != me}
    drain, reason = drain_decision(me, [n["name"] for n in cfg["galera_nodes"]], answers)
    log(f"node {me} {reason}")
    started = time.monotonic()
    drain_file = cc["drain_file"]
    desynced = False
    try:
        if drain:
            with open(drain_file, "w", encoding="utf-8") as fh:
                fh.write(f"moodle_ha-backup {os.getpid()}\n")
            # HAProxy sees the 404 within one check interval; then wait for open sessions.
            time.sleep(cfg.get("drain_settle", 3))
            left = wait_for(lambda: _client_sessions(cfg) == 0, cfg.get("drain_timeout", 60), 1.0)
            if not left:
                log(f"open client sessions remain after {cfg.get('drain_timeout', 60)} s:"
                    " they keep reading from this node")
            sql(cfg, "SET GLOBAL wsrep_desync = ON")
            desynced = True
        timings["drain"] = round(time.monotonic() - started, 2)
        yield {"drained": drain, "reason": reason}
    finally:
        if desynced:
            sql(cfg, "SET GLOBAL wsrep_desync = OFF")
            synced = wait_for(
                lambda: int(wsrep_status(cfg).get("wsrep_local_state", 0)) == STATE_SYNCED,
                cfg.get("resync_timeout", 600))
            if not synced:
                log("node did not return to Synced; it stays drained")
                raise BackupError("node did not return to Synced after the backup")
        if drain:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(drain_file)
            log(f"node {me} back in the DB pools")


def _client_sessions(cfg):
    """Connections of the Moodle database user on this node (through HAProxy)."""
    user = cfg["moodle_db_user"].replace("'", "''")
    out = sql(cfg, f"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = '{user}'")
    return int(out.strip() or 0)


def _moodle_version(cfg):
    """Moodle version and release from the backed-up database (its mdl_config rows)."""
    table = "`{}`.`{}config`".format(cfg["moodle_db_name"].replace("`", "``"),
                                  cfg["moodle_db_prefix"].replace("`", "``"))
    try:
        rows = parse_rows(sql(cfg, f"SELECT name, value FROM {table}"
                                   " WHERE name IN ('version', 'release')"))
    except BackupError:
        return None
    return rows or None


def run_backup(cfg):
    started_at = datetime.datetime.now(datetime.UTC)
    started = time.monotonic()
    name = backup_name(started_at)
    work = os.path.join(cfg["target_dir"], name + PARTIAL)
    status = wsrep_status(cfg)
    if status.get("wsrep_cluster_status") != "Primary" or \
            int(status.get("wsrep_local_state", 0)) != STATE_SYNCED:
        raise BackupError(f"node {cfg['node']} is not Synced in a Primary component"
                          f" ({status}): no backup")
    os.makedirs(work, mode=0o700)
    try:
        return _backup_into(cfg, name, work, started_at, started, status)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _backup_into(cfg, name, work, started_at, started, status):
    target = cfg["target_dir"]
    timings = {}
    raw = os.path.join(work, "mariadb")
    log(f"backup {name}: database")
    with out_of_pools(cfg, timings) as pools:
        t0 = time.monotonic()
        _run([cfg["mariabackup"], "--backup", "--galera-info", "--target-dir=" + raw,
              "--user=root", "--socket=" + cfg["socket"],
              f"--parallel={int(cfg.get('parallel', 2))}"],
             timeout=cfg.get("timeout", 21600))
        timings["mariabackup"] = round(time.monotonic() - t0, 2)
    galera = None
    for info in GALERA_INFO_FILES:
        with contextlib.suppress(FileNotFoundError):
            with open(os.path.join(raw, info), encoding="utf-8") as fh:
                galera = parse_galera_info(fh.read())
            break
    if galera is None:
        raise BackupError("mariabackup recorded no Galera position"
                          f" ({' or '.join(GALERA_INFO_FILES)})")
    t0 = time.monotonic()
    log(f"backup {name}: prepare (crash-consistent to a restorable datadir)")
    _run([cfg["mariabackup"], "--prepare", "--target-dir=" + raw],
         timeout=cfg.get("timeout", 21600))
    timings["prepare"] = round(time.monotonic() - t0, 2)
    _, _, suffix = _pipeline(cfg)
    archives = []
    t0 = time.monotonic()
    archives.append(dict(write_archive(cfg, raw, os.path.join(work, "mariadb" + suffix)),
                         content="mariadb"))
    shutil.rmtree(raw)
    timings["pack_mariadb"] = round(time.monotonic() - t0, 2)
    # After the database: every file the database references exists in the copy.
    log(f"backup {name}: dataroot")
    t0 = time.monotonic()
    if not os.path.ismount(cfg["dataroot"]):
        raise BackupError(f"dataroot {cfg['dataroot']} is not mounted:"
                          " not copying an empty directory")
    # tar exit 1: a file changed while being read (a live dataroot); the file pool is
    # content-addressed and written once, so that is a cache or temp file at most.
    dest = os.path.join(work, "dataroot" + suffix)
    archives.append(dict(write_archive(cfg, cfg["dataroot"], dest,
                                       excludes=cfg.get("dataroot_excludes", []), tar_ok=(0, 1)),
                         content="dataroot"))
    timings["dataroot"] = round(time.monotonic() - t0, 2)
    log(f"backup {name}: verify")
    t0 = time.monotonic()
    for archive in archives:
        check = read_archive(cfg, os.path.join(work, archive["file"]))
        if check["sha256"] != archive["sha256"] or check["members"] == 0:
            raise BackupError("{} does not read back as written".format(archive["file"]))
        archive["members"] = check["members"]
    timings["verify"] = round(time.monotonic() - t0, 2)
    manifest = {
        "format": FORMAT, "name": name, "node": cfg["node"], "verified": True,
        "started": started_at.isoformat(timespec="seconds"),
        "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - started, 2), "timings": timings,
        "galera": galera, "cluster_size": int(status.get("wsrep_cluster_size", 0)),
        "drained": pools["drained"], "moodle": _moodle_version(cfg),
        "compression": cfg.get("compression", "gzip"),
        "encrypted": bool(cfg.get("encryption_key_file")),
        "dataroot_excludes": cfg.get("dataroot_excludes", []),
        "archives": archives,
        "bytes": sum(a["bytes"] for a in archives),
    }
    _write_json(os.path.join(work, MANIFEST), manifest)
    os.rename(work, os.path.join(target, name))
    log(f"backup {name}: done in {manifest['seconds']:.1f} s, {manifest['bytes']} bytes,"
        f" Galera seqno {(galera or {}).get('seqno')}")
    return manifest


def cmd_run(cfg, _args):
    target = cfg["target_dir"]
    with locked(target):
        try:
            manifest = run_backup(cfg)
        except Exception as exc:  # recorded for the status view, then re-raised
            _write_json(os.path.join(target, LAST_RUN), {
                "result": False, "finished": time.time(), "error": str(exc)})
            raise
        removed = prune(cfg)
        if removed:
            log("retention removed {}".format(", ".join(removed)))
        _write_json(os.path.join(target, LAST_RUN), {
            "result": True, "finished": time.time(), "name": manifest["name"]})
        return {"result": True, "name": manifest["name"],
                "path": os.path.join(target, manifest["name"]), "seconds": manifest["seconds"],
                "bytes": manifest["bytes"], "galera": manifest["galera"],
                "drained": manifest["drained"], "removed": removed}


def cmd_list(cfg, _args):
    out = []
    for entry in inventory(cfg["target_dir"]):
        m = entry["manifest"] or {}
        out.append({"name": entry["name"], "verified": entry["verified"],
                    "partial": entry["partial"], "finished": m.get("finished"),
                    "bytes": m.get("bytes"), "seqno": (m.get("galera") or {}).get("seqno"),
                    "moodle": m.get("moodle")})
    last = None
    with contextlib.suppress(OSError, ValueError):
        with open(os.path.join(cfg["target_dir"], LAST_RUN), encoding="utf-8") as fh:
            last = json.load(fh)
    return {"result": True, "backups": out, "last_run": last}


def cmd_verify(cfg, args):
    path, manifest = find_backup(cfg, args.name)
    problems = manifest_problems(manifest, path)
    if not problems:
        for archive in manifest["archives"]:
            got = read_archive(cfg, os.path.join(path, archive["file"]))
            if got["sha256"] != archive["sha256"]:
                problems.append("{}: sha256 differs from the manifest".format(archive["file"]))
    if problems:
        raise BackupError("backup {} is damaged: {}".format(args.name, "; ".join(problems)))
    return {"result": True, "name": args.name, "archives": len(manifest["archives"])}


# --------------------------------------------------------------------------- restore


def _confirmed(args):
    if args.confirm != args.name:
        raise BackupError(f"restore of {args.name} refused: pass --confirm {args.name}"
                          " (it replaces live data)")


def cmd_restore_db(cfg, args):
    """
    Replace this node's datadir by the backup and bootstrap a new Primary component from it.
    Refuses while MariaDB runs here or Galera answers on any other node. The previous datadir
    is kept beside it (``<datadir>.before-restore-<name>-<time>``), never deleted.
    """
    _confirmed(args)
    path, manifest = find_backup(cfg, args.name)
    cmd_verify(cfg, args)
    if server_running(cfg):
        raise BackupError(f"MariaDB runs on {cfg['node']}: stop it (and every Galera node)"
                          " before a restore")
    live = [n["name"] for n in cfg["galera_nodes"]
            if n["name"] != cfg["node"] and port_open(n["ip"], cfg["replication_port"])]
    if live:
        raise BackupError(f"Galera still runs on {', '.join(live)}:"
                          " stop every node before a restore")
    datadir = cfg["datadir"].rstrip("/")
    now = backup_name(datetime.datetime.now(datetime.UTC))
    keep = f"{datadir}.before-restore-{args.name}-{now}"
    archive = next(a for a in manifest["archives"] if a["content"] == "mariadb")
    stat = os.stat(datadir)
    staging = tempfile.mkdtemp(prefix=".restore-", dir=os.path.dirname(datadir))
    log(f"restore {args.name}: database into {datadir} (previous datadir kept as {keep})")
    try:
        got = read_archive(cfg, os.path.join(path, archive["file"]), extract_to=staging)
        if got["sha256"] != archive["sha256"]:
            raise BackupError("{} changed while being restored".format(archive["file"]))
        os.rename(datadir, keep)
        os.rename(staging, datadir)
    except BaseException:
        if os.path.isdir(staging):
            shutil.rmtree(staging)
        raise
    os.chmod(datadir, stat.st_mode & 0o7777)
    _run(["chown", "-R", f"{stat.st_uid}:{stat.st_gid}", datadir])
    with open(os.path.join(datadir, "grastate.dat"), "w", encoding="utf-8") as fh:
        fh.write(grastate_text(manifest["galera"]))
    os.chown(os.path.join(datadir, "grastate.dat"), stat.st_uid, stat.st_gid)
    log("restore {}: bootstrapping a new Primary component on {}".format(args.name, cfg["node"]))
    _run([cfg["new_cluster"]], timeout=cfg.get("start_timeout", 600))
    ready = wait_for(lambda: _primary_synced(cfg), cfg.get("start_timeout", 600), 2.0)
    if not ready:
        raise BackupError("restored node did not become Synced in a Primary component")
    return {"result": True, "name": args.name, "datadir": datadir, "previous": keep,
            "galera": manifest["galera"]}


def _primary_synced(cfg):
    try:
        status = wsrep_status(cfg)
    except BackupError:
        return False
    return (status.get("wsrep_cluster_status") == "Primary"
            and int(status.get("wsrep_local_state", 0)) == STATE_SYNCED)


def cmd_restore_dataroot(cfg, args):
    """Extract the dataroot archive over the mounted dataroot (files added since are kept)."""
    _confirmed(args)
    path, manifest = find_backup(cfg, args.name)
    if not os.path.ismount(cfg["dataroot"]):
        raise BackupError(f"dataroot {cfg['dataroot']} is not mounted:"
                          " not restoring into the local disk")
    archive = next(a for a in manifest["archives"] if a["content"] == "dataroot")
    log("restore {}: dataroot into {}".format(args.name, cfg["dataroot"]))
    got = read_archive(cfg, os.path.join(path, archive["file"]), extract_to=cfg["dataroot"])
    if got["sha256"] != archive["sha256"]:
        raise BackupError("{} changed while being restored".format(archive["file"]))
    return {"result": True, "name": args.name, "dataroot": cfg["dataroot"], "files": got["members"]}


# --------------------------------------------------------------------------- main

COMMANDS = {"run": cmd_run, "list": cmd_list, "verify": cmd_verify,
            "restore-db": cmd_restore_db, "restore-dataroot": cmd_restore_dataroot}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="moodle_ha-backup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=CONFIG)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run")
    sub.add_parser("list")
    for name in ("verify", "restore-db", "restore-dataroot"):
        p = sub.add_parser(name)
        p.add_argument("name")
        if name.startswith("restore"):
            p.add_argument("--confirm", default=None)
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
        result = COMMANDS[args.command](cfg, args)
    except BackupError as exc:
        result = {"result": False, "error": str(exc)}
        log("error: " + str(exc))
    except Exception as exc:  # an unexpected failure still answers in JSON
        import traceback
        traceback.print_exc()
        result = {"result": False, "error": f"{type(exc).__name__}: {exc}"}
    if args.json:
        print(json.dumps(result, sort_keys=True))
    elif args.command == "list" and result.get("result"):
        for b in result["backups"]:
            print("{}  {}  {} bytes  seqno {}".format(
                b["name"], "verified" if b["verified"] else "partial/unverified",
                b["bytes"], b["seqno"]))
    return 0 if result.get("result") else 1


if __name__ == "__main__":
    sys.exit(main())

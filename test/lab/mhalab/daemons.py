"""The lab's daemons on the host side of the bridge: apt-cacher-ng and the salt-master, and
what the master serves (formula, lab pillar, Moodle archive)."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
from pathlib import Path

from . import image
from .paths import (
    ACNG_PORT,
    ARCHIVE,
    FORMULA_ROOT,
    LAB_DIR,
    LOG_DIR,
    PILLAR_COPY,
    PILLAR_DIR,
    PING_CONF_DIR,
    REPO,
    SALT_CONF_DIR,
    SECRETS_FILE,
    SRV_DIR,
    TLS_CA,
    TLS_DIR,
    save_state,
    yaml_dump,
)
from .procs import Step, logfile, pid_alive, run, signal_tracked, venv_bin, wait_dead

# What the master serves from the repository: the formula and its salt extensions (_modules,
# _states, _runners, _output, ...: every top-level _<kind> dir), nothing else. Linked, not
# copied, so edits show at once; the repo itself is no file root (walking it would walk the
# hosts' disks under .lab on every file-list request).
FORMULA_PATHS = ("moodle_ha", "top.sls")
DAEMONS = (("master_pid", "salt-master", True), ("acng_pid", "apt-cacher-ng", False))


def start_daemon(cmd: list[str], log_name: str, state: dict, key: str, port: tuple) -> None:
    """Start a lab daemon in its own session, record its PID under key, wait for its port."""
    with open(logfile(log_name), "ab") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True)
    state[key] = proc.pid
    save_state(state)
    host, number, timeout, what = port
    wait_port(host, number, timeout, what, proc)


def wait_port(host: str, port: int, timeout: float, what: str, proc: subprocess.Popen) -> None:
    """Wait until proc listens on host:port (and is still alive: not someone else's port)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}; see {LOG_DIR}")
        try:
            with socket.create_connection((host, port), timeout=1):
                time.sleep(0.5)
                if proc.poll() is not None:
                    raise SystemExit(f"{what} exited with {proc.returncode}; see {LOG_DIR}")
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{what} does not listen on {host}:{port} after {timeout} s")


def stop_daemons(state: dict, timeout: float = 10) -> None:
    """SIGTERM salt-master (its process group) and apt-cacher-ng together, SIGKILL after
    timeout."""
    sent = [(key, what, group) for key, what, group in DAEMONS
            if signal_tracked(state.get(key), what, signal.SIGTERM, group)]
    if not sent or wait_dead([state[key] for key, _, _ in sent], timeout):
        return
    for key, what, group in sent:
        signal_tracked(state[key], what, signal.SIGKILL, group)
    wait_dead([state[key] for key, _, _ in sent], 5)


def daemon_running(state: dict, key: str) -> bool:
    return pid_alive(state.get(key))


# --------------------------------------------------------------------------- apt-cacher-ng


def acng_start(topo: dict, state: dict) -> None:
    conf = LAB_DIR / "acng" / "etc"
    cache = LAB_DIR / "acng" / "cache"
    logs = LAB_DIR / "acng" / "log"
    for d in (conf, cache, logs):
        d.mkdir(parents=True, exist_ok=True)
    mirrors = image.host_mirrors()
    (conf / "backends_debian").write_text(mirrors["debian"] + "/\n")
    sec_host = mirrors["security"].split("://", 1)[1]
    (conf / "acng.conf").write_text(
        f"CacheDir: {cache}\n"
        f"LogDir: {logs}\n"
        "SupportDir: /usr/lib/apt-cacher-ng\n"
        f"BindAddress: {topo['gateway']}\n"
        f"Port: {ACNG_PORT}\n"
        f"PidFile: {LAB_DIR / 'acng' / 'acng.pid'}\n"
        f"SocketPath: {LAB_DIR / 'acng' / 'socket'}\n"
        "Remap-debrep: file:deb_mirror*.gz /debian ; file:backends_debian\n"
        "Remap-secdeb: security.debian.org security.debian.org/debian-security "
        f"deb.debian.org/debian-security /debian-security ; {sec_host}\n"
        "ExThreshold: 4\n"
        "VerboseLog: 1\n"
    )
    start_daemon(["apt-cacher-ng", "-c", str(conf), "ForeGround=1"], "apt-cacher-ng.log",
                 state, "acng_pid", (topo["gateway"], ACNG_PORT, 20, "apt-cacher-ng"))


# --------------------------------------------------------------------------- salt-master


def formula_root() -> None:
    FORMULA_ROOT.mkdir(parents=True, exist_ok=True)
    extensions = sorted(p.name for p in REPO.glob("_*") if p.is_dir() and p.name[1] != "_")
    for name in (*FORMULA_PATHS, *extensions):
        link = FORMULA_ROOT / name
        if not link.is_symlink():
            link.symlink_to(REPO / name)


def master_config(topo: dict) -> None:
    SALT_CONF_DIR.mkdir(parents=True, exist_ok=True)
    formula_root()
    conf = {
        "id": "lab-master",
        "interface": topo["gateway"],
        "root_dir": str(LAB_DIR / "salt"),
        "user": "root",
        "auto_accept": True,
        "file_roots": {"base": [str(FORMULA_ROOT), str(SRV_DIR)]},
        "pillar_roots": {"base": [str(PILLAR_DIR)]},
        "log_level_logfile": "info",
        "timeout": 30,
        "gather_job_timeout": 15,
        "worker_threads": 4,
        "state_output": "changes",
        "hash_type": "sha256",
        "file_ignore_glob": ["*.pyc"],
        "file_ignore_regex": [r"(^|/)__pycache__(/|$)"],
        "fileserver_list_cache_time": 1,
        "lazy_loader_strict_matching": True,
    }
    (SALT_CONF_DIR / "master").write_text(yaml_dump(conf))
    # Same master, client side only: pings give up on an absent minion after 2 s instead of
    # waiting gather_job_timeout (salt's CLI has no flag for it).
    PING_CONF_DIR.mkdir(parents=True, exist_ok=True)
    (PING_CONF_DIR / "master").write_text(yaml_dump(dict(conf, gather_job_timeout=2)))


def master_start(topo: dict, state: dict) -> None:
    start_daemon([str(venv_bin("salt-master")), "-c", str(SALT_CONF_DIR), "-l", "warning"],
                 "salt-master.out", state, "master_pid", (topo["gateway"], 4506, 60, "salt-master"))


def random_secret(length: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


# Every lab secret carries the characters that option files, haproxy.cfg, PHP, shell and
# systemd treat specially (quotes, `#`, spaces, backslashes, `$`, `%`, `:`, `;`) and non-ASCII,
# so each lab deploy proves that every file delivers the exact secret (test_secrets.py reads
# them back with the real parsers). keepalived's PASS string cannot carry whitespace, `#`,
# `!`, quotes, backslashes or non-ASCII (validation refuses them) and keeps 8 characters.
# MariaDB's SST donor script reads the SST password with `read` (no -r): it drops backslashes
# and surrounding spaces (seen in the lab: access denied on every SST), so validation refuses
# those in sst_password and its lab value has none.
HARD_TAIL = " a#b'c\"d\\e$f${HOME}%g:h;i`j&k|l<m>n=o!p é€"
SST_TAIL = " a#b'c\"d$f${HOME}%g:h;i`j&k|l<m>n=o!p é€"
# Sentinel rewrites its file with the password unquoted after a failover (validation refuses
# whitespace and quotes in redis_password): the rest of the hard characters.
REDIS_TAIL = "#b\\e$f${HOME}%g:h;i`j&k|l<m>n=o!p-é€"
# keepalived's own parser takes `{`/`}` as block delimiters even inside a word (seen: the
# config test failed) and `$` for its parameter substitution.
KEEPALIVED_TAIL = ":;%@+="


def lab_secret(key: str) -> str:
    """A random secret for KEY that contains what the formats under test find hard."""
    if key == "keepalived_auth_pass":
        return random_secret(2) + KEEPALIVED_TAIL
    if key == "moodle_admin_password":
        # Moodle's default password policy: upper, lower, digit and a non-alphanumeric.
        return "Lab-" + random_secret(12) + "-1" + HARD_TAIL
    if key == "redis_password":
        return random_secret(12) + REDIS_TAIL
    if key == "sst_password":
        return random_secret(12) + SST_TAIL
    return random_secret(12) + HARD_TAIL


def tls_files(topo: dict, cluster_name: str, domain: str) -> dict[str, tuple[str, str]]:
    """{"site": (certificate PEM, key PEM), "galera": (...)}: the site's certificate on the
    VIP and the one certificate of the galera and garbd hosts (galera:tls), both signed by
    the lab's CA; made once per lab dir and kept (a re-deploy serves the same ones)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID


    files = {name: (TLS_DIR / f"{name}.pem", TLS_DIR / f"{name}.key")
             for name in ("site", "galera")}
    if TLS_CA.exists() and all(c.exists() and k.exists() for c, k in files.values()):
        return {name: (c.read_text(), k.read_text()) for name, (c, k) in files.items()}
    TLS_DIR.mkdir(parents=True, exist_ok=True)
    os.chmod(TLS_DIR, 0o700)
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)

    def cert(subject, issuer, key, sign_key, days, ca, sans=()):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)),
                                            critical=False)
        return builder.sign(sign_key, hashes.SHA256())

    def name(common):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = cert(name("moodle_ha lab CA"), name("moodle_ha lab CA"), ca_key, ca_key, 3650, True)
    fqdn = f"{cluster_name.replace('_', '-')}.{domain}"
    subjects = {
        "site": (name(fqdn), [x509.IPAddress(ipaddress.ip_address(topo["vip"])),
                              x509.DNSName(fqdn)]),
        # Galera and the SST script check the peer's chain, not its name: one certificate
        # for every member, no subjectAltName; a host-name-like CN (the SST script sends it
        # to the donor, which refuses e.g. a space).
        "galera": (name(f"galera.{domain}"), []),
    }
    pem = serialization.Encoding.PEM
    out = {}
    for label, (subject, sans) in subjects.items():
        key = ec.generate_private_key(ec.SECP256R1())
        crt = cert(subject, ca.subject, key, ca_key, 825, False, sans)
        key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        crt_path, key_path = files[label]
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key_pem)
        crt_path.write_text(crt.public_bytes(pem).decode())
        out[label] = (crt_path.read_text(), key_pem)
    TLS_CA.write_text(ca.public_bytes(pem).decode())
    return out


def pillar_files(topo: dict) -> None:
    """The lab pillar: the topology's pillar file, random secrets, the apt proxy."""
    import yaml

    PILLAR_DIR.mkdir(parents=True, exist_ok=True)
    source = Path(topo["source"])
    if source != PILLAR_COPY:
        shutil.copy2(source, PILLAR_COPY)
    example = yaml.safe_load(PILLAR_COPY.read_text())
    generated = {}
    for key in example["moodle_ha"].get("secrets", {}):
        generated[key] = lab_secret(key)
    generated["moodle_admin_password"] = lab_secret("moodle_admin_password")
    # Used once a test gives hosts role redis (test_redis.py); unused otherwise.
    generated["redis_password"] = lab_secret("redis_password")
    example_topo = example["moodle_ha"].get("topology", {})
    tls = tls_files(topo, example_topo.get("cluster_name", "moodle_ha"),
                    example_topo.get("domain", "moodle-ha.internal"))
    generated["tls_key"] = tls["site"][1]
    generated["galera_tls_key"] = tls["galera"][1]
    fd = os.open(SECRETS_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(yaml_dump({"moodle_ha": {"secrets": generated}}))
    os.chmod(SECRETS_FILE, 0o600)
    lab = {"moodle_ha": {
        "apt": {"proxy": f"http://{topo['gateway']}:{ACNG_PORT}"},
        # The lab host is the operator's machine: the tests write rows through the DB
        # endpoints from it. Nothing else of the cluster (3306, 9200, gluster) admits it.
        "firewall": {"db_allow": [f"{topo['gateway']}/32"]},
        # Signed by the lab's CA (paths.TLS_CA), which the tests trust. The galera ones are
        # used where the topology switches galera:tls:enabled on.
        "lb": {"tls": {"certificate": tls["site"][0]}},
        "galera": {"tls": {"ca": TLS_CA.read_text(), "certificate": tls["galera"][0]}},
    }}
    if ARCHIVE.exists():
        sha = hashlib.sha256(ARCHIVE.read_bytes()).hexdigest()
        lab["moodle_ha"]["moodle"] = {"source": {"sha256": sha}}
    (PILLAR_DIR / "lab.sls").write_text(yaml_dump(lab))
    (PILLAR_DIR / "top.sls").write_text(
        yaml_dump({"base": {"*": [PILLAR_COPY.stem, SECRETS_FILE.stem, "lab"]}})
    )


def moodle_archive(path: str | None) -> None:
    ARCHIVE.parent.mkdir(parents=True, exist_ok=True)
    builder = REPO / "test" / "fixture_app" / "build.py"
    if path:
        with Step(f"moodle archive from {path}"):
            shutil.copyfile(path, ARCHIVE)
    elif builder.exists():
        with Step("fixture moodle archive (test/fixture_app/build.py)"):
            run([sys.executable, builder, "--out", ARCHIVE], "moodle-archive.log")
    else:
        print("==> no moodle archive: test/fixture_app/build.py absent and no --moodle-archive")

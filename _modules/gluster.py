"""
GlusterFS management through the ``gluster`` CLI's XML output.

Salt core no longer ships a glusterfs module; this one covers what moodle_ha needs: the trusted
pool (peer status, probe, detach), replicated volumes (info, status, heal info, create, start,
set, add-brick, remove-brick). Every command runs as an argument list with ``--mode=script``
(never prompts) and ``--xml``; failures raise :class:`CommandExecutionError` carrying
gluster's ``opErrstr``.
"""

import logging
import os
import shutil
import time
import xml.etree.ElementTree as ET

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "gluster"

GLUSTER = "gluster"

# glusterd's friend state machine (glusterd-sm.h): 3 is GD_FRIEND_STATE_BEFRIENDED.
PEER_IN_CLUSTER = 3

# Answers of glusterd when another node holds the pool-wide lock for a volume operation.
LOCK_MESSAGES = ("Another transaction is in progress", "Locking failed on", "locking failed")
LOCK_ATTEMPTS = 5
LOCK_RETRY_DELAY = 2

DEFAULT_MARK = "(DEFAULT)"


def __virtual__():
    if shutil.which(GLUSTER):
        return __virtualname__
    return (False, "gluster: the gluster binary is not installed")


def _text(node, path, default=None):
    found = node.find(path)
    if found is None or found.text is None:
        return default
    return found.text.strip()


def _int(node, path, default=None):
    value = _text(node, path)
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _parse(xml_text, cmd=None):
    """Parse a ``--xml`` answer; raise unless ``opRet`` is 0."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise CommandExecutionError(
            f"gluster: unparsable XML from {cmd or 'gluster'}: {exc}: {xml_text[:300]!r}"
        ) from exc
    op_ret = _int(root, "opRet", -1)
    if op_ret != 0:
        err = _text(root, "opErrstr") or _text(root, "opErrno") or "unknown error"
        raise CommandExecutionError(f"gluster {' '.join(cmd or [])}: {err}")
    return root


def _run(*args, attempts=LOCK_ATTEMPTS):
    """Run ``gluster --mode=script --xml ARGS`` and return the parsed root element.

    Volume operations take a pool-wide lock; one that collides with another node's operation
    (e.g. a ``volume status`` elsewhere) is retried a few times.
    """
    cmd = [GLUSTER, "--mode=script", "--xml", *[str(a) for a in args]]
    for attempt in range(1, attempts + 1):
        res = __salt__["cmd.run_all"](cmd, python_shell=False, ignore_retcode=True)
        stdout = (res.get("stdout") or "").strip()
        try:
            if stdout.startswith("<"):
                # The XML explains failures (opRet/opErrstr), whatever the exit code.
                return _parse(stdout, cmd[3:])
            detail = (res.get("stderr") or "").strip() or stdout
            detail = detail or f"exit code {res.get('retcode')}"
            raise CommandExecutionError(f"gluster {' '.join(cmd[3:])}: {detail}")
        except CommandExecutionError as exc:
            if attempt == attempts or not any(m in str(exc) for m in LOCK_MESSAGES):
                raise
            log.info("gluster: %s; retrying in %s s", exc, LOCK_RETRY_DELAY)
            time.sleep(LOCK_RETRY_DELAY)


def _run_text(*args):
    """Run ``gluster --mode=script ARGS`` for commands without an XML answer; return stdout."""
    cmd = [GLUSTER, "--mode=script", *[str(a) for a in args]]
    res = __salt__["cmd.run_all"](cmd, python_shell=False, ignore_retcode=True)
    if res.get("retcode") != 0:
        detail = (res.get("stderr") or "").strip() or (res.get("stdout") or "").strip()
        raise CommandExecutionError(f"gluster {' '.join(cmd[2:])}: {detail}")
    return (res.get("stdout") or "").strip()


# ------------------------------------------------------------------------------------- parsers


def parse_peers(root):
    """``peerStatus`` element tree -> list of peer dicts (used by peer status and pool list)."""
    peers = []
    for peer in root.findall("./peerStatus/peer"):
        names = [h.text.strip() for h in peer.findall("./hostnames/hostname") if h.text]
        hostname = _text(peer, "hostname")
        if hostname and hostname not in names:
            names.insert(0, hostname)
        peers.append(
            {
                "hostname": hostname,
                "hostnames": names,
                "uuid": _text(peer, "uuid"),
                "connected": _int(peer, "connected", 0) == 1,
                "state": _int(peer, "state"),
                "state_str": _text(peer, "stateStr"),
            }
        )
    return peers


def parse_volume_info(root):
    """``volInfo`` element tree -> ``{name: {status, type, replica, bricks, options, ...}}``."""
    volumes = {}
    for vol in root.findall("./volInfo/volumes/volume"):
        name = _text(vol, "name")
        bricks = []
        for brick in vol.findall("./bricks/brick"):
            brick_name = _text(brick, "name") or (brick.text or "").strip()
            bricks.append(brick_name)
        options = {
            _text(opt, "name"): _text(opt, "value", "") for opt in vol.findall("./options/option")
        }
        volumes[name] = {
            "id": _text(vol, "id"),
            "status": _text(vol, "statusStr"),
            "type": _text(vol, "typeStr"),
            "replica": _int(vol, "replicaCount"),
            "arbiter": _int(vol, "arbiterCount", 0),
            "brick_count": _int(vol, "brickCount", len(bricks)),
            "dist_count": _int(vol, "distCount"),
            "transport": {"0": "tcp", "1": "rdma", "2": "tcp,rdma"}.get(
                _text(vol, "transport"), _text(vol, "transport")
            ),
            "bricks": bricks,
            "options": options,
        }
    return volumes


def parse_volume_status(root):
    """``volStatus`` element tree -> ``{name: {"bricks": {...}, "daemons": {...}}}``."""
    result = {}
    for vol in root.findall("./volStatus/volumes/volume"):
        bricks, daemons = {}, {}
        for node in vol.findall("./node"):
            hostname = _text(node, "hostname")
            path = _text(node, "path")
            entry = {
                "online": _int(node, "status", 0) == 1,
                "port": _text(node, "ports/tcp") or _text(node, "port"),
                "pid": _int(node, "pid"),
                "peerid": _text(node, "peerid"),
            }
            if path and path.startswith("/"):
                bricks[f"{hostname}:{path}"] = entry
            else:
                # Self-heal daemons and friends: hostname is the daemon name, path the host.
                daemons[f"{hostname} on {path}"] = entry
        result[_text(vol, "volName")] = {"bricks": bricks, "daemons": daemons}
    return result


def parse_heal_info(root):
    """``healInfo`` element tree -> ``{brick: {"status": str, "entries": int|None}}``."""
    bricks = {}
    for brick in root.findall("./healInfo/bricks/brick"):
        bricks[_text(brick, "name")] = {
            "status": _text(brick, "status"),
            # "-" when the brick is not connected.
            "entries": _int(brick, "numberOfEntries"),
        }
    return bricks


def parse_volume_get(root):
    """``volGetopts`` element tree -> ``{option: value}`` (without gluster's "(DEFAULT)" mark).

    An option reported twice with different values maps to the list of its values.
    """
    opts = {}
    for opt in root.findall("./volGetopts/Opt"):
        key = _text(opt, "Option")
        if key is None:
            continue
        value = _text(opt, "Value", "")
        # gluster 10 marks values nobody set: "42 (DEFAULT)".
        if value.endswith(DEFAULT_MARK):
            value = value[: -len(DEFAULT_MARK)].rstrip()
        # Some keys belong to two translators (performance.cache-size: io-cache 32MB and
        # quick-read 128MB by default); keep every distinct value then.
        if key in opts and opts[key] != value:
            previous = opts[key] if isinstance(opts[key], list) else [opts[key]]
            opts[key] = previous + [value] if value not in previous else previous
        else:
            opts[key] = value
    return opts


# ------------------------------------------------------------------------------------- readers


def peer_status():
    """
    Return the peers of this node's trusted pool (this node itself is not listed).

    Each peer: ``hostname``, ``hostnames`` (every name glusterd knows it by), ``uuid``,
    ``connected`` (bool), ``state`` (int; ``PEER_IN_CLUSTER``: in the pool) and ``state_str``.

    CLI Example:

    .. code-block:: bash

        salt '*' gluster.peer_status
    """
    return parse_peers(_run("peer", "status"))


def pool_list():
    """
    Return every member of the trusted pool, this node included (as ``localhost``).

    CLI Example:

    .. code-block:: bash

        salt '*' gluster.pool_list
    """
    return parse_peers(_run("pool", "list"))


def volume_info(name=None):
    """
    Return ``{volume: {status, type, replica, bricks: [host:path], options: {}}}``.

    With ``name``, only that volume; an absent volume gives ``{}``.

    CLI Example:

    .. code-block:: bash

        salt '*' gluster.volume_info
        salt '*' gluster.volume_info moodledata
    """
    volumes = parse_volume_info(_run("volume", "info"))
    if name is None:
        return volumes
    return {name: volumes[name]} if name in volumes else {}


def volume_status(name):
    """
    Return the processes of a started volume: ``{"bricks": {host:path: {online, port, pid,
    peerid}}, "daemons": {...}}``.

    CLI Example:

    .. code-block:: bash

        salt '*' gluster.volume_status moodledata
    """
    return parse_volume_status(_run("volume", "status", name)).get(name, {})


def heal_info(name, split_brain=False):
    """
    Return the entries waiting for self-heal per brick: ``{brick: {status, entries}}``.

    ``entries`` is None for a brick that is not connected. With ``split_brain``, only the
    entries in split-brain (``heal info split-brain``).

    CLI Example:

    .. code-block:: bash

        salt '*' gluster.heal_info moodledata
        salt '*' gluster.heal_info moodledata split_brain=True
    """
    args = ("volume", "heal", name, "info") + (("split-brain",) if split_brain else ())
    return parse_heal_info(_run(*args))


def volume_get(name, key="all"):
    """
    Return the effective value of one option or of all options of a volume.

    CLI Example:

    .. code-block:: bash

        salt '*' gluster.volume_get moodledata network.ping-timeout
    """
    return parse_volume_get(_run("volume", "get", name, key))


# ------------------------------------------------------------------------------------- writers


def peer_probe(host):
    """
    Ask glusterd to add ``host`` to the trusted pool.

    The probe is asynchronous: the peer is "in cluster" only some seconds later
    (see :py:func:`peer_status`). Probing a member again succeeds without change.

    CLI Example:

    .. code-block:: bash

        salt 'moodle1' gluster.peer_probe 172.30.77.12
    """
    root = _run("peer", "probe", host)
    return _text(root, "output") or True


def _brick_list(bricks):
    if isinstance(bricks, str):
        bricks = [b for b in bricks.replace(",", " ").split() if b]
    bricks = [str(b) for b in bricks]
    for brick in bricks:
        host, _, path = brick.partition(":")
        if not host or not path.startswith("/"):
            raise CommandExecutionError(f"gluster: brick {brick!r} is not HOST:/PATH")
    return bricks


def volume_create(name, bricks, replica=None, force=False, transport="tcp"):
    """
    Create a volume (not started). ``bricks`` is a list of ``host:/path``.

    ``force`` is needed for bricks on the root file system.

    CLI Example:

    .. code-block:: bash

        salt 'moodle1' gluster.volume_create moodledata \\
            '[172.30.77.11:/srv/gluster/moodledata, 172.30.77.12:/srv/gluster/moodledata]' \\
            replica=2 force=True
    """
    args = ["volume", "create", name]
    # Replica 1 (gluster:allow_no_redundancy) is a plain distribute volume, created without
    # a replica count.
    if replica and int(replica) > 1:
        args += ["replica", int(replica)]
    args += ["transport", transport, *_brick_list(bricks)]
    if force:
        args.append("force")
    _run(*args)
    return True


def volume_start(name, force=False):
    """
    Start a volume (``force`` also restarts missing brick processes of a started one).

    CLI Example:

    .. code-block:: bash

        salt 'moodle1' gluster.volume_start moodledata
    """
    args = ["volume", "start", name]
    if force:
        args.append("force")
    _run(*args)
    return True


def volume_set(name, key, value):
    """
    Set one volume option.

    CLI Example:

    .. code-block:: bash

        salt 'moodle1' gluster.volume_set moodledata network.ping-timeout 5
    """
    _run("volume", "set", name, key, option_value(value))
    return True


def add_brick(name, bricks, replica=None, force=False):
    """
    Add bricks to a volume; with ``replica`` higher than the volume's, raise its replica count.

    CLI Example:

    .. code-block:: bash

        salt 'moodle1' gluster.add_brick moodledata '[172.30.77.13:/srv/gluster/moodledata]' \\
            replica=3 force=True
    """
    args = ["volume", "add-brick", name]
    if replica:
        args += ["replica", int(replica)]
    args += _brick_list(bricks)
    if force:
        args.append("force")
    _run(*args)
    return True


def remove_brick(name, bricks, replica=None, action="force"):
    """
    Remove bricks from a volume: ``action`` is ``force`` (at once; with ``replica`` lower
    than the volume's, the replica count drops and no data moves: each remaining replica
    holds every file), or ``start``, ``status``, ``commit`` for the data migration of a
    distributed volume's whole replica sets. Returns gluster's output text (``status``:
    ``{brick host: {"status": str, "files": int, "failures": int}}`` parsed from the XML).

    CLI Example:

    .. code-block:: bash

        salt 'moodle1' gluster.remove_brick moodledata \
            '[172.30.77.14:/srv/gluster/moodledata]' replica=3
    """
    if action not in ("force", "start", "status", "commit"):
        raise CommandExecutionError(f"gluster: remove-brick action {action!r} is not one of"
                                    " force, start, status, commit")
    args = ["volume", "remove-brick", name]
    if replica:
        args += ["replica", int(replica)]
    args += [*_brick_list(bricks), action]
    root = _run(*args)
    if action == "status":
        return parse_rebalance_status(root)
    return _text(root, "volRemoveBrick/task-id") or _text(root, "output") or True


def parse_rebalance_status(root):
    """``volRemoveBrick``/``volRebalance`` status tree -> ``{node: {status, files,
    failures}}`` (status: gluster's statusStr, e.g. "in progress", "completed")."""
    out = {}
    for node in root.findall(".//node"):
        name = _text(node, "nodeName")
        if name is None:
            continue
        out[name] = {"status": _text(node, "statusStr"), "files": _int(node, "files", 0),
                     "failures": _int(node, "failures", 0)}
    return out


def peer_detach(host):
    """
    Remove ``host`` from the trusted pool (it must hold no brick of any volume).

    CLI Example:

    .. code-block:: bash

        salt 'moodle1' gluster.peer_detach 172.30.77.14
    """
    root = _run("peer", "detach", host)
    return _text(root, "output") or True


def volume_heal(name, full=False):
    """
    Start self-heal of a volume (``full`` crawls every file, e.g. after adding a replica).

    CLI Example:

    .. code-block:: bash

        salt 'moodle1' gluster.volume_heal moodledata full=True
    """
    args = ["volume", "heal", name]
    if full:
        args.append("full")
    # gluster 10.3 answers "heal ... full" in plain text even with --xml.
    _run_text(*args)
    return True


def _brick_parts(brick):
    """(host, path) of a brick named ``host:/absolute/path``."""
    host, _, path = brick.rpartition(":")
    if not host or not path.startswith("/"):
        raise CommandExecutionError(f"gluster: {brick!r} is not host:/absolute/path")
    return host, path


def brick_pid(name, brick, proc="/proc"):
    """
    The PID of the ``glusterfsd`` process serving ``brick`` (``host:/path``) of volume
    ``name`` on this host, or None when none runs. Read from the process table, not from
    glusterd: ``volume status`` is a cluster-wide transaction that blocks while any peer is
    cut off, this answer is local.

    CLI Example:

    .. code-block:: bash

        salt 'moodle1' gluster.brick_pid moodledata 172.30.77.11:/srv/gluster/moodledata
    """
    host, path = _brick_parts(brick)
    volfile_id = f"{name}.{host}.{path.strip('/').replace('/', '-')}"
    try:
        entries = os.listdir(proc)
    except OSError as exc:
        raise CommandExecutionError(f"gluster: cannot read {proc}: {exc}") from exc
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(os.path.join(proc, entry, "cmdline"), "rb") as fh:
                argv = fh.read().decode("utf-8", "replace").split("\0")
        except OSError:
            continue
        if (argv and os.path.basename(argv[0]) == "glusterfsd"
                and "--volfile-id" in argv[:-1]
                and argv[argv.index("--volfile-id") + 1] == volfile_id):
            return int(entry)
    return None


def brick_port(name, brick, glusterd_dir="/var/lib/glusterd"):
    """
    The port this host's glusterd has on record for its own brick ``brick`` of volume
    ``name`` (``listen-port`` of ``vols/NAME/bricks/HOST:-PATH``): 0 while glusterd does not
    know it, None when there is no such file. Clients learn a brick's port from glusterd: a
    brick process that runs with 0 here is unreachable (seen after a power loss of every
    gluster host: glusterd started the brick twice, the one left running was never signed
    in, and `volume status` showed its port N/A). Local, like :py:func:`brick_pid`.

    CLI Example:

    .. code-block:: bash

        salt 'moodle1' gluster.brick_port moodledata 172.30.77.11:/srv/gluster/moodledata
    """
    host, path = _brick_parts(brick)
    info = os.path.join(glusterd_dir, "vols", name, "bricks", f"{host}:{path.replace('/', '-')}")
    try:
        with open(info, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CommandExecutionError(f"gluster: cannot read {info}: {exc}") from exc
    for line in lines:
        key, _, value = line.partition("=")
        if key == "listen-port":
            return int(value) if value.strip().isdigit() else 0
    return 0


# ------------------------------------------------------------------------------------- helpers

_TRUE = {"on", "yes", "true", "enable", "1"}
_FALSE = {"off", "no", "false", "disable", "0"}


def in_cluster(peer):
    """
    True when a :py:func:`peer_status` record is "Peer in Cluster" and connected (None: False).

    CLI Example:

    .. code-block:: bash

        salt '*' gluster.in_cluster '{connected: true, state: 3}'
    """
    return (peer is not None and bool(peer.get("connected"))
            and peer.get("state") == PEER_IN_CLUSTER)


def option_value(value):
    """
    Render a pillar value as gluster expects it (YAML booleans become on/off).

    CLI Example:

    .. code-block:: bash

        salt '*' gluster.option_value True
    """
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def option_equal(current, wanted):
    """
    Compare an option value as gluster reports it with a wanted one (booleans by meaning,
    the rest as case-insensitive strings; a list of values must all match).

    CLI Example:

    .. code-block:: bash

        salt '*' gluster.option_equal enable on
    """
    if current is None:
        return False
    if isinstance(current, list):
        return bool(current) and all(option_equal(value, wanted) for value in current)
    cur = str(current).strip().lower()
    want = option_value(wanted).strip().lower()
    if cur == want:
        return True
    for group in (_TRUE, _FALSE):
        if cur in group and want in group:
            return True
    return False

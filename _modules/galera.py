"""
MariaDB Galera node inspection and the bootstrap decision for the moodle_ha formula.

Everything here reads state; nothing starts or stops a server except
:py:func:`recover_position` (a short ``mariadbd --wsrep-recover`` run that refuses to
start while a server is running). The state module ``galera.cluster_member`` acts on it.

Peer information
----------------
Each node publishes :py:func:`position` to the Salt mine under ``moodle_ha_galera_position``
(the state does it on every run that is not already Primary and Synced). Liveness of
peers is read directly over TCP: the clustercheck service on :9200 answers with
``wsrep_cluster_status`` in its body, and the replication port (4567) tells whether a
Galera process runs there at all. :py:func:`member_plan` (the state's next step) and
:py:func:`bootstrap_decision` (which node bootstraps) are pure functions of those facts, so
every case is unit-tested.

Paths
-----
Functions that touch the server take ``socket_path``, ``datadir`` and ``user`` as arguments;
the state passes the formula's map values (``moodle_ha:galera:socket``, ``datadir``, ``user``).
The defaults below (also used for None) serve the command line.
"""

import logging
import os
import re
import socket
import time

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "galera"

ZERO_UUID = "00000000-0000-0000-0000-000000000000"
SOCKET = "/run/mysqld/mysqld.sock"
DATADIR = "/var/lib/mysql"
SERVER_USER = "mysql"
SERVER_BINARIES = ("/usr/sbin/mariadbd", "/usr/sbin/mysqld")
CLIENT_BINARIES = ("/usr/bin/mariadb", "/usr/bin/mysql")
SERVER_NAMES = ("mariadbd", "mysqld")
# wsrep_local_state values (Galera's node states; 1 Joining and 3 Joined need no name here).
# moodle_ha/galera/files/clustercheck.jinja tests the same numbers in shell.
STATE_DONOR = 2
STATE_SYNCED = 4

_RECOVERED_RE = re.compile(
    r"WSREP: Recovered position:\s*"
    r"(?P<uuid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):(?P<seqno>-?\d+)"
)


def __virtual__():
    if _first_existing(SERVER_BINARIES) is None:
        return (False, "galera: no mariadbd/mysqld binary (package mariadb-server not installed)")
    return __virtualname__


def _first_existing(paths):
    for path in paths:
        if os.path.exists(path):
            return path
    return None


# --------------------------------------------------------------------------- parsing (pure)


def parse_rows(text):
    """Parse ``mariadb -B -N`` output (one ``name<TAB>value`` row per line) into a dict."""
    out = {}
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        name, _, value = line.partition("\t")
        out[name.strip()] = value
    return out


def parse_grastate(text):
    """
    Parse the text of grastate.dat.

    Returns ``{"version", "uuid", "seqno" (int), "safe_to_bootstrap" (bool)}``; keys the file
    lacks are None.
    """
    fields = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    seqno = fields.get("seqno")
    safe = fields.get("safe_to_bootstrap")
    return {
        "version": fields.get("version"),
        "uuid": fields.get("uuid"),
        "seqno": int(seqno) if seqno not in (None, "") else None,
        "safe_to_bootstrap": None if safe in (None, "") else safe == "1",
    }


def parse_recovered_position(text):
    """
    Find ``WSREP: Recovered position: <uuid>:<seqno>`` in a ``--wsrep-recover`` log.

    Returns ``{"uuid", "seqno"}`` of the last such line, or None when there is none.
    """
    found = None
    for match in _RECOVERED_RE.finditer(text or ""):
        found = {"uuid": match.group("uuid"), "seqno": int(match.group("seqno"))}
    return found


def parse_clustercheck(raw):
    """
    Parse a clustercheck HTTP answer: ``{"code": int|None, "fields": {key: value}}``.

    The body carries ``key: value`` lines (wsrep_local_state, wsrep_cluster_status, ...).
    """
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else (raw or "")
    head, _, body = text.replace("\r\n", "\n").partition("\n\n")
    code = None
    first = head.split("\n", 1)[0].split()
    if len(first) >= 2 and first[0].startswith("HTTP/") and first[1].isdigit():
        code = int(first[1])
    fields = {}
    for line in body.split("\n"):
        key, sep, value = line.partition(":")
        if sep and key.strip() and " " not in key.strip():
            fields[key.strip()] = value.strip()
    return {"code": code, "fields": fields}


def known(pos):
    """True when a position record says where the node's data stands."""
    return pos is not None and pos.get("known", True) is not False


def has_data(pos):
    """True when a position record names a real cluster history (uuid not zero, seqno >= 0)."""
    if not pos:
        return False
    uuid, seqno = pos.get("uuid"), pos.get("seqno")
    return bool(uuid) and uuid != ZERO_UUID and seqno is not None and seqno >= 0


def _choose(candidates, positions, bootstrap_node):
    """Most advanced node; ties: marked safe_to_bootstrap, then the designated node, then name."""
    top = max(positions[n]["seqno"] for n in candidates)
    best = sorted(n for n in candidates if positions[n]["seqno"] == top)
    marked = [n for n in best if positions[n].get("safe_to_bootstrap")]
    if marked:
        return marked[0], f"highest seqno {top}, marked safe_to_bootstrap"
    if bootstrap_node in best:
        return bootstrap_node, f"highest seqno {top}" + (
            f", tie of {', '.join(best)} broken by galera:bootstrap_node" if len(best) > 1 else ""
        )
    return best[0], f"highest seqno {top}" + (
        f", tie of {', '.join(best)} broken by name" if len(best) > 1 else ""
    )


def bootstrap_decision(me, nodes, bootstrap_node, positions, live, force_node=None):
    """
    Decide what node ``me`` does to bring the cluster up; a pure function.

    me
        This node's name.
    nodes
        Names of every Galera node (including ``me``).
    bootstrap_node
        The designated node for a brand-new cluster and the tie-breaker.
    positions
        ``{name: record or None}``: :py:func:`position` of each node; None (not published,
        too old) or ``known: False`` (running but not answering, crash not recovered)
        count as unknown.
    live
        ``{peer: {"primary": True|False|None, "port_open": bool}}`` for every other node:
        ``primary`` from its clustercheck body (None: no readable answer), ``port_open``
        whether its Galera replication port accepts connections.
    force_node
        Operator's override (pillar ``galera:force_bootstrap_node``): bootstrap this one.

    Returns ``{"action", "node", "reason"}`` where action is ``none`` (this node is
    already in a Primary component), ``join`` (a Primary component exists: join it),
    ``bootstrap`` (this node starts a new Primary component), ``wait`` (another node
    will bootstrap: wait for it, then join) or ``refuse`` (not provably safe).

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.bootstrap_decision moodle1 '[moodle1, moodle2]' moodle1 \\
            '{moodle1: {uuid: ..., seqno: 5}, moodle2: {uuid: ..., seqno: 7}}' \\
            '{moodle2: {primary: false, port_open: false}}'
    """
    peers = [n for n in nodes if n != me]
    mine = positions.get(me) or {}
    if mine.get("primary"):
        return {"action": "none", "node": None,
                "reason": f"{me} is already in a Primary component"}
    primaries = sorted(p for p in peers if (live.get(p) or {}).get("primary"))
    if primaries:
        return {"action": "join", "node": primaries[0],
                "reason": f"a Primary component exists ({', '.join(primaries)}): join it"}
    # A Galera process whose component we cannot read might be Primary: never bootstrap then.
    unreadable = sorted(
        p for p in peers
        if (live.get(p) or {}).get("port_open") and (live.get(p) or {}).get("primary") is None
    )

    if force_node is not None:
        if force_node not in nodes:
            return {"action": "refuse", "node": None,
                    "reason": f"galera:force_bootstrap_node {force_node!r} is not a galera node"}
        chosen, why = force_node, "forced by galera:force_bootstrap_node"
    else:
        unknown = sorted(n for n in nodes if not known(positions.get(n)))
        if unknown:
            return {"action": "refuse", "node": None, "reason": (
                f"no Primary component and the positions of {', '.join(unknown)} are unknown:"
                " apply moodle_ha.galera on all galera nodes in one run (each publishes its"
                " position to the mine) or set galera:force_bootstrap_node")}
        with_data = [n for n in nodes if has_data(positions[n])]
        uuids = sorted({positions[n]["uuid"] for n in with_data})
        if len(uuids) > 1:
            detail = ", ".join(f"{n}={positions[n]['uuid']}" for n in sorted(with_data))
            return {"action": "refuse", "node": None, "reason": (
                f"nodes carry different cluster histories ({detail}): choose one with"
                " galera:force_bootstrap_node")}
        if not with_data:
            chosen = bootstrap_node if bootstrap_node in nodes else sorted(nodes)[0]
            why = "brand-new cluster (no node has a cluster position)"
        else:
            chosen, why = _choose(with_data, positions, bootstrap_node)

    if chosen != me:
        return {"action": "wait", "node": chosen, "reason": f"{chosen} bootstraps ({why})"}
    if unreadable:
        return {"action": "refuse", "node": me, "reason": (
            f"{me} would bootstrap ({why}) but {', '.join(unreadable)} run Galera with an"
            " unreadable state (replication port open, clustercheck not answering):"
            " a Primary component may exist")}
    return {"action": "bootstrap", "node": me, "reason": why}


def in_primary(local):
    """
    True when a :py:func:`local_state` record shows wsrep on in a Primary component.

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.in_primary '{running: true, wsrep_on: true, cluster_status: Primary}'
    """
    return bool(local.get("running") and local.get("wsrep_on")
                and local.get("cluster_status") == "Primary")


def synced(local):
    """
    True when a :py:func:`local_state` record is Primary and Synced (``STATE_SYNCED``).

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.synced '{running: true, wsrep_on: true, cluster_status: Primary,
            local_state: 4}'
    """
    return in_primary(local) and local.get("local_state") == STATE_SYNCED


def _plan(action, reason, node=None, stop=None):
    return {"action": action, "node": node, "reason": reason, "stop": stop}


def member_plan(me, nodes, bootstrap_node, local, live=None, positions=None, force_node=None):
    """
    Decide the next step of node ``me`` towards a Synced member of a Primary component;
    a pure function of what is known so far.

    The state ``galera.cluster_member`` calls it with ``local`` first and again with each
    fact the answer asks for (``probe``: ``live``; ``gather``: ``positions``), then carries
    the plan out. Given ``positions``, the answer is :py:func:`bootstrap_decision`'s alone:
    the local server was dealt with before they were gathered.

    me, nodes, bootstrap_node, force_node
        As for :py:func:`bootstrap_decision`.
    local
        This node's :py:func:`local_state`.
    live
        ``{peer: peer_live record}`` for every other node, or None before they are probed.
    positions
        ``{name: position record or None}``, or None before they are gathered (after the
        ``stop``). Needed only when no Primary component is visible.

    Returns ``{"action", "node", "reason", "stop"}``. ``stop`` is None, or why the running
    local server must be stopped first (a standalone server left by the package, or a server
    outside any Primary component: stopped, its position can be recovered). Actions:

    ``synced``
        Primary and Synced: nothing to do.
    ``wait_synced``
        In the Primary component but not Synced yet (Donor, Joining): wait for Synced.
    ``finish_join``
        The server is starting (not answering) while a peer is Primary: it is joining; wait
        for Synced.
    ``probe``
        Not in a Primary component: the peers' liveness is needed.
    ``gather``
        No Primary component visible: every node's position is needed (after ``stop``).
    ``none``, ``join``, ``wait`` (wait for ``node`` to bootstrap, then join), ``bootstrap``,
    ``refuse``
        :py:func:`bootstrap_decision` on the facts.

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.member_plan moodle1 '[moodle1, moodle2]' moodle1 \\
            '{running: false}' '{moodle2: {primary: true, port_open: true}}'
    """
    if positions is not None:
        # The last call: the local server was dealt with (stopped if the plan said so) before
        # the positions were gathered; now they decide.
        return dict(bootstrap_decision(me, nodes, bootstrap_node, positions, live or {},
                                       force_node=force_node), stop=None)
    if in_primary(local):
        if local.get("local_state") == STATE_SYNCED:
            return _plan("synced", f"{me} is Primary and Synced"
                                   f" (cluster size {local.get('cluster_size')})")
        return _plan("wait_synced", f"{me} is in the Primary component"
                                    f" ({local.get('local_state_comment')})")
    if live is None:
        return _plan("probe", f"{me} is not in a Primary component: probe the peers")
    primary_peer = any((v or {}).get("primary") for v in live.values())
    running = bool(local.get("running"))
    if running and not local.get("reachable") and primary_peer:
        # Starting against a live Primary component (SST/IST): let it finish.
        return _plan("finish_join", f"{me} is starting and a peer is Primary")
    stop = None
    if running and local.get("reachable") and not local.get("wsrep_on"):
        # The package's postinst starts a standalone server; it must not keep the datadir.
        stop = "standalone server started by the package"
    elif running and not primary_peer:
        # Waiting for a Primary view nobody has (e.g. autostart after a full outage) or left
        # non-Primary: it serves nothing, and stopped its position can be recovered.
        stop = "server outside any Primary component"
    if not primary_peer:
        return _plan("gather", "no Primary component: every node's position decides", stop=stop)
    # Joining a live Primary component needs nobody's position.
    decision = bootstrap_decision(me, nodes, bootstrap_node, {}, live, force_node=force_node)
    return dict(decision, stop=stop)


# --------------------------------------------------------------------------- local node


def _server_pids():
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm", encoding="utf-8") as fh:
                comm = fh.read().strip()
        except OSError:
            continue
        if comm in SERVER_NAMES:
            pids.append(int(entry))
    return pids


def is_running():
    """
    True when a mariadbd/mysqld process runs on this host (whatever its state).

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.is_running
    """
    return bool(_server_pids())


def innodb_open(datadir=DATADIR):
    """
    True when a running server holds its InnoDB files open (it has started its engines).

    A server that waits for a Primary view (or for a state transfer) has not opened them yet;
    such a server ignores SIGTERM, and killing it cannot damage the data.

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.innodb_open
        salt moodle1 galera.innodb_open datadir=/srv/mysql
    """
    datadir = os.path.realpath(datadir or DATADIR)
    names = {os.path.join(datadir, n) for n in ("ibdata1", "ib_logfile0")}
    for pid in _server_pids():
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in names:
                    return True
            except OSError:
                continue
    return False


def query(sql, socket_path=SOCKET, timeout=10):
    """
    Run SQL as root over the unix socket (unix_socket authentication); return the rows.

    Rows are lists of column strings (``mariadb -B -N`` output).

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.query "SELECT @@wsrep_on"
        salt moodle1 galera.query "SELECT @@wsrep_on" socket_path=/run/mysqld/mysqld.sock
    """
    client = _first_existing(CLIENT_BINARIES)
    if client is None:
        raise CommandExecutionError("galera: no mariadb/mysql client binary")
    cmd = [client, "--protocol=socket", "-S", socket_path or SOCKET,
           "-u", "root", "-B", "-N", f"--connect-timeout={int(timeout)}", "-e", sql]
    res = __salt__["cmd.run_all"](cmd, python_shell=False, output_loglevel="quiet",
                                  timeout=timeout + 5)
    if res["retcode"] != 0:
        raise CommandExecutionError(f"galera: query failed: {res['stderr'].strip()}")
    return [line.split("\t") for line in res["stdout"].splitlines() if line]


def status(socket_path=SOCKET):
    """
    Return ``SHOW GLOBAL STATUS LIKE 'wsrep_%'`` as a dict of strings.

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.status
    """
    rows = query("SHOW GLOBAL STATUS LIKE 'wsrep_%'", socket_path)
    return {row[0]: (row[1] if len(row) > 1 else "") for row in rows}


def local_state(socket_path=SOCKET):
    """
    Summarise this node: running, wsrep enabled, component, local state, last committed seqno.

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.local_state
    """
    out = {"running": is_running(), "reachable": False, "wsrep_on": None, "cluster_status": None,
           "local_state": None, "local_state_comment": None, "cluster_size": None,
           "uuid": None, "last_committed": None, "read_only": None}
    if not out["running"]:
        return out
    try:
        var = {r[0].lower(): r[1] for r in query(
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('wsrep_on', 'read_only')",
            socket_path) if len(r) > 1}
        st = status(socket_path)
    except CommandExecutionError as exc:
        out["error"] = str(exc)
        return out
    out.update({
        "reachable": True,
        "wsrep_on": var.get("wsrep_on") == "ON",
        "read_only": var.get("read_only") == "ON",
        "cluster_status": st.get("wsrep_cluster_status"),
        "local_state": int(st["wsrep_local_state"]) if st.get("wsrep_local_state", "").isdigit()
        else None,
        "local_state_comment": st.get("wsrep_local_state_comment"),
        "cluster_size": int(st["wsrep_cluster_size"])
        if st.get("wsrep_cluster_size", "").isdigit() else None,
        "uuid": st.get("wsrep_local_state_uuid") or None,
        "last_committed": int(st["wsrep_last_committed"])
        if re.fullmatch(r"-?\d+", st.get("wsrep_last_committed", "")) else None,
    })
    return out


def is_primary(socket_path=SOCKET):
    """
    True when this node runs with wsrep on and belongs to a Primary component.

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.is_primary
    """
    return in_primary(local_state(socket_path))


def is_synced(socket_path=SOCKET):
    """
    True when this node is Primary and Synced (wsrep_local_state ``STATE_SYNCED``).

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.is_synced
    """
    return synced(local_state(socket_path))


def _grastate_path(path, datadir):
    return path or os.path.join(datadir or DATADIR, "grastate.dat")


def grastate(path=None, datadir=DATADIR):
    """
    Parse grastate.dat: ``{"version", "uuid", "seqno", "safe_to_bootstrap"}``; None if absent.

    ``path`` defaults to ``<datadir>/grastate.dat``.

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.grastate /var/lib/mysql/grastate.dat
        salt moodle1 galera.grastate datadir=/srv/mysql
    """
    path = _grastate_path(path, datadir)
    try:
        with open(path, encoding="utf-8") as fh:
            return parse_grastate(fh.read())
    except FileNotFoundError:
        return None


def set_safe_to_bootstrap(path=None, datadir=DATADIR):
    """
    Mark grastate.dat ``safe_to_bootstrap: 1`` (only the node chosen to bootstrap).

    ``path`` defaults to ``<datadir>/grastate.dat``. Returns True when the file changed.

    CLI Example:

    .. code-block:: bash

        salt moodle2 galera.set_safe_to_bootstrap
        salt moodle2 galera.set_safe_to_bootstrap datadir=/srv/mysql
    """
    path = _grastate_path(path, datadir)
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    new, count = re.subn(r"(?m)^safe_to_bootstrap:\s*\d+\s*$", "safe_to_bootstrap: 1", text)
    if count == 0:
        new = text.rstrip("\n") + "\nsafe_to_bootstrap: 1\n"
    if new == text:
        return False
    tmp = path + ".moodle_ha.tmp"
    st = os.stat(path)
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(new)
    os.chown(tmp, st.st_uid, st.st_gid)
    os.chmod(tmp, st.st_mode & 0o7777)
    os.replace(tmp, path)
    return True


def recover_position(user=SERVER_USER, timeout=300):
    """
    Run ``mariadbd --wsrep-recover`` and return the recovered ``{"uuid", "seqno"}``.

    Refuses while a server runs (the recovery would fight it for the data files).

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.recover_position
    """
    if is_running():
        raise CommandExecutionError("galera: mariadbd is running; stop it before --wsrep-recover")
    server = _first_existing(SERVER_BINARIES)
    cmd = [server, f"--user={user or SERVER_USER}", "--wsrep-recover", "--disable-log-error"]
    res = __salt__["cmd.run_all"](cmd, python_shell=False, timeout=timeout,
                                  output_loglevel="quiet")
    text = (res.get("stderr") or "") + "\n" + (res.get("stdout") or "")
    pos = parse_recovered_position(text)
    if pos is None:
        tail = "\n".join(text.strip().splitlines()[-5:])
        raise CommandExecutionError(
            f"galera: --wsrep-recover found no position (exit {res['retcode']}): {tail}")
    return pos


def position(use_cached=False, recover=True, stamp=False, socket_path=SOCKET, datadir=DATADIR,
             user=SERVER_USER):
    """
    This node's position record, as published to the mine for the bootstrap decision.

    ``{"time", "known", "running", "primary", "synced", "uuid", "seqno",
    "safe_to_bootstrap", "source"}``. A running member reports its live state
    (``source: status``); a stopped one reads grastate.dat and, when the seqno there is -1
    (crash), runs ``--wsrep-recover`` (``source: recovery``) unless ``recover`` is False.
    ``known`` is False when the position cannot be told (a server that runs but does not
    answer, or a crash not recovered): the bootstrap decision then counts it as unknown.
    ``use_cached`` returns the record computed earlier in this run (so ``mine.send`` does
    not recover twice), with the current time when ``stamp`` is True. ``socket_path``,
    ``datadir`` and ``user`` (the server's system user, for the recovery) locate the server.

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.position
        salt moodle1 mine.send moodle_ha_galera_position mine_function=galera.position
    """
    if use_cached and "galera.position" in __context__:
        rec = dict(__context__["galera.position"])
        if stamp:
            rec["time"] = int(time.time())
        return rec
    rec = {"time": int(time.time()), "known": True, "running": False, "primary": False,
           "synced": False, "uuid": None, "seqno": None, "safe_to_bootstrap": None,
           "source": "none"}
    st = local_state(socket_path)
    gra = grastate(datadir=datadir)
    if gra:
        rec["safe_to_bootstrap"] = gra["safe_to_bootstrap"]
    if st["running"]:
        rec["running"] = True
        if not st["reachable"]:
            # Starting, in a state transfer, or hung: where its data stands is not knowable.
            rec.update(known=False, source="running, not answering")
        elif not st["wsrep_on"]:
            # A standalone server (the package's first start): grastate.dat, if anything.
            rec["source"] = "grastate" if gra else "none"
            if gra:
                rec.update(uuid=gra["uuid"], seqno=gra["seqno"])
        else:
            rec.update(primary=in_primary(st), synced=synced(st),
                       uuid=st["uuid"], seqno=st["last_committed"], source="status")
    elif gra and gra["seqno"] is not None and gra["seqno"] >= 0:
        rec.update(uuid=gra["uuid"], seqno=gra["seqno"], source="grastate")
    elif gra and gra["uuid"] and gra["uuid"] != ZERO_UUID:
        if recover:
            rec.update(recover_position(user), source="recovery")
        else:
            rec.update(known=False, uuid=gra["uuid"], source="crashed, not recovered")
    elif gra:
        rec.update(uuid=gra["uuid"], seqno=gra["seqno"], source="grastate")
    __context__["galera.position"] = rec
    return rec


# --------------------------------------------------------------------------- peers


def port_open(host, port, timeout=2.0):
    """
    True when ``host:port`` accepts a TCP connection.

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.port_open 172.30.77.12 4567
    """
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def clustercheck(host, port=9200, timeout=3.0):
    """
    Ask a node's clustercheck service: ``{"code", "fields"}``, or None when it does not answer.

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.clustercheck 172.30.77.12
    """
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(b"GET / HTTP/1.0\r\nHost: " + str(host).encode() + b"\r\n\r\n")
            chunks = []
            while True:
                data = conn.recv(4096)
                if not data:
                    break
                chunks.append(data)
    except OSError:
        return None
    answer = parse_clustercheck(b"".join(chunks))
    return answer if answer["code"] is not None else None


def peer_live(host, clustercheck_port=9200, replication_port=4567):
    """
    What a peer shows over the network: ``{"primary": True|False|None, "port_open": bool}``.

    ``primary`` is read from the clustercheck body (``wsrep_cluster_status``); None when the
    service does not answer or cannot read the server's status.

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.peer_live 172.30.77.12
    """
    answer = clustercheck(host, clustercheck_port)
    primary = state = None
    maintenance = drain = False
    if answer is not None:
        fields = answer["fields"]
        if "wsrep_cluster_status" in fields:
            primary = fields["wsrep_cluster_status"] == "Primary"
        elif fields.get("mysqld") == "down":
            primary = False
        if fields.get("wsrep_local_state", "").isdigit():
            state = int(fields["wsrep_local_state"])
        maintenance = fields.get("maintenance") == "yes"
        drain = fields.get("drain") == "yes"
    return {"primary": primary, "port_open": port_open(host, replication_port),
            "code": answer["code"] if answer else None, "state": state,
            "maintenance": maintenance, "drain": drain}


def busy_peers(live):
    """
    Peers in the middle of a state transfer or start (Joining, Donor, Joined, or a Galera
    port open without a readable Synced state); a pure function of :py:func:`peer_live` data.
    A node in maintenance or draining (desynced for its backup) is not busy.

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.busy_peers '{moodle2: {port_open: true, state: 1}}'
    """
    return sorted(
        name for name, v in live.items()
        if v.get("port_open") and v.get("state") != STATE_SYNCED
        and not v.get("maintenance") and not v.get("drain")
    )

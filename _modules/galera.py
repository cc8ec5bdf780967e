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

# Schema directories every MariaDB datadir may hold before it joins (mariadb-install-db and the
# package create them; "test" is the old installer's sample): never user data to protect.
SYSTEM_SCHEMAS = frozenset({"mysql", "performance_schema", "sys", "information_schema", "test"})
# The mariadb client's answer when the server refuses a login ("ERROR %d (%s): ..." in
# client/mysql.cc; codes from sql/share/errmsg-utf8.txt): ER_ACCESS_DENIED_ERROR 1045,
# ER_ACCESS_DENIED_NO_PASSWORD_ERROR 1698, ER_MUST_CHANGE_PASSWORD_LOGIN 1862,
# ER_ACCOUNT_HAS_BEEN_LOCKED 4151. moodle_ha/galera/files/clustercheck.jinja matches the same
# codes and answers CLUSTERCHECK_LOGIN_REFUSED (never the server's text) in its body.
CLUSTERCHECK_LOGIN_REFUSED = ("clustercheck", "login refused")

_RECOVERED_RE = re.compile(
    r"WSREP: Recovered position:\s*"
    r"(?P<uuid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):(?P<seqno>-?\d+)"
)
# sql/handler.cc ha_recover(): a crash between prepare and commit of a replicated transaction
# leaves it prepared in InnoDB, and --wsrep-recover aborts on it (the pattern of ClusterLabs'
# heartbeat/galera agent).
_PREPARED_XA_RE = re.compile(r"\[ERROR\]\s+Found\s+(?P<count>\d+)\s+prepared\s+transactions!")
_UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_SCHEMA_NAME_CODE_RE = re.compile(r"@([0-9a-fA-F]{4})")


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


def parse_prepared_xa(text):
    """
    Count the prepared transactions a ``--wsrep-recover`` log says it stopped on; None when
    it says nothing of them (``[ERROR] Found N prepared transactions!``, sql/handler.cc).
    """
    match = _PREPARED_XA_RE.search(text or "")
    return int(match.group("count")) if match else None


def gvwstate_problem(text):
    """
    Why the text of gvwstate.dat cannot be a saved Primary view, or None when it can.

    Galera writes ``my_uuid: <uuid>`` then the view between ``#vwbeg`` and ``#vwend``
    (``view_id: <type> <uuid> <seq>``, ``bootstrap: <n>``, one ``member: <uuid> <segment>``
    per node; gcomm/src/view.cpp). An ungraceful stop can leave it empty
    (codership/galera#354), and a node that reads a broken one cannot join.
    """
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return "empty"
    if not re.fullmatch(rf"my_uuid:\s*{_UUID_RE}", lines[0]):
        return "no my_uuid line first"
    if "#vwbeg" not in lines or "#vwend" not in lines or \
            lines.index("#vwend") < lines.index("#vwbeg"):
        return "no complete #vwbeg ... #vwend view"
    view = lines[lines.index("#vwbeg") + 1:lines.index("#vwend")]
    if not any(re.fullmatch(rf"view_id:\s*\d+\s+{_UUID_RE}\s+\d+", line) for line in view):
        return "no valid view_id line"
    if not any(re.fullmatch(rf"member:\s*{_UUID_RE}\s+\d+", line) for line in view):
        return "no member line"
    return None


def parse_clustercheck(raw):
    """
    Parse a clustercheck HTTP answer: ``{"code": int|None, "fields": {key: value},
    "login_refused": bool}``.

    The body carries ``key: value`` lines (wsrep_local_state, wsrep_cluster_status, ...).
    ``login_refused``: the service answered that its local server refuses the clustercheck
    account (``clustercheck: login refused``), so the node's state cannot be read.
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
    key, value = CLUSTERCHECK_LOGIN_REFUSED
    return {"code": code, "fields": fields,
            "login_refused": code == 503 and fields.get(key) == value}


def known(pos):
    """True when a position record says where the node's data stands."""
    return pos is not None and pos.get("known", True) is not False


def has_data(pos):
    """True when a position record names a real cluster history (uuid not zero, seqno >= 0)."""
    if not pos:
        return False
    uuid, seqno = pos.get("uuid"), pos.get("seqno")
    return bool(uuid) and uuid != ZERO_UUID and seqno is not None and seqno >= 0


def reachable(peer):
    """
    True when a :py:func:`peer_live` record shows anything answering on that host: its
    clustercheck (any HTTP answer, even "mysqld: down") or its replication port.
    """
    peer = peer or {}
    return bool(peer.get("port_open") or peer.get("code") is not None
                or peer.get("primary") is not None or peer.get("login_refused"))


def marked_safe(pos):
    """
    True when a position record is that of the last node to leave its Primary component
    cleanly: grastate.dat says ``safe_to_bootstrap: 1`` with a real seqno (not -1: a node
    that crashed keeps no trustworthy mark; ClusterLabs' heartbeat/galera drops it then too).
    """
    return bool(known(pos) and pos.get("safe_to_bootstrap") and pos.get("source") == "grastate"
                and has_data(pos))


def describe_positions(positions):
    """
    One line naming every node's position record (for comments and logs).

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.describe_positions '{moodle1: {uuid: ..., seqno: 5}, moodle2: null}'
    """
    if not positions:
        return "a peer is Primary"
    parts = []
    for name in sorted(positions):
        rec = positions[name]
        if rec is None or rec.get("known") is False:
            parts.append(f"{name}=unknown" + (f" ({rec.get('source')})" if rec else ""))
        else:
            flag = " safe_to_bootstrap" if rec.get("safe_to_bootstrap") else ""
            run = " running" if rec.get("running") else ""
            rolled = (f" rolled back {rec['rolled_back']} prepared transaction(s)"
                      if rec.get("rolled_back") else "")
            parts.append(f"{name}={rec.get('uuid')}:{rec.get('seqno')}"
                         f" ({rec.get('source')}{run}{flag}{rolled})")
    return "; ".join(parts)


def _choose(candidates, positions, bootstrap_node):
    """
    Most advanced node; ties: marked safe_to_bootstrap, then not rolled back by
    --tc-heuristic-recover, then the designated node, then name.
    """
    top = max(positions[n]["seqno"] for n in candidates)
    best = sorted(n for n in candidates if positions[n]["seqno"] == top)
    marked = [n for n in best if positions[n].get("safe_to_bootstrap")]
    if marked:
        return marked[0], f"highest seqno {top}, marked safe_to_bootstrap"
    note = ""
    intact = [n for n in best if not positions[n].get("rolled_back")]
    if intact and len(intact) < len(best):
        note = (f", {', '.join(n for n in best if n not in intact)} passed over"
                " (prepared transactions rolled back at recovery)")
        best = intact
    if bootstrap_node in best:
        return bootstrap_node, f"highest seqno {top}" + (
            f", tie of {', '.join(best)} broken by galera:bootstrap_node" if len(best) > 1
            else "") + note
    return best[0], f"highest seqno {top}" + (
        f", tie of {', '.join(best)} broken by name" if len(best) > 1 else "") + note


def _force_example(node, pos):
    seqno = pos.get("seqno") if known(pos) else None
    return (f"galera:force_bootstrap: {{node: {node}, seqno: "
            f"{seqno if seqno is not None else '<its recovered seqno>'}}}")


def _forced(me, nodes, force, positions, live):
    """
    Check an operator's galera:force_bootstrap against this outage; return
    ``(node, None)`` when it holds, ``(None, why not)`` otherwise.

    The value is ``{node: <name>, seqno: <that node's recovered seqno>}`` (``uuid`` too,
    optionally): a one-shot token. Once the forced node has bootstrapped and committed, its
    seqno moves on, so a value left in pillar never matches a later outage.
    """
    peers = [n for n in nodes if n != me]
    if not isinstance(force, dict):
        mine = positions.get(me) or {}
        return None, (
            f"galera:force_bootstrap must name a node and its recovered seqno, got {force!r}"
            " (a bare node name is not accepted: left in pillar it would bootstrap that node"
            " again after a later partition or outage); to bootstrap this node now set"
            f" {_force_example(me, mine)}")
    node, seqno, uuid = force.get("node"), force.get("seqno"), force.get("uuid")
    if node not in nodes:
        return None, f"galera:force_bootstrap:node {node!r} is not a galera node"
    if isinstance(seqno, bool) or not isinstance(seqno, int):
        return None, (f"galera:force_bootstrap:seqno must be the integer seqno {node} recovered,"
                      f" got {seqno!r}")
    answering = []
    for peer in sorted(peers):
        rec = live.get(peer) or {}
        if reachable(rec):
            what = [w for w, on in (
                ("clustercheck answers", rec.get("code") is not None
                 or rec.get("primary") is not None or rec.get("login_refused")),
                ("replication port open", rec.get("port_open"))) if on]
            answering.append(f"{peer} ({', '.join(what)})")
    if answering:
        return None, (
            "galera:force_bootstrap is honoured only while no other galera node is reachable"
            f" at all, and {', '.join(answering)}: apply moodle_ha.galera on all galera nodes"
            " in one run so that their positions decide, or take the others down first")
    if node != me:
        return None, (
            f"galera:force_bootstrap names {node}, which this node cannot reach: apply the"
            f" state on {node} alone; this node joins once {node} is Primary")
    pos = positions.get(me)
    if not known(pos) or pos.get("seqno") is None:
        return None, (f"galera:force_bootstrap names {me}, but its own position is unknown"
                      f" ({(pos or {}).get('source', 'no record')})")
    if seqno != pos["seqno"] or (uuid is not None and uuid != pos.get("uuid")):
        return None, (
            f"galera:force_bootstrap {force} does not match this outage: {me} is now at"
            f" {pos.get('uuid')}:{pos['seqno']} (a value left over from an earlier outage);"
            f" to bootstrap {me} anyway set {_force_example(me, pos)}")
    return node, None


def bootstrap_decision(me, nodes, bootstrap_node, positions, live, force=None):
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
        ``{peer: peer_live record}`` for every other node: ``primary`` from its clustercheck
        body (None: no readable answer), ``port_open`` whether its Galera replication port
        accepts connections, ``code`` the clustercheck HTTP status (None: no answer),
        ``login_refused`` its clustercheck cannot log in to its server.
    force
        Operator's override (pillar ``galera:force_bootstrap``): ``{node, seqno}`` (and
        optionally ``uuid``), honoured only on that node, while no other galera node is
        reachable at all, and when ``seqno`` is the one that node recovered now.

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

    if force is not None:
        chosen, problem = _forced(me, nodes, force, positions, live)
        if problem:
            return {"action": "refuse", "node": None, "reason": problem}
        why = (f"forced by galera:force_bootstrap {force}, no other galera node reachable;"
               f" overriding the positions {describe_positions(positions)}")
    else:
        unknown = sorted(n for n in nodes if not known(positions.get(n)))
        safe = [n for n in nodes if marked_safe(positions.get(n))]
        others = [positions[n] for n in nodes if n not in unknown and n not in safe]
        if unknown and len(safe) == 1 and all(
                not has_data(p) or (p["uuid"] == positions[safe[0]]["uuid"]
                                    and p["seqno"] <= positions[safe[0]]["seqno"])
                for p in others):
            # The last node to leave the Primary component cleanly holds everything the
            # others had: nobody else's position is needed (ClusterLabs' heartbeat/galera).
            chosen = safe[0]
            why = (f"{chosen} is the only node marked safe_to_bootstrap (it left the Primary"
                   f" component last, cleanly); not waiting for {', '.join(unknown)}")
        elif unknown:
            return {"action": "refuse", "node": None, "reason": (
                f"no Primary component and the positions of {', '.join(unknown)} are unknown:"
                " apply moodle_ha.galera on all galera nodes in one run (each publishes its"
                " position to the mine); if a node is lost for good, remove it from"
                " topology:hosts; if the others are down and must stay so, set"
                f" {_force_example(me, mine)} for this node")}
        else:
            with_data = [n for n in nodes if has_data(positions[n])]
            uuids = sorted({positions[n]["uuid"] for n in with_data})
            if len(uuids) > 1:
                detail = ", ".join(f"{n}={positions[n]['uuid']}" for n in sorted(with_data))
                return {"action": "refuse", "node": None, "reason": (
                    f"nodes carry different cluster histories ({detail}): keep one; stop"
                    " MariaDB on the nodes of the other and move their grastate.dat away"
                    " (with galera:discard_existing_schemas: true for them, they then join"
                    " by SST and their data is replaced), then apply again")}
            if not with_data:
                chosen = bootstrap_node if bootstrap_node in nodes else sorted(nodes)[0]
                why = "brand-new cluster (no node has a cluster position)"
            else:
                chosen, why = _choose(with_data, positions, bootstrap_node)

    if chosen != me:
        return {"action": "wait", "node": chosen, "reason": f"{chosen} bootstraps ({why})"}
    if unreadable:
        refused = sorted(p for p in unreadable if (live.get(p) or {}).get("login_refused"))
        detail = (f"; the clustercheck of {', '.join(refused)} cannot log in to its server:"
                  " the clustercheck credentials (secrets:clustercheck_password) are refused"
                  " there") if refused else ""
        return {"action": "refuse", "node": me, "reason": (
            f"{me} would bootstrap ({why}) but {', '.join(unreadable)} run Galera with an"
            " unreadable state (replication port open, clustercheck not answering):"
            f" a Primary component may exist{detail}")}
    return {"action": "bootstrap", "node": me, "reason": why}


def decision_ready(me, nodes, positions, live, force=None):
    """
    True when the positions gathered so far are enough for :py:func:`bootstrap_decision`:
    every node's is known, or exactly one node is marked safe_to_bootstrap, or a
    galera:force_bootstrap for this node meets no reachable peer. The state stops waiting
    for the other positions then.

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.decision_ready moodle1 '[moodle1, moodle2]' \\
            '{moodle1: {uuid: ..., seqno: 5, safe_to_bootstrap: true, source: grastate}}' '{}'
    """
    if all(known(positions.get(n)) for n in nodes):
        return True
    if len([n for n in nodes if marked_safe(positions.get(n))]) == 1:
        return True
    return bool(isinstance(force, dict) and force.get("node") == me
                and not any(reachable(v) for p, v in (live or {}).items() if p != me))


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


def outside_primary(local):
    """
    Why a running local server provably belongs to no Primary component, or None.

    Proofs: it answers with wsrep off (the package's standalone server), it answers with a
    ``wsrep_cluster_status`` other than Primary, or it does not answer and has not opened its
    InnoDB files (``innodb_open`` False: waiting for a Primary view or a state transfer,
    serving nothing). A server that does not answer with InnoDB open (or unknown) may be
    the last node of a Primary component that is merely slow (a long DDL): no proof.

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.outside_primary '{running: true, reachable: true, wsrep_on: true,
            cluster_status: non-Primary}'
    """
    if not local.get("running"):
        return None
    if local.get("reachable"):
        if not local.get("wsrep_on"):
            return "standalone server started by the package"
        status_ = local.get("cluster_status")
        if isinstance(status_, str) and status_ and status_ != "Primary":
            return f"server outside any Primary component (wsrep_cluster_status {status_})"
        return None
    if local.get("innodb_open") is False:
        return "server waiting for a Primary view (not answering, InnoDB not open)"
    return None


def leave_plan(local, min_remaining=2):
    """
    Whether this node may leave its cluster now (a host marked ``decommission``): a dict
    ``{"action": "none"|"stop"|"wait"|"refuse", "reason": str}`` from a
    :py:func:`local_state` record.

    Not running: nothing to do. Outside any Primary component: stop (it holds no vote
    anyone counts). Primary but not Synced (a donor, desynced for a backup): wait. Primary
    and Synced: stop, with a clean shutdown that tells the others it leaves (their view
    shrinks without a partition), unless fewer than ``min_remaining`` members would stay.
    A server that does not answer is never stopped blind.

    CLI Example:

    .. code-block:: bash

        salt moodle4 galera.leave_plan "$(salt moodle4 galera.local_state --out=json)"
    """
    if not local.get("running"):
        return {"action": "none", "reason": "the server is not running"}
    if not local.get("reachable"):
        return {"action": "refuse", "reason": "the server runs but cannot be queried"
                f" ({local.get('error') or 'no answer'}); it is never stopped blind"}
    outside = outside_primary(local)
    if outside:
        return {"action": "stop", "reason": f"{outside}: stopping it takes no vote from the"
                " cluster"}
    size = local.get("cluster_size")
    if not isinstance(size, int) or size - 1 < min_remaining:
        return {"action": "refuse", "reason": f"wsrep_cluster_size is {size}: leaving would"
                f" leave fewer than {min_remaining} members"}
    if local.get("local_state") != STATE_SYNCED:
        return {"action": "wait", "reason": "the node is"
                f" {local.get('local_state_comment') or local.get('local_state')}, not Synced"}
    return {"action": "stop", "reason": f"Synced member of a Primary component of {size}:"
            f" {size - 1} stay"}


def _plan(action, reason, node=None, stop=None):
    return {"action": action, "node": node, "reason": reason, "stop": stop}


def _schemas_refusal(me, schemas):
    return (f"{me}'s datadir holds a database that is not part of the cluster (no Galera"
            f" state) with the schemas {', '.join(schemas)}: joining would replace it by a"
            " state transfer. Back it up or move it away, or set"
            " galera:discard_existing_schemas: true to let the join discard it")


def member_plan(me, nodes, bootstrap_node, local, live=None, positions=None, force=None,
                existing_schemas=None):
    """
    Decide the next step of node ``me`` towards a Synced member of a Primary component;
    a pure function of what is known so far.

    The state ``galera.cluster_member`` calls it with ``local`` first and again with each
    fact the answer asks for (``probe``: ``live``; ``gather``: ``positions``), then carries
    the plan out. Given ``positions``, the answer is :py:func:`bootstrap_decision`'s (or a
    refusal to join over existing schemas): the local server was dealt with before they were
    gathered.

    me, nodes, bootstrap_node, force
        As for :py:func:`bootstrap_decision`.
    local
        This node's :py:func:`local_state`; for a running server that does not answer, with
        ``innodb_open`` (:py:func:`innodb_open`).
    live
        ``{peer: peer_live record}`` for every other node, or None before they are probed.
    positions
        ``{name: position record or None}``, or None before they are gathered (after the
        ``stop``). Needed only when no Primary component is visible.
    existing_schemas
        :py:func:`non_galera_schemas` of this node's datadir, unless the operator allowed
        discarding them (``galera:discard_existing_schemas``): a join (which replaces the
        datadir by SST) is refused while there are any. A bootstrap keeps them.

    Returns ``{"action", "node", "reason", "stop"}``. ``stop`` is None, or why the running
    local server must be stopped first (:py:func:`outside_primary`: provably outside any
    Primary component; stopped, its position can be recovered). Actions:

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
    ``unreachable``
        No Primary peer visible and the local server runs without answering, InnoDB open:
        it may be the last node of a Primary component under a long operation. Never
        stopped: ask again a bounded time, then fail.
    ``none``, ``join``, ``wait`` (wait for ``node`` to bootstrap, then join), ``bootstrap``,
    ``refuse``
        :py:func:`bootstrap_decision` on the facts.

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.member_plan moodle1 '[moodle1, moodle2]' moodle1 \\
            '{running: false}' '{moodle2: {primary: true, port_open: true}}'
    """
    schemas = sorted(existing_schemas or [])
    if positions is not None:
        # The last call: the local server was dealt with (stopped if the plan said so) before
        # the positions were gathered; now they decide.
        decision = bootstrap_decision(me, nodes, bootstrap_node, positions, live or {},
                                      force=force)
        if schemas and decision["action"] in ("join", "wait"):
            return _plan("refuse", _schemas_refusal(me, schemas))
        return dict(decision, stop=None)
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
    proof = outside_primary(local)
    stop = None
    if running and local.get("reachable") and not local.get("wsrep_on"):
        # The package's postinst starts a standalone server; it must not keep the datadir.
        stop = proof
    elif running and not primary_peer:
        # Waiting for a Primary view nobody has (e.g. autostart after a full outage) or left
        # non-Primary: it serves nothing, and stopped its position can be recovered. (With a
        # Primary peer, the join restarts it.)
        stop = proof
    if running and not primary_peer and stop is None:
        error = local.get("error")
        return _plan("unreachable", (
            f"{me}'s server runs but cannot be queried"
            + (f" ({error})" if error else "")
            + ", and no peer is Primary: it may be the last node of a Primary component,"
            " merely slow (a long DDL, a lock); it is not stopped"))
    if schemas:
        # Only a bootstrap keeps the datadir; refuse before stopping anything when this
        # node cannot be the one to bootstrap (a Primary peer to join, or another node
        # designated for a brand-new cluster and no force for this one).
        designated = bootstrap_node if bootstrap_node in nodes else sorted(nodes)[0]
        forced_here = isinstance(force, dict) and force.get("node") == me
        if primary_peer or (designated != me and not forced_here):
            return _plan("refuse", _schemas_refusal(me, schemas))
    if not primary_peer:
        return _plan("gather", "no Primary component: every node's position decides", stop=stop)
    # Joining a live Primary component needs nobody's position.
    decision = bootstrap_decision(me, nodes, bootstrap_node, {}, live, force=force)
    return dict(decision, stop=stop)


# --------------------------------------------------------------------------- datadir


def _schema_name(dirname):
    """A schema's name from its directory name (MariaDB writes other characters as @xxxx)."""
    return _SCHEMA_NAME_CODE_RE.sub(lambda m: chr(int(m.group(1), 16)), dirname)


def schemas_in_datadir(datadir=DATADIR):
    """
    User schemas found in a datadir, without a running server: directories holding a
    ``db.opt`` or table files (``.frm``, ``.ibd``), except the system schemas
    (``SYSTEM_SCHEMAS``) and the server's own ``#``-prefixed directories (``#innodb_temp``,
    ``#innodb_redo``, ``#mysql50#...``, ``#sql...``). Sorted names.

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.schemas_in_datadir
    """
    datadir = datadir or DATADIR
    found = []
    try:
        entries = sorted(os.listdir(datadir))
    except FileNotFoundError:
        return []
    for entry in entries:
        path = os.path.join(datadir, entry)
        if entry.startswith(("#", ".")) or entry == "lost+found" or not os.path.isdir(path):
            continue
        name = _schema_name(entry)
        if name in SYSTEM_SCHEMAS:
            continue
        try:
            files = os.listdir(path)
        except OSError:
            continue
        if "db.opt" in files or any(f.endswith((".frm", ".ibd")) for f in files):
            found.append(name)
    return sorted(found)


# prepare_rejoin (_modules/moodle_ha_backup.py) renames grastate.dat to this prefix + name.
REJOIN_MARK = "grastate.dat.before-restore-"


def non_galera_schemas(datadir=DATADIR):
    """
    User schemas of a database that is not part of any Galera cluster (a MariaDB installed
    and used before the formula): the datadir has no grastate.dat, or one with the zero
    uuid, and :py:func:`schemas_in_datadir` finds user schemas. Empty otherwise.

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.non_galera_schemas
        salt moodle1 galera.non_galera_schemas datadir=/srv/mysql
    """
    gra = grastate(datadir=datadir)
    if gra and gra.get("uuid") and gra["uuid"] != ZERO_UUID:
        return []
    # A member whose Galera state was set aside for a confirmed restore
    # (moodle_ha_backup.prepare_rejoin): its data is the cluster's, to be replaced by SST.
    try:
        entries = os.listdir(datadir or DATADIR)
    except FileNotFoundError:
        entries = []
    if any(entry.startswith(REJOIN_MARK) for entry in entries):
        return []
    return schemas_in_datadir(datadir)


def clear_bad_gvwstate(datadir=DATADIR):
    """
    Move an empty or corrupt gvwstate.dat aside (``gvwstate.dat.invalid-<unix time>``, kept
    for inspection) so the next start does not trip over it (codership/galera#354); the
    node then joins the normal way. Only while no server runs. Returns
    ``{"path", "moved_to", "problem"}`` when it moved one, else None.

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.clear_bad_gvwstate
    """
    path = os.path.join(datadir or DATADIR, "gvwstate.dat")
    if is_running():
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except FileNotFoundError:
        return None
    problem = gvwstate_problem(text)
    if problem is None:
        return None
    moved = f"{path}.invalid-{int(time.time())}"
    os.replace(path, moved)
    log.warning("galera: %s was %s; moved to %s", path, problem, moved)
    return {"path": path, "moved_to": moved, "problem": problem}


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
           "uuid": None, "last_committed": None, "read_only": None, "conf_id": None}
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
        # Counts the views this component installed: steady while membership is.
        "conf_id": int(st["wsrep_cluster_conf_id"])
        if re.fullmatch(r"-?\d+", st.get("wsrep_cluster_conf_id", "")) else None,
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


def _run_recovery(server, user, timeout, extra=()):
    cmd = [server, f"--user={user or SERVER_USER}", "--wsrep-recover", *extra,
           "--disable-log-error"]
    res = __salt__["cmd.run_all"](cmd, python_shell=False, timeout=timeout,
                                  output_loglevel="quiet")
    return res, (res.get("stderr") or "") + "\n" + (res.get("stdout") or "")


def recover_position(user=SERVER_USER, timeout=300):
    """
    Run ``mariadbd --wsrep-recover`` and return the recovered ``{"uuid", "seqno"}``.

    Refuses while a server runs (the recovery would fight it for the data files). When the
    recovery stops on prepared transactions (a crash between prepare and commit of a
    replicated transaction: ``[ERROR] Found N prepared transactions!``), they are rolled back
    with ``--tc-heuristic-recover=rollback`` and the position recovered again, as ClusterLabs'
    heartbeat/galera agent does; the record then carries ``rolled_back: N`` (the rolled-back
    writesets come back from the cluster when the node joins; the bootstrap choice passes
    over such a node on a tie).

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.recover_position
    """
    if is_running():
        raise CommandExecutionError("galera: mariadbd is running; stop it before --wsrep-recover")
    server = _first_existing(SERVER_BINARIES)
    res, text = _run_recovery(server, user, timeout)
    pos = parse_recovered_position(text)
    prepared = parse_prepared_xa(text) if pos is None else None
    if prepared:
        log.warning("galera: --wsrep-recover found %s prepared transaction(s); rolling back",
                    prepared)
        res, text = _run_recovery(server, user, timeout, ["--tc-heuristic-recover=rollback"])
        pos = parse_recovered_position(text)
        if pos is None:
            # The heuristic recovery exits once it has rolled back ("Please restart ...
            # without --tc-heuristic-recover", sql/log.cc): recover the position again.
            res, text = _run_recovery(server, user, timeout)
            pos = parse_recovered_position(text)
        if pos is not None:
            pos["rolled_back"] = prepared
    if pos is None:
        tail = "\n".join(text.strip().splitlines()[-5:])
        what = (f" after rolling back {prepared} prepared transaction(s)"
                " (--tc-heuristic-recover=rollback)") if prepared else ""
        raise CommandExecutionError(
            f"galera: --wsrep-recover found no position{what} (exit {res['retcode']}): {tail}")
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
    What a peer shows over the network: ``{"primary": True|False|None, "port_open": bool,
    "code", "state", "maintenance", "drain", "login_refused"}``.

    ``primary`` is read from the clustercheck body (``wsrep_cluster_status``); None when the
    service does not answer or cannot read the server's status. ``login_refused``: the
    peer's server refuses its clustercheck account (wrong secrets:clustercheck_password, or
    the account not created yet), so its state cannot be read.

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.peer_live 172.30.77.12
    """
    answer = clustercheck(host, clustercheck_port)
    primary = state = None
    maintenance = drain = login_refused = False
    if answer is not None:
        login_refused = answer.get("login_refused", False)
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
            "maintenance": maintenance, "drain": drain, "login_refused": login_refused}


def login_refused_peers(live):
    """
    Galera peers (replication port open) whose clustercheck cannot log in to their own
    server (``login_refused`` in :py:func:`peer_live` data): whether they are Primary cannot
    be read; a pure function. A peer without Galera running (the package's standalone
    server before the formula configured it) has no clustercheck account yet: not counted.

    CLI Example:

    .. code-block:: bash

        salt moodle1 galera.login_refused_peers '{moodle2: {port_open: true, login_refused: true}}'
    """
    return sorted(name for name, v in live.items()
                  if (v or {}).get("login_refused") and v.get("port_open"))


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

"""
Bring a MariaDB Galera node into the cluster: join a Primary component, or bootstrap one
only when that is provably safe.

.. code-block:: yaml

    moodle_ha-galera-cluster-member:
      galera.cluster_member:
        - name: moodle1
        - nodes: [{name: moodle1, ip: 172.30.77.11}, {name: moodle2, ip: 172.30.77.12}, ...]
        - bootstrap_node: moodle1

Peer information: each node publishes :py:func:`galera.position <_modules.galera.position>`
to the Salt mine (``moodle_ha_galera_position``) when it is not already Primary and Synced,
then reads the other nodes' records from the mine; liveness comes straight from the peers'
clustercheck (:9200, body ``wsrep_cluster_status``) and replication port (4567). Applying
the state to every Galera node in one job lets all of them publish and agree; applied to
one node alone (or masterless) it joins a live Primary component or refuses, never guesses.
"""

import logging
import time

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "galera"

MINE_NAME = "moodle_ha_galera_position"
POLL = 2.0
# Seconds between the first join attempts of nodes, by name order.
JOIN_STAGGER = 8.0


def __virtual__():
    if "galera.position" not in __salt__:
        return (False, "galera state: the galera execution module is not available")
    return __virtualname__


def _peers(name, nodes):
    return [n for n in nodes if n["name"] != name]


def _live(peers, clustercheck_port, replication_port):
    return {p["name"]: __salt__["galera.peer_live"](p["ip"], clustercheck_port, replication_port)
            for p in peers}


def _mine_positions(names, max_age):
    """Fresh mine records of ``names``; missing or older than max_age -> None."""
    data = __salt__["mine.get"](",".join(names), MINE_NAME, tgt_type="list") or {}
    now = time.time()
    out = {}
    for name in names:
        rec = data.get(name)
        if isinstance(rec, dict) and now - rec.get("time", 0) <= max_age:
            out[name] = rec
        else:
            out[name] = None
    return out


def _systemctl(verb, service, timeout):
    res = __salt__["cmd.run_all"](["systemctl", verb, service], python_shell=False,
                                  timeout=timeout)
    if res["retcode"] != 0:
        raise CommandExecutionError(
            f"systemctl {verb} {service} failed: {res['stderr'].strip() or res['stdout']}")


def _stop_server(local, service, timeout):
    """
    Stop the local server. One that waits for a Primary view ignores SIGTERM (and Debian's
    unit has SendSIGKILL=no, so `systemctl stop` hung for good in the lab); it has not
    opened InnoDB yet, so it is killed instead. Anything with InnoDB open stops gracefully.
    """
    if not local.get("reachable") and not __salt__["galera.innodb_open"]():
        __salt__["cmd.run_all"](["systemctl", "kill", "--signal=SIGKILL", service],
                                python_shell=False, timeout=30)
        deadline = time.monotonic() + 60
        while __salt__["galera.is_running"]():
            if time.monotonic() >= deadline:
                raise CommandExecutionError("the server did not exit after SIGKILL")
            time.sleep(POLL / 4)
        # Let systemd finish the unit's pending stop job before the next start.
        __salt__["cmd.run_all"](["systemctl", "stop", service], python_shell=False,
                                timeout=60)
        return "killed (waiting for a Primary view, InnoDB not open)"
    _systemctl("stop", service, timeout)
    return "stopped"


def _wait_synced(timeout):
    deadline = time.monotonic() + timeout
    st = {}
    while time.monotonic() < deadline:
        st = __salt__["galera.local_state"]()
        if st["wsrep_on"] and st["cluster_status"] == "Primary" and st["local_state"] == 4:
            return st
        time.sleep(POLL)
    raise CommandExecutionError(
        f"not Synced after {timeout} s (cluster_status {st.get('cluster_status')},"
        f" state {st.get('local_state_comment')})")


def _publish():
    """
    (Re)publish this stopped node's position, stamped now. Nodes keep doing it while they
    wait, so a short position_max_age tells a live participant of this run from a record
    left by an earlier outage (the node may have run and committed since).
    """
    __salt__["mine.send"](MINE_NAME, mine_function="galera.position", use_cached=True,
                          stamp=True)


def _wait_primary_peer(peers, clustercheck_port, replication_port, timeout):
    deadline = time.monotonic() + timeout
    while True:
        _publish()
        live = _live(peers, clustercheck_port, replication_port)
        primaries = sorted(p for p, v in live.items() if v["primary"])
        if primaries:
            return primaries
        if time.monotonic() >= deadline:
            raise CommandExecutionError(f"no peer reached a Primary component within {timeout} s")
        time.sleep(POLL)


def _describe(positions):
    parts = []
    for name in sorted(positions):
        rec = positions[name]
        if rec is None or rec.get("known") is False:
            parts.append(f"{name}=unknown" + (f" ({rec.get('source')})" if rec else ""))
        else:
            flag = " safe_to_bootstrap" if rec.get("safe_to_bootstrap") else ""
            run = " running" if rec.get("running") else ""
            parts.append(f"{name}={rec.get('uuid')}:{rec.get('seqno')}"
                         f" ({rec.get('source')}{run}{flag})")
    return "; ".join(parts)


def _wait_join_turn(name, nodes, clustercheck_port, replication_port, timeout):
    """
    One state transfer at a time: two joiners at once made the donor's view change time out
    under load and the bootstrap node fell to non-Primary (lab). Nodes start their checks
    staggered by name among the nodes not yet Primary, then wait until no peer is
    Joining/Donor/Joined.
    """
    peers = _peers(name, nodes)
    live = _live(peers, clustercheck_port, replication_port)
    order = sorted([name] + [p for p, v in live.items() if not v["primary"]])
    time.sleep(order.index(name) * JOIN_STAGGER)
    deadline = time.monotonic() + timeout
    while True:
        _publish()
        busy = __salt__["galera.busy_peers"](_live(peers, clustercheck_port, replication_port))
        if not busy:
            return
        if time.monotonic() >= deadline:
            raise CommandExecutionError(
                f"{', '.join(busy)} still transferring state (or desynced) after {timeout} s:"
                " not joining now (a second joiner can cost the donor its Primary component)")
        time.sleep(POLL)


def _join(ret, local, service, timeout, why):
    t0 = time.monotonic()
    if local["running"]:
        _systemctl("restart", service, timeout)
        verb = "restarted to join"
    else:
        _systemctl("start", service, timeout)
        verb = "started and joined"
    st = _wait_synced(timeout)
    ret["changes"] = {"galera": {"old": local.get("local_state_comment") or "stopped",
                                 "new": f"{verb} ({why}), Synced, cluster size"
                                        f" {st['cluster_size']}"}}
    ret["comment"] = f"{verb}; Synced {time.monotonic() - t0:.0f} s after the start command"
    return ret


def _bootstrap(ret, local, service, timeout, why):
    how = "galera_new_cluster"
    if local["running"]:
        # A server left in a non-Primary component is stopped (its position is then in
        # grastate.dat) rather than bootstrapped in place with pc.bootstrap=YES: in the lab
        # that kept a donor aborted earlier stuck in Donor/Desynced.
        _stop_server(local, service, timeout)
        how = "stopped the non-Primary server, galera_new_cluster"
    gra = __salt__["galera.grastate"]()
    if gra is not None and not gra.get("safe_to_bootstrap"):
        __salt__["galera.set_safe_to_bootstrap"]()
    res = __salt__["cmd.run_all"](["galera_new_cluster"], python_shell=False, timeout=timeout)
    if res["retcode"] != 0:
        raise CommandExecutionError(f"galera_new_cluster failed: {res['stderr'].strip()}")
    st = _wait_synced(timeout)
    ret["changes"] = {"galera": {"old": local.get("local_state_comment") or "stopped",
                                 "new": f"bootstrapped a new Primary component ({how}; {why})",
                                 "cluster_size": st["cluster_size"]}}
    ret["comment"] = f"Bootstrapped: {why}"
    return ret


def cluster_member(
    name,
    nodes,
    bootstrap_node,
    timeout=300,
    peer_wait=300,
    service="mariadb",
    clustercheck_port=9200,
    replication_port=4567,
    force_bootstrap_node=None,
    position_max_age=60,
):
    """
    Make this node a Synced member of a Primary component.

    name
        This node's name (as in ``nodes``).
    nodes
        Every Galera node: list of ``{name, ip}``.
    bootstrap_node
        Bootstraps a brand-new cluster; tie-breaker after a full outage.
    timeout
        Seconds to wait for Synced after a start, and for a Primary peer when another
        node bootstraps.
    peer_wait
        Seconds to wait for every peer's position in the mine (they publish when they run
        this state) when no Primary component exists.
    service
        The server's systemd unit.
    clustercheck_port, replication_port
        Where peers are probed (clustercheck body and Galera replication port).
    force_bootstrap_node
        Operator override: bootstrap this node even if peers' positions are unknown
        (never while a Primary component is visible).
    position_max_age
        Mine records older than this many seconds count as unknown. Waiting nodes
        republish every few seconds, so this only has to exceed the poll interval plus
        clock skew; a larger value lets a record from an earlier outage pass for current.

    Already Primary and Synced: no change. A Primary peer exists: start (or restart) the
    server to join it. No Primary anywhere: bootstrap only the node
    :py:func:`galera.bootstrap_decision <_modules.galera.bootstrap_decision>` chooses
    (brand-new: ``bootstrap_node``; after an outage: the highest recovered seqno); the
    others wait for its Primary component and join. Unknown positions: refuse.
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    test = __opts__["test"]
    local = __salt__["galera.local_state"]()
    if local["running"] and local["wsrep_on"] and local["cluster_status"] == "Primary":
        if local["local_state"] == 4:
            ret.update(result=True, comment=(
                f"{name} is Primary and Synced (cluster size {local['cluster_size']})"))
            return ret
        if test:
            ret.update(result=True, comment=(
                f"{name} is in the Primary component ({local['local_state_comment']});"
                " would wait for Synced"))
            return ret
        try:
            st = _wait_synced(timeout)
        except CommandExecutionError as exc:
            ret["comment"] = str(exc)
            return ret
        ret.update(result=True, comment=f"{name} reached Synced (size {st['cluster_size']})")
        return ret

    peers = _peers(name, nodes)
    names = [n["name"] for n in nodes]
    planned = []
    try:
        live = _live(peers, clustercheck_port, replication_port)
        primary_peer = any(v["primary"] for v in live.values())
        if local["running"] and not local["reachable"] and primary_peer:
            # Starting against a live Primary component (SST/IST): let it finish.
            if test:
                ret.update(result=True, comment=f"{name} is starting; would wait for Synced")
                return ret
            st = _wait_synced(timeout)
            ret.update(result=True, comment=f"{name} finished joining (size {st['cluster_size']})")
            return ret
        stop_why = None
        if local["running"] and local["reachable"] and not local["wsrep_on"]:
            # The package's postinst starts a standalone server; it must not keep the datadir.
            stop_why = "standalone server started by the package"
        elif local["running"] and not primary_peer:
            # Waiting for a Primary view nobody has (e.g. autostart after a full outage) or
            # left non-Primary: it serves nothing, and stopped its position can be recovered.
            stop_why = "server outside any Primary component"
        if stop_why:
            planned.append(f"stop the {stop_why}")
            if test:
                ret.update(result=None, changes={"galera": {"stop": stop_why}}, comment=(
                    f"would stop the {stop_why}, recover and publish its position, then"
                    " join or bootstrap as the positions of all nodes decide"))
                return ret
            how = _stop_server(local, service, timeout)
            ret["changes"]["stopped"] = {"old": stop_why, "new": how}
            local = __salt__["galera.local_state"]()

        if any(v["primary"] for v in live.values()):
            positions = {}
        else:
            positions = _gather(name, names, live, test, peer_wait, position_max_age,
                                clustercheck_port, replication_port, peers)
            live = _live(peers, clustercheck_port, replication_port)
        decision = __salt__["galera.bootstrap_decision"](
            name, names, bootstrap_node, positions, live, force_bootstrap_node)
        summary = _describe(positions) if positions else "a peer is Primary"
        log.info("galera decision for %s: %s [%s]", name, decision, summary)

        action = decision["action"]
        if action == "refuse":
            ret["comment"] = f"Refusing: {decision['reason']} [{summary}]"
            return ret
        if action == "none":
            ret.update(result=True, comment=decision["reason"])
            return ret
        if test:
            what = {"join": f"start {service} and join the Primary component",
                    "bootstrap": "bootstrap a new Primary component",
                    "wait": f"wait for {decision['node']} to bootstrap, then join"}[action]
            ret.update(result=None, comment="; ".join(
                planned + [f"would {what}: {decision['reason']} [{summary}]"]))
            ret["changes"] = {"galera": {"action": action, "node": decision["node"]}}
            return ret
        if action == "bootstrap":
            return _finish(ret, _bootstrap(dict(ret), local, service, timeout,
                                           f"{decision['reason']} [{summary}]"))
        if action == "wait":
            _wait_primary_peer(peers, clustercheck_port, replication_port, timeout)
        _wait_join_turn(name, nodes, clustercheck_port, replication_port, timeout)
        return _finish(ret, _join(dict(ret), local, service, timeout, decision["reason"]))
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret


def _finish(ret, done):
    changes = dict(ret["changes"])
    changes.update(done["changes"])
    ret.update(done)
    ret["changes"] = changes
    ret["result"] = True
    return ret


def _gather(name, names, live, test, peer_wait, max_age, cc_port, repl_port, peers):
    """Publish this node's position, then wait until every node's record is in the mine."""
    if test:
        own = __salt__["galera.position"](recover=False)
        positions = _mine_positions(names, max_age)
        positions[name] = own
        return positions
    own = __salt__["galera.position"]()
    deadline = time.monotonic() + peer_wait
    while True:
        _publish()
        positions = _mine_positions(names, max_age)
        positions[name] = own
        if all(positions[n] is not None for n in names):
            return positions
        if time.monotonic() >= deadline:
            return positions
        if any(v["primary"] for v in _live(peers, cc_port, repl_port).values()):
            return positions
        time.sleep(POLL * 1.5)

"""
Bring a MariaDB Galera node into the cluster: join a Primary component, or bootstrap one
only when that is provably safe.

.. code-block:: yaml

    moodle_ha-galera-cluster-member:
      galera.cluster_member:
        - name: moodle1
        - nodes: [{name: moodle1, ip: 172.30.77.11}, {name: moodle2, ip: 172.30.77.12}, ...]
        - bootstrap_node: moodle1
        - socket_path: /run/mysqld/mysqld.sock
        - datadir: /var/lib/mysql
        - user: mysql

Peer information: each node publishes :py:func:`galera.position <_modules.galera.position>`
to the Salt mine (``moodle_ha_galera_position``) when it is not already Primary and Synced,
then reads the other nodes' records from the mine; liveness comes straight from the peers'
clustercheck (:9200, body ``wsrep_cluster_status``) and replication port (4567). Applying
the state to every Galera node in one job lets all of them publish and agree; applied to
one node alone (or masterless) it joins a live Primary component or refuses, never guesses.

What to do is decided by :py:func:`galera.member_plan <_modules.galera.member_plan>`, a pure
function of the facts gathered here; this module gathers them and carries the plan out.
"""

import dataclasses
import logging
import time

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "galera"

MINE_NAME = "moodle_ha_galera_position"
POLL = 2.0
# Seconds between the first join attempts of nodes, by name order.
JOIN_STAGGER = 8.0
# Seconds a running local server that cannot be queried (InnoDB open, no Primary peer) is
# asked again before the state fails; it is never stopped.
LOCAL_WAIT = 60.0
# Seconds a peer's clustercheck may refuse its login while a brand-new cluster forms: its
# bootstrap node creates the clustercheck account (users.sls) right after bootstrapping.
# Anywhere else the account exists already (replicated), and a refusal fails at once.
LOGIN_GRACE = 60.0
# Seconds a running server left in a non-Primary component, with no Primary peer either, is
# given to regroup on its own before it is stopped and the positions decide: Galera forms a
# Primary component again as soon as a majority of the last one can talk (a view
# installation that timed out under load left every member non-Primary for ~15 s in the
# lab; stopping them all then turned a pause into a bootstrap).
REGROUP_WAIT = 45.0
LEGACY_FORCE = (
    "galera:force_bootstrap_node is no longer honoured (a node name left in pillar would"
    " bootstrap a second Primary component after a later partition or outage): remove it."
    " To force a bootstrap, set galera:force_bootstrap: {node: <name>, seqno: <the seqno that"
    " node recovered>} for the current outage only; the refusal message names the value")


def __virtual__():
    if "galera.position" not in __salt__:
        return (False, "galera state: the galera execution module is not available")
    return __virtualname__


@dataclasses.dataclass(frozen=True)
class _Member:
    """The arguments of one cluster_member call: this node, its peers, where and how long."""

    name: str
    nodes: list
    bootstrap_node: str
    timeout: float
    peer_wait: float
    service: str
    clustercheck_port: int
    replication_port: int
    force_bootstrap: object
    position_max_age: float
    socket_path: str | None
    datadir: str | None
    user: str | None
    discard_existing_schemas: bool = False

    @property
    def peers(self):
        return [n for n in self.nodes if n["name"] != self.name]

    @property
    def names(self):
        return [n["name"] for n in self.nodes]

    @property
    def server(self):
        """Keyword arguments that locate the server for galera.position."""
        return {"socket_path": self.socket_path, "datadir": self.datadir, "user": self.user}


# --------------------------------------------------------------------------- facts


def _local_state(m):
    st = __salt__["galera.local_state"](socket_path=m.socket_path)
    if st.get("running") and not st.get("reachable"):
        # Tells a server waiting for a Primary view (InnoDB closed) from a slow member.
        st["innodb_open"] = __salt__["galera.innodb_open"](datadir=m.datadir)
    return st


def _existing_schemas(m):
    """User schemas of a pre-existing non-Galera database here (none if discarding is allowed)."""
    if m.discard_existing_schemas:
        return []
    return __salt__["galera.non_galera_schemas"](datadir=m.datadir)


class _LoginWatch:
    """
    Fails once a peer's clustercheck has refused its login for ``grace`` seconds in a row:
    the credentials are wrong, and no wait will make that peer look Primary.
    """

    def __init__(self, grace):
        self.grace = grace
        self.since = {}

    def check(self, live):
        now = time.monotonic()
        refused = __salt__["galera.login_refused_peers"](live)
        self.since = {p: self.since.get(p, now) for p in refused}
        late = sorted(p for p in refused if now - self.since[p] >= self.grace)
        if late:
            during = f" for {self.grace:.0f} s" if self.grace else ""
            raise CommandExecutionError(
                f"the clustercheck of {', '.join(late)} cannot log in to its MariaDB server"
                f" (HTTP 503 'clustercheck: login refused'{during}): the clustercheck"
                " credentials (secrets:clustercheck_password) are refused there, so whether"
                f" {', '.join(late)} is Primary cannot be read. Check that the password in"
                " the clustercheck option file is exactly the account's (moodle_ha.galera"
                " sets both from the pillar)")


def _live(m):
    return {p["name"]: __salt__["galera.peer_live"](p["ip"], m.clustercheck_port,
                                                     m.replication_port)
            for p in m.peers}


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


def _publish(m):
    """
    (Re)publish this stopped node's position, stamped now. Nodes keep doing it while they
    wait, so a short position_max_age tells a live participant of this run from a record
    left by an earlier outage (the node may have run and committed since).
    """
    __salt__["mine.send"](MINE_NAME, mine_function="galera.position", use_cached=True,
                          stamp=True, **m.server)


def _gather(m, test, live):
    """
    Publish this node's position, then wait until the records in the mine are enough to
    decide (every node's, or the short-cuts of galera.decision_ready).
    """
    if test:
        own = __salt__["galera.position"](recover=False, **m.server)
        positions = _mine_positions(m.names, m.position_max_age)
        positions[m.name] = own
        return positions
    own = __salt__["galera.position"](**m.server)
    deadline = time.monotonic() + m.peer_wait
    # Nobody knows yet whether the cluster is brand-new (its accounts not created yet).
    watch = _LoginWatch(LOGIN_GRACE)
    while True:
        _publish(m)
        positions = _mine_positions(m.names, m.position_max_age)
        positions[m.name] = own
        if __salt__["galera.decision_ready"](m.name, m.names, positions, live,
                                             force=m.force_bootstrap):
            return positions
        if time.monotonic() >= deadline:
            return positions
        live = _live(m)
        watch.check(live)
        if any(v["primary"] for v in live.values()):
            return positions
        time.sleep(POLL * 1.5)


def _plan(m, local, live=None, positions=None, schemas=None):
    return __salt__["galera.member_plan"](m.name, m.names, m.bootstrap_node, local, live=live,
                                          positions=positions, force=m.force_bootstrap,
                                          existing_schemas=schemas)


def _describe(positions):
    return __salt__["galera.describe_positions"](positions)


# --------------------------------------------------------------------------- actions


def _systemctl(verb, service, timeout):
    res = __salt__["cmd.run_all"](["systemctl", verb, service], python_shell=False,
                                  timeout=timeout)
    if res["retcode"] != 0:
        raise CommandExecutionError(
            f"systemctl {verb} {service} failed: {res['stderr'].strip() or res['stdout']}")


def _stop_server(m, local):
    """
    Stop the local server. One that waits for a Primary view ignores SIGTERM (and Debian's
    unit has SendSIGKILL=no, so `systemctl stop` hung for good in the lab); it has not
    opened InnoDB yet, so it is killed instead. Anything with InnoDB open stops gracefully.
    """
    if not local.get("reachable") and not __salt__["galera.innodb_open"](datadir=m.datadir):
        __salt__["cmd.run_all"](["systemctl", "kill", "--signal=SIGKILL", m.service],
                                python_shell=False, timeout=30)
        deadline = time.monotonic() + 60
        while __salt__["galera.is_running"]():
            if time.monotonic() >= deadline:
                raise CommandExecutionError("the server did not exit after SIGKILL")
            time.sleep(POLL / 4)
        # Let systemd finish the unit's pending stop job before the next start.
        __salt__["cmd.run_all"](["systemctl", "stop", m.service], python_shell=False,
                                timeout=60)
        return "killed (waiting for a Primary view, InnoDB not open)"
    _systemctl("stop", m.service, m.timeout)
    return "stopped"


def _wait_synced(m):
    deadline = time.monotonic() + m.timeout
    st = {}
    while time.monotonic() < deadline:
        st = _local_state(m)
        if __salt__["galera.synced"](st):
            return st
        time.sleep(POLL)
    raise CommandExecutionError(
        f"not Synced after {m.timeout} s (cluster_status {st.get('cluster_status')},"
        f" state {st.get('local_state_comment')})")


def _wait_primary_peer(m, watch):
    deadline = time.monotonic() + m.timeout
    while True:
        _publish(m)
        live = _live(m)
        primaries = sorted(p for p, v in live.items() if v["primary"])
        if primaries:
            return primaries
        watch.check(live)
        if time.monotonic() >= deadline:
            raise CommandExecutionError(
                f"no peer reached a Primary component within {m.timeout} s")
        time.sleep(POLL)


def _wait_join_turn(m, watch):
    """
    One state transfer at a time: two joiners at once made the donor's view change time out
    under load and the bootstrap node fell to non-Primary (lab). Nodes start their checks
    staggered by name among the nodes not yet Primary, then wait until no peer is
    Joining/Donor/Joined.
    """
    live = _live(m)
    order = sorted([m.name] + [p for p, v in live.items() if not v["primary"]])
    time.sleep(order.index(m.name) * JOIN_STAGGER)
    deadline = time.monotonic() + m.timeout
    while True:
        _publish(m)
        live = _live(m)
        watch.check(live)
        busy = __salt__["galera.busy_peers"](live)
        if not busy:
            return
        if time.monotonic() >= deadline:
            raise CommandExecutionError(
                f"{', '.join(busy)} still transferring state (or desynced) after {m.timeout} s:"
                " not joining now (a second joiner can cost the donor its Primary component)")
        time.sleep(POLL)


def _not_provably_outside(m, local, what):
    raise CommandExecutionError(
        f"would {what}, but the local server runs and nothing proves it is outside a Primary"
        f" component ({local.get('error') or local.get('cluster_status') or 'no answer'}):"
        " not stopping it")


def _clear_gvwstate(m, changes):
    """Move an empty or corrupt gvwstate.dat aside before a start (codership/galera#354)."""
    moved = __salt__["galera.clear_bad_gvwstate"](datadir=m.datadir)
    if moved:
        changes["gvwstate"] = {"old": f"{moved['path']} ({moved['problem']})",
                               "new": f"moved to {moved['moved_to']}"}


def _join(m, local, why):
    """Start (or restart) the server into the Primary component; return (changes, comment)."""
    t0 = time.monotonic()
    changes = {}
    if local["running"]:
        if __salt__["galera.outside_primary"](local) is None:
            _not_provably_outside(m, local, "restart it to join")
        _systemctl("restart", m.service, m.timeout)
        verb = "restarted to join"
    else:
        _clear_gvwstate(m, changes)
        _systemctl("start", m.service, m.timeout)
        verb = "started and joined"
    st = _wait_synced(m)
    changes["galera"] = {"old": local.get("local_state_comment") or "stopped",
                         "new": f"{verb} ({why}), Synced, cluster size {st['cluster_size']}"}
    return changes, f"{verb}; Synced {time.monotonic() - t0:.0f} s after the start command"


def _bootstrap(m, local, why):
    """Start a new Primary component from this node; return (changes, comment)."""
    how = "galera_new_cluster"
    changes = {}
    if local["running"]:
        # A server left in a non-Primary component is stopped (its position is then in
        # grastate.dat) rather than bootstrapped in place with pc.bootstrap=YES: in the lab
        # that kept a donor aborted earlier stuck in Donor/Desynced.
        if __salt__["galera.outside_primary"](local) is None:
            _not_provably_outside(m, local, "stop it and bootstrap")
        _stop_server(m, local)
        how = "stopped the non-Primary server, galera_new_cluster"
    _clear_gvwstate(m, changes)
    gra = __salt__["galera.grastate"](datadir=m.datadir)
    if gra is not None and not gra.get("safe_to_bootstrap"):
        __salt__["galera.set_safe_to_bootstrap"](datadir=m.datadir)
    res = __salt__["cmd.run_all"](["galera_new_cluster"], python_shell=False, timeout=m.timeout)
    if res["retcode"] != 0:
        raise CommandExecutionError(f"galera_new_cluster failed: {res['stderr'].strip()}")
    st = _wait_synced(m)
    changes["galera"] = {"old": local.get("local_state_comment") or "stopped",
                         "new": f"bootstrapped a new Primary component ({how}; {why})",
                         "cluster_size": st["cluster_size"]}
    comment = f"Bootstrapped: {why}"
    if m.force_bootstrap is not None:
        comment += (". Remove galera:force_bootstrap from the pillar now: it was for this"
                    " outage only")
    return changes, comment


def _done(ret, changes, comment):
    ret["changes"].update(changes)
    ret.update(result=True, comment=comment)
    return ret


def _carry_out(ret, m, plan, local, positions):
    """Do what the plan says (or, with test=True, say what would be done)."""
    test = __opts__["test"]
    action = plan["action"]
    if action == "synced":
        ret.update(result=True, comment=plan["reason"])
        return ret
    if action in ("wait_synced", "finish_join"):
        waiting, done = {
            "wait_synced": (plan["reason"], "reached Synced"),
            "finish_join": (f"{m.name} is starting", "finished joining"),
        }[action]
        if test:
            ret.update(result=True, comment=f"{waiting}; would wait for Synced")
            return ret
        st = _wait_synced(m)
        ret.update(result=True, comment=f"{m.name} {done} (size {st['cluster_size']})")
        return ret

    summary = _describe(positions)
    log.info("galera plan for %s: %s [%s]", m.name, plan, summary)
    if action == "refuse":
        ret["comment"] = f"Refusing: {plan['reason']}" + (f" [{summary}]" if positions else "")
        return ret
    if action == "none":
        ret.update(result=True, comment=plan["reason"])
        return ret
    if test:
        what = {"join": f"start {m.service} and join the Primary component",
                "bootstrap": "bootstrap a new Primary component",
                "wait": f"wait for {plan['node']} to bootstrap, then join"}[action]
        ret.update(result=None, comment=f"would {what}: {plan['reason']} [{summary}]",
                   changes={"galera": {"action": action, "node": plan["node"]}})
        return ret
    if action == "bootstrap":
        return _done(ret, *_bootstrap(m, local, f"{plan['reason']} [{summary}]"))
    # While a brand-new cluster forms, its bootstrap node creates the clustercheck account
    # only after it bootstrapped: a refused login is expected for a few seconds then.
    brand_new = bool(positions) and not any(
        __salt__["galera.has_data"](p) for p in positions.values() if p)
    watch = _LoginWatch(LOGIN_GRACE if brand_new else 0)
    if action == "wait":
        _wait_primary_peer(m, watch)
    _wait_join_turn(m, watch)
    return _done(ret, *_join(m, local, plan["reason"]))


def _left_member(local):
    """A running server that answers with wsrep on, outside any Primary component: a member
    of a cluster that lost its Primary component (not a package start, not a server waiting
    for a Primary view after an outage)."""
    return bool(local.get("running") and local.get("reachable") and local.get("wsrep_on")
                and __salt__["galera.outside_primary"](local))


def _replan(m, live, schemas):
    """Read the local state again and plan; the peers are asked again only when it says so."""
    local = _local_state(m)
    plan = _plan(m, local)
    if plan["action"] == "probe":
        live = _live(m)
        plan = _plan(m, local, live, schemas=schemas)
    return local, live, plan


def _regroup(m, local, live, plan, schemas):
    """While no node is Primary and this one is a member left non-Primary, ask again for
    ``REGROUP_WAIT`` seconds: Galera may re-form the Primary component itself."""
    deadline = time.monotonic() + REGROUP_WAIT
    while (plan["action"] == "gather" and _left_member(local) and not __opts__["test"]
           and time.monotonic() < deadline):
        time.sleep(POLL)
        local, live, plan = _replan(m, live, schemas)
    if plan["action"] == "gather" and _left_member(local) and not __opts__["test"]:
        log.warning("galera: %s and every peer stayed non-Primary for %.0f s: the positions"
                    " decide", m.name, REGROUP_WAIT)
    return local, live, plan


def _probe(m, local, schemas):
    """Plan with the peers' liveness; a local server that cannot be queried is asked again,
    one left in a non-Primary component is given time to regroup."""
    live = _live(m)
    plan = _plan(m, local, live, schemas=schemas)
    local, live, plan = _regroup(m, local, live, plan, schemas)
    deadline = time.monotonic() + LOCAL_WAIT
    while plan["action"] == "unreachable":
        if __opts__["test"]:
            return local, live, plan
        if time.monotonic() >= deadline:
            raise CommandExecutionError(
                f"{plan['reason']}. Still not answering after {LOCAL_WAIT:.0f} s: look at"
                f" `journalctl -u {m.service}` and SHOW PROCESSLIST; if it is hung, stop it"
                " yourself, then apply again")
        time.sleep(POLL)
        local, live, plan = _replan(m, live, schemas)
    return local, live, plan


def cluster_member(
    name,
    nodes,
    bootstrap_node,
    timeout=300,
    peer_wait=300,
    service="mariadb",
    clustercheck_port=9200,
    replication_port=4567,
    force_bootstrap=None,
    force_bootstrap_node=None,
    discard_existing_schemas=False,
    position_max_age=60,
    socket_path=None,
    datadir=None,
    user=None,
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
    force_bootstrap
        Operator override for one outage: ``{node: <name>, seqno: <its recovered seqno>}``
        (``uuid`` optional). That node bootstraps although other positions are unknown,
        only while no other galera node is reachable at all (clustercheck and replication
        port silent) and only when the seqno is the one it recovers now; never while a
        Primary component is visible. A stale value is refused with the value it would need.
    force_bootstrap_node
        Retired (a bare name had no expiry): any value other than None fails the state.
    discard_existing_schemas
        False: a node whose datadir holds a database that is not part of any Galera cluster
        (no grastate.dat or the zero uuid, and user schemas) refuses to join, since the
        join's SST would replace it. True: join and discard it.
    position_max_age
        Mine records older than this many seconds count as unknown. Waiting nodes
        republish every few seconds, so this only has to exceed the poll interval plus
        clock skew; a larger value lets a record from an earlier outage pass for current.
    socket_path, datadir, user
        The local server's unix socket, data directory (grastate.dat, InnoDB files) and
        system user (runs ``--wsrep-recover``): the formula's map values. None: the galera
        execution module's defaults.

    Already Primary and Synced: no change. A Primary peer exists: start (or restart) the
    server to join it. No Primary anywhere: bootstrap only the node
    :py:func:`galera.bootstrap_decision <_modules.galera.bootstrap_decision>` chooses
    (brand-new: ``bootstrap_node``; after an outage: the highest recovered seqno, or the
    only node marked safe_to_bootstrap); the others wait for its Primary component and
    join. Unknown positions: refuse. A running local server is stopped only when it is
    provably outside any Primary component; one that cannot be queried is asked again for
    ``LOCAL_WAIT`` seconds, then the state fails.
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    if force_bootstrap_node is not None:
        ret["comment"] = LEGACY_FORCE
        return ret
    m = _Member(name=name, nodes=nodes, bootstrap_node=bootstrap_node, timeout=timeout,
                peer_wait=peer_wait, service=service, clustercheck_port=clustercheck_port,
                replication_port=replication_port, force_bootstrap=force_bootstrap,
                position_max_age=position_max_age, socket_path=socket_path, datadir=datadir,
                user=user, discard_existing_schemas=bool(discard_existing_schemas))
    try:
        # Each fact is fetched only when the plan asks for it: a Synced member probes no
        # peer, and positions are gathered only when no Primary component is visible.
        local = _local_state(m)
        plan = _plan(m, local)
        live, schemas = {}, []
        if plan["action"] == "probe":
            schemas = _existing_schemas(m)
            local, live, plan = _probe(m, local, schemas)
        if plan["action"] == "unreachable":  # test=True only
            ret.update(result=None, comment=(
                f"{plan['reason']}; would ask it again for {LOCAL_WAIT:.0f} s, then fail"))
            return ret
        if plan["stop"]:
            if __opts__["test"]:
                ret.update(result=None, changes={"galera": {"stop": plan["stop"]}}, comment=(
                    f"would stop the {plan['stop']}, recover and publish its position, then"
                    " join or bootstrap as the positions of all nodes decide"))
                return ret
            ret["changes"]["stopped"] = {"old": plan["stop"], "new": _stop_server(m, local)}
            local = _local_state(m)
        positions = {}
        if plan["action"] == "gather":
            positions = _gather(m, __opts__["test"], live)
            plan = _plan(m, local, _live(m), positions, schemas=schemas)
        return _carry_out(ret, m, plan, local, positions)
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret


def member_left(name, service="mariadb", timeout=300, min_remaining=2, socket_path=None):
    """
    Take this node out of its Galera cluster for good (a host marked ``decommission: true``):
    a clean shutdown, so the other members see it leave rather than fail, then the service
    disabled so a reboot does not bring it back. Its datadir stays (nothing is deleted).

    Decided by :py:func:`galera.leave_plan <_modules.galera.leave_plan>`: a node that is not
    Synced (a donor, a backup's desync) is waited for up to ``timeout`` seconds; one whose
    departure would leave fewer than ``min_remaining`` members, or that cannot be queried,
    is refused and left running.

    .. code-block:: yaml

        moodle_ha-decommission-galera-left:
          galera.member_left:
            - name: moodle4
            - service: mariadb
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    kwargs = {"socket_path": socket_path} if socket_path else {}
    deadline = time.monotonic() + float(timeout)
    try:
        while True:
            local = __salt__["galera.local_state"](**kwargs)
            plan = __salt__["galera.leave_plan"](local, min_remaining=int(min_remaining))
            if plan["action"] != "wait" or __opts__["test"] or time.monotonic() >= deadline:
                break
            time.sleep(POLL)
        enabled = __salt__["service.enabled"](service)
        if plan["action"] in ("refuse", "wait"):
            waited = f" after {float(timeout):.0f} s" if plan["action"] == "wait" else ""
            ret["comment"] = f"{name} does not leave the cluster{waited}: {plan['reason']}"
            return ret
        changes = {}
        if plan["action"] == "stop":
            changes["left"] = plan["reason"]
        if enabled:
            changes["enabled"] = {"old": True, "new": False}
        if not changes:
            ret.update(result=True, comment=f"{name} is out of the cluster ({plan['reason']}),"
                       f" {service} disabled")
            return ret
        if __opts__["test"]:
            ret.update(result=None, changes=changes, comment=f"{name} would leave the cluster"
                       f" ({plan['reason']})")
            return ret
        if plan["action"] == "stop":
            _systemctl("stop", service, float(timeout))
            if __salt__["galera.is_running"]():
                raise CommandExecutionError(f"{service} still runs after systemctl stop")
        if enabled:
            __salt__["service.disable"](service)
        ret.update(result=True, changes=changes, comment=f"{name} left the cluster"
                   f" ({plan['reason']}); {service} stopped and disabled")
        return ret
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret


def view_settled(name, settle=10, timeout=120, socket_path=None):
    """
    Wait until this node is a Synced member of a Primary component whose membership has not
    changed for ``settle`` seconds (``wsrep_cluster_conf_id`` steady). Changes nothing.

    ``moodle_ha.orch`` runs it on a staying member after each member of a scale-in left, so
    the next one leaves a group at rest: in the lab an arbitrator that stopped 4 s after a
    galera node had left, while the group still cleaned that node up, left every member
    non-Primary.

    name
        This node (for the comment).
    settle
        Seconds the view must stay the same.
    timeout
        Seconds to wait in all before failing.
    socket_path
        The server's socket (default: the galera module's).

    .. code-block:: yaml

        moodle_ha-decommission-galera-view-settled:
          galera.view_settled:
            - name: moodle1
            - settle: 10
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    kwargs = {"socket_path": socket_path} if socket_path else {}
    settle, timeout = float(settle), float(timeout)
    started = time.monotonic()
    conf_id, since = None, None
    while True:
        local = __salt__["galera.local_state"](**kwargs)
        now = time.monotonic()
        if not __salt__["galera.synced"](local) or local.get("conf_id") is None:
            conf_id, since = None, None
        elif local["conf_id"] != conf_id:
            conf_id, since = local["conf_id"], now
        described = (f"{local.get('cluster_status') or 'not answering'},"
                     f" {local.get('local_state_comment') or '-'},"
                     f" cluster size {local.get('cluster_size')}")
        if __opts__["test"]:
            ret.update(result=True, comment=f"{name}: {described}; would wait until its view"
                       f" is unchanged for {settle:.0f} s")
            return ret
        if since is not None and now - since >= settle:
            ret.update(result=True, comment=f"{name}: {described}, view {conf_id} unchanged"
                       f" for {now - since:.0f} s")
            return ret
        if now - started >= timeout:
            ret["comment"] = (f"{name}: no view unchanged for {settle:.0f} s within"
                              f" {timeout:.0f} s (now {described})")
            return ret
        time.sleep(POLL)

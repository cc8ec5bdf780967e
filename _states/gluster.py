"""
GlusterFS trusted pool and volumes, built on the ``gluster`` execution module.

.. code-block:: yaml

    peer moodle2:
      gluster.peered:
        - name: 172.30.77.12
        - timeout: 120

    moodledata:
      gluster.volume_present:
        - bricks:
          - 172.30.77.11:/srv/gluster/moodledata
          - 172.30.77.12:/srv/gluster/moodledata
          - 172.30.77.13:/srv/gluster/moodledata
        - replica: 3
        - force: true

Bricks are only ever added by ``volume_present``: a volume holding bricks the pillar does
not list, or a lower replica count than the volume's, fails the state and is left as it is.
``brick_running`` starts this host's brick process when it is down (``volume start
force``, which touches no data). ``bricks_removed`` takes out the bricks of hosts that leave
the cluster (explicitly confirmed in pillar), once every remaining replica holds every file.
"""

import os
import signal
import socket
import time

from salt.exceptions import CommandExecutionError

__virtualname__ = "gluster"


def __virtual__():
    if "gluster.peer_status" in __salt__:
        return __virtualname__
    return (False, "gluster: the gluster execution module is not available")


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def _addresses(name):
    try:
        return {info[4][0] for info in socket.getaddrinfo(name, None)}
    except (OSError, UnicodeError):
        return set()


def _is_self(name):
    """True when ``name`` designates this node (its id, host names or one of its addresses)."""
    own_names = {
        "localhost",
        __grains__.get("id"),
        __grains__.get("host"),
        __grains__.get("fqdn"),
        __grains__.get("nodename"),
    }
    if name in own_names:
        return True
    own_ips = set(__salt__["network.ip_addrs"]()) | set(__salt__["network.ip_addrs6"]())
    own_ips |= {"127.0.0.1", "::1"}
    wanted = {name} | _addresses(name)
    return bool(wanted & own_ips) or any(ip.startswith("127.") for ip in wanted)


def _find_peer(name, peers):
    for peer in peers:
        if name in peer["hostnames"]:
            return peer
    wanted = _addresses(name)
    if wanted:
        for peer in peers:
            for hostname in peer["hostnames"]:
                if _addresses(hostname) & wanted:
                    return peer
    return None


def _describe(peer):
    if peer is None:
        return "not in the pool"
    conn = "Connected" if peer["connected"] else "Disconnected"
    return f"{peer['state_str']} ({conn})"


def peered(name, timeout=120, interval=2):
    """
    Ensure ``name`` is a member of this node's trusted pool, connected.

    Probes the host when it is not in the pool yet (again and again while glusterd there is not
    answering), then waits until it shows "Peer in Cluster" and connected: a probe returns
    before the peer has joined. ``name`` designating this node is a no-op.

    name
        Host name or IP address of the peer (the same form the bricks use).

    timeout
        Seconds to wait for the peer to join.
    """
    ret = _ret(name)
    if _is_self(name):
        ret["comment"] = f"{name} is this node"
        return ret
    try:
        peer = _find_peer(name, __salt__["gluster.peer_status"]())
    except CommandExecutionError as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    if __salt__["gluster.in_cluster"](peer):
        ret["comment"] = f"{name} is already in the pool: {_describe(peer)}"
        return ret
    if peer is not None and "Rejected" in (peer["state_str"] or ""):
        ret.update(
            result=False,
            comment=f"{name} is {_describe(peer)}: its volume definitions differ from this"
            " node's; resolve by hand (see gluster 'Peer Rejected' recovery)",
        )
        return ret
    if __opts__["test"]:
        action = "probed" if peer is None else "waited for"
        ret.update(
            result=None,
            comment=f"{name} would be {action} until it is Peer in Cluster (Connected);"
            f" now {_describe(peer)}",
            changes={"peer": {"old": _describe(peer), "new": "Peer in Cluster (Connected)"}},
        )
        return ret

    old = _describe(peer)
    start = time.monotonic()
    deadline = start + float(timeout)
    probed, last_error = False, None
    while True:
        if __salt__["gluster.in_cluster"](peer):
            break
        if peer is None:
            try:
                __salt__["gluster.peer_probe"](name)
                probed, last_error = True, None
            except CommandExecutionError as exc:
                # The peer's glusterd may still be starting: keep probing until the deadline.
                last_error = str(exc)
        if time.monotonic() >= deadline:
            detail = f"; last error: {last_error}" if last_error else ""
            ret.update(
                result=False,
                comment=f"{name} is not Peer in Cluster (Connected) after {timeout} s:"
                f" {_describe(peer)}{detail}",
            )
            if probed:
                ret["changes"] = {"peer": {"old": old, "new": _describe(peer)}}
            return ret
        time.sleep(interval)
        try:
            peer = _find_peer(name, __salt__["gluster.peer_status"]())
        except CommandExecutionError as exc:
            last_error = str(exc)
    waited = time.monotonic() - start
    ret["changes"] = {"peer": {"old": old, "new": _describe(peer)}}
    ret["comment"] = f"{name} joined the pool in {waited:.1f} s" + (
        "" if probed else " (already probed, waited for it)"
    )
    return ret


def _volume(name):
    return __salt__["gluster.volume_info"](name).get(name)


def volume_present(name, bricks, replica=None, force=False, start=True, transport="tcp"):
    """
    Ensure the volume exists with (at least) these bricks.

    An absent volume is created (and started when ``start``). A volume missing some of the
    listed bricks gets them with add-brick, with ``replica`` as its new replica count when that
    is higher (then a full self-heal fills the new bricks). Bricks are never removed and the
    replica count is never lowered: a volume with bricks not listed here, or with a higher
    replica count, fails the state and is left unchanged.

    bricks
        List of ``host:/path``, in replica-set order.

    replica
        Replica count (None: plain distribute on creation, unchanged on growth).

    force
        Pass ``force`` to create/add-brick (needed for bricks on the root file system).
    """
    ret = _ret(name)
    bricks = [str(b) for b in bricks]
    replica = int(replica) if replica else None
    try:
        vol = _volume(name)
    except CommandExecutionError as exc:
        ret.update(result=False, comment=str(exc))
        return ret

    if vol is None:
        changes = {"created": {"bricks": bricks, "replica": replica}}
        if start:
            changes["started"] = True
        if __opts__["test"]:
            ret.update(result=None, changes=changes, comment=f"Volume {name} would be created")
            return ret
        try:
            __salt__["gluster.volume_create"](
                name, bricks, replica=replica, force=force, transport=transport
            )
            if start:
                __salt__["gluster.volume_start"](name)
        except CommandExecutionError as exc:
            ret.update(result=False, comment=f"Volume {name}: {exc}")
            return ret
        ret.update(changes=changes, comment=f"Volume {name} created")
        return ret

    existing = vol["bricks"]
    current_replica = vol["replica"] or 1
    extra = [b for b in existing if b not in bricks]
    missing = [b for b in bricks if b not in existing]
    if extra:
        ret.update(
            result=False,
            comment=f"Volume {name} has bricks the pillar does not list: {', '.join(extra)}"
            f" (pillar: {', '.join(bricks)}). Bricks are never removed by this state: add them"
            " to the pillar, or remove them by hand with gluster volume remove-brick.",
        )
        return ret
    wanted_replica = replica or current_replica
    if wanted_replica < current_replica:
        ret.update(
            result=False,
            comment=f"Volume {name} has replica {current_replica}, the pillar asks for"
            f" {wanted_replica}: the replica count is never lowered by this state.",
        )
        return ret
    if wanted_replica != current_replica and not missing:
        ret.update(
            result=False,
            comment=f"Volume {name} has replica {current_replica} with {len(existing)} bricks;"
            f" replica {wanted_replica} needs new bricks and the pillar lists none.",
        )
        return ret

    changes, comments = {}, []
    new_replica = None
    if missing:
        new_replica = wanted_replica if wanted_replica != current_replica else None
        changes["bricks_added"] = missing
        if new_replica:
            changes["replica"] = {"old": current_replica, "new": new_replica}
    will_start = start and vol["status"] != "Started"
    if will_start:
        changes["started"] = True
    if not changes:
        ret["comment"] = f"Volume {name} is present with its {len(existing)} bricks"
        return ret
    if __opts__["test"]:
        ret.update(result=None, changes=changes, comment=f"Volume {name} would be updated")
        return ret
    try:
        if missing:
            __salt__["gluster.add_brick"](name, missing, replica=new_replica, force=force)
            comments.append(f"added {len(missing)} brick(s)")
        if will_start:
            __salt__["gluster.volume_start"](name)
            comments.append("started")
        if missing and new_replica and (vol["status"] == "Started" or will_start):
            # Fill the new replicas now rather than file by file on access.
            __salt__["gluster.volume_heal"](name, full=True)
            changes["heal"] = "full"
            comments.append("full heal started")
    except CommandExecutionError as exc:
        ret.update(result=False, changes=changes if comments else {}, comment=f"{name}: {exc}")
        return ret
    ret.update(changes=changes, comment=f"Volume {name}: " + ", ".join(comments))
    return ret


def volume_started(name):
    """
    Ensure an existing volume is started.
    """
    ret = _ret(name)
    try:
        vol = _volume(name)
    except CommandExecutionError as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    if vol is None:
        ret.update(result=False, comment=f"Volume {name} does not exist")
        return ret
    if vol["status"] == "Started":
        ret["comment"] = f"Volume {name} is already started"
        return ret
    changes = {"status": {"old": vol["status"], "new": "Started"}}
    if __opts__["test"]:
        ret.update(result=None, changes=changes, comment=f"Volume {name} would be started")
        return ret
    try:
        __salt__["gluster.volume_start"](name)
    except CommandExecutionError as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    ret.update(changes=changes, comment=f"Volume {name} started")
    return ret


def brick_running(name, brick, timeout=60, interval=2):
    """
    Ensure this host's brick ``brick`` (``host:/path``) of the started volume ``name`` has its
    ``glusterfsd`` process, signed in with glusterd.

    glusterd starts a host's bricks when it boots, but a brick can stay down: its process
    crashed or was killed, or glusterd came up without server quorum and did not start it
    once quorum returned (seen after a power loss of every gluster host). Or it runs unknown
    to glusterd: after a power loss of every gluster host glusterd started one brick twice,
    the process left running was never signed in, and glusterd had no port for it
    (``listen-port=0``, ``volume status`` port N/A): no client could reach it. ``gluster
    volume start NAME force`` starts the missing brick processes of a started volume and
    touches nothing else (no data, no running brick); an unknown one is stopped first (the
    other replicas serve meanwhile). The state then waits up to ``timeout`` seconds for the
    process and its port. The checks are local (the process table, glusterd's record of its
    own brick): a volume not created or not started yet, or not holding this brick, is left
    to ``volume_present``/``volume_started``.

    .. code-block:: yaml

        moodledata:
          gluster.brick_running:
            - brick: 172.30.77.11:/srv/gluster/moodledata
    """
    ret = _ret(name)
    try:
        vol = _volume(name)
        if vol is None or vol["status"] != "Started" or brick not in vol["bricks"]:
            what = ("does not exist" if vol is None else
                    f"is {vol['status']}" if vol["status"] != "Started" else
                    f"has no brick {brick}")
            ret["comment"] = f"Volume {name} {what}: no brick process to check"
            return ret
        pid = __salt__["gluster.brick_pid"](name, brick)
        port = __salt__["gluster.brick_port"](name, brick) if pid else None
    except CommandExecutionError as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    if pid and port != 0:
        ret["comment"] = f"Volume {name}: brick {brick} runs (pid {pid})"
        return ret
    unknown = bool(pid)
    changes = {"restarted" if unknown else "started": brick}
    problem = (f"runs (pid {pid}) but glusterd has no port for it" if unknown else "is down")
    if __opts__["test"]:
        ret.update(result=None, changes=changes,
                   comment=f"Volume {name}: brick {brick} {problem} and would be"
                           f" {'restarted' if unknown else 'started'}")
        return ret
    try:
        if unknown:
            _stop_process(pid, timeout)
        __salt__["gluster.volume_start"](name, force=True)
    except CommandExecutionError as exc:
        ret.update(result=False, comment=f"Volume {name}: brick {brick} {problem}; start force"
                                         f" failed: {exc}")
        return ret
    deadline = time.monotonic() + timeout
    while True:
        pid = __salt__["gluster.brick_pid"](name, brick)
        if pid and __salt__["gluster.brick_port"](name, brick) != 0:
            ret.update(changes=changes,
                       comment=f"Volume {name}: brick {brick} {problem}, now runs (pid {pid})")
            return ret
        if time.monotonic() >= deadline:
            ret.update(result=False,
                       comment=f"Volume {name}: brick {brick} {problem}, and {timeout} s after"
                               " start force it still has no process with a port (see"
                               " /var/log/glusterfs/bricks/)")
            return ret
        time.sleep(interval)


def _stop_process(pid, timeout):
    """SIGTERM to ``pid``, then wait up to ``timeout`` seconds for it to be gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    except OSError as exc:
        raise CommandExecutionError(f"cannot stop pid {pid}: {exc}") from exc
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}"):
        if time.monotonic() >= deadline:
            raise CommandExecutionError(f"pid {pid} still runs {timeout} s after SIGTERM")
        time.sleep(0.2)


def volume_options(name, options):
    """
    Ensure volume options have these values; only differing ones are set.

    Values are compared with the volume's effective values (``gluster volume get NAME all``,
    overlaid with the explicitly set options of ``volume info``); booleans compare by meaning
    (on/enable/true/yes/1).

    options
        Mapping of option name to value, e.g. ``{network.ping-timeout: 5}``.
    """
    ret = _ret(name)
    options = options or {}
    try:
        vol = _volume(name)
        if vol is None:
            ret.update(result=False, comment=f"Volume {name} does not exist")
            return ret
        current = __salt__["gluster.volume_get"](name, "all")
    except CommandExecutionError as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    current.update(vol["options"])
    option_equal = __salt__["gluster.option_equal"]
    option_value = __salt__["gluster.option_value"]
    differing = {
        key: {"old": current.get(key), "new": option_value(value)}
        for key, value in sorted(options.items())
        if not option_equal(current.get(key), value)
    }
    if not differing:
        ret["comment"] = f"Volume {name}: all {len(options)} options already set"
        return ret
    if __opts__["test"]:
        ret.update(
            result=None,
            changes=differing,
            comment=f"Volume {name}: {len(differing)} option(s) would be set",
        )
        return ret
    errors = []
    for key, change in differing.items():
        try:
            __salt__["gluster.volume_set"](name, key, change["new"])
            ret["changes"][key] = change
        except CommandExecutionError as exc:
            errors.append(str(exc))
    if errors:
        ret.update(result=False, comment="; ".join(errors))
    else:
        ret["comment"] = f"Volume {name}: {len(differing)} option(s) set"
    return ret


def _pending_heal(name, bricks, removed):
    """{brick: why} of bricks that are not ready: a remaining brick not connected or with
    entries to heal; a removed brick with entries to heal (one that is down counts as gone:
    the remaining ones tell what it still owed them)."""
    info = __salt__["gluster.heal_info"](name)
    out = {}
    for brick in bricks:
        entry = info.get(brick)
        if entry is None or entry["entries"] is None:
            if brick not in removed:
                out[brick] = f"not connected ({(entry or {}).get('status') or 'absent'})"
        elif entry["entries"]:
            out[brick] = f"{entry['entries']} entries to heal"
    return out


def bricks_removed(name, bricks, detach=None, heal_timeout=600, interval=5):
    """
    Ensure these bricks are no longer part of the replicated volume, and the hosts of
    ``detach`` no longer in the trusted pool.

    Each listed brick still in the volume is removed with ``remove-brick replica N-k ...
    force``, the replica count falling by the number removed: in a pure replicate volume
    every remaining brick holds every file, so no data moves (gluster refuses ``start`` for
    a replica reduction and asks for ``force``). Before that the state waits up to
    ``heal_timeout`` seconds until every remaining brick is connected and no brick has
    entries to heal (e.g. a brick added by the last scale-out still filling), and fails
    naming them when that time runs out. A distributed-replicated volume (more bricks than
    the replica count) is refused: its data would have to migrate.

    bricks
        List of ``host:/path`` to remove.

    detach
        Peer addresses to detach from the pool after the removal.
    """
    ret = _ret(name)
    bricks = [str(b) for b in bricks or []]
    detach = [str(p) for p in detach or []]
    try:
        vol = _volume(name)
        peers = __salt__["gluster.peer_status"]() if detach else []
    except CommandExecutionError as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    present = [b for b in bricks if vol and b in vol["bricks"]]
    attached = [p for p in detach if _find_peer(p, peers) is not None]
    if not present and not attached:
        ret["comment"] = (f"Volume {name}: none of {', '.join(bricks) or 'no brick'} is a"
                          " brick" + (f", {', '.join(detach)} not in the pool" if detach else ""))
        return ret
    changes = {}
    if present:
        replica = vol["replica"] or 1
        if len(vol["bricks"]) != replica:
            ret.update(result=False, comment=(
                f"Volume {name} is distributed-replicated ({len(vol['bricks'])} bricks,"
                f" replica {replica}): removing {', '.join(present)} needs a data migration"
                " (remove-brick start/commit), which this state does not do"))
            return ret
        if len(present) >= replica:
            ret.update(result=False, comment=(
                f"Volume {name}: removing {', '.join(present)} would leave no brick"))
            return ret
        changes["bricks_removed"] = present
        changes["replica"] = {"old": replica, "new": replica - len(present)}
    if attached:
        changes["peers_detached"] = attached
    if __opts__["test"]:
        ret.update(result=None, changes=changes, comment=(
            f"Volume {name}: would remove {len(present)} brick(s) once no entry waits for"
            f" heal, and detach {len(attached)} peer(s)"))
        return ret
    done = {}
    try:
        if present:
            deadline = time.monotonic() + float(heal_timeout)
            pending = _pending_heal(name, vol["bricks"], present)
            while pending and time.monotonic() < deadline:
                time.sleep(float(interval))
                pending = _pending_heal(name, vol["bricks"], present)
            if pending:
                ret.update(result=False, comment=(
                    f"Volume {name}: {', '.join(present)} not removed after"
                    f" {float(heal_timeout):.0f} s: " + "; ".join(
                        f"{b} {why}" for b, why in sorted(pending.items()))
                    + f" (see gluster volume heal {name} info)"))
                return ret
            __salt__["gluster.remove_brick"](name, present,
                                             replica=changes["replica"]["new"],
                                             action="force")
            done.update(bricks_removed=present, replica=changes["replica"])
        for peer in attached:
            __salt__["gluster.peer_detach"](peer)
            done.setdefault("peers_detached", []).append(peer)
    except CommandExecutionError as exc:
        ret.update(result=False, changes=done, comment=f"Volume {name}: {exc}")
        return ret
    ret.update(result=True, changes=done, comment=(
        f"Volume {name}: removed {len(present)} brick(s), detached {len(attached)} peer(s)"))
    return ret

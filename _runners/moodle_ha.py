"""
Day-2 view of a moodle_ha cluster from the master.

``salt-run moodle_ha.status`` asks every host of the topology for its health facts
(``moodle_ha_status.facts``, one job with a short timeout), judges them and prints one line
per host and layer, green or red, and a verdict; it exits non-zero when anything is red.
``--out=json`` gives the same as data. A host that does not answer in time is reported
unreachable and the rest is still judged: the view is meant for when something is down.

The judging functions (:py:func:`evaluate` and the ``_judge_*`` helpers) are pure: they take
the facts as returned by the hosts, so they are tested on recorded answers.
"""

import datetime
import time

import salt.client

__virtualname__ = "moodle_ha"

# HAProxy proxies of the formula's haproxy.cfg and what they serve.
PROXIES = {"db-writer": "writer_port", "db-readers": "reader_port", "web-farm": "web_port"}


def __virtual__():
    return __virtualname__


def _check(host, layer, ok, text, **data):
    return {"host": host, "layer": layer, "ok": ok, "text": text, **data}


def _num(value, cast=float):
    try:
        return cast(value)
    except (TypeError, ValueError):
        return None


def _judge_galera(host, layer, expected_size, limits):
    out = []
    if "error" in layer and "status" not in layer:
        running = "" if layer.get("running") else " (not running)"
        out.append(_check(host, "galera", False,
                          f"server not answering{running}: {layer['error']}"))
    else:
        st = layer.get("status", {})
        comment = st.get("wsrep_local_state_comment", "?")
        component = st.get("wsrep_cluster_status", "?")
        size = _num(st.get("wsrep_cluster_size"), int)
        paused = _num(st.get("wsrep_flow_control_paused")) or 0.0
        queue = _num(st.get("wsrep_local_recv_queue"), int) or 0
        problems = []
        if comment != "Synced":
            problems.append(f"state {comment}")
        if component != "Primary":
            problems.append(f"component {component}")
        if size != expected_size:
            problems.append(f"cluster size {size}, expected {expected_size}")
        if paused > limits["flow_control_paused"]:
            problems.append(f"flow control paused {paused:.3f}")
        if queue > limits["recv_queue"]:
            problems.append(f"recv queue {queue}")
        text = (f"{comment}, {component}, size {size}/{expected_size}, seqno "
                f"{st.get('wsrep_last_committed', '?')}, fc paused {paused:.3f}, "
                f"recv queue {queue}")
        out.append(_check(host, "galera", not problems,
                          text + (f" ({'; '.join(problems)})" if problems else ""),
                          seqno=_num(st.get("wsrep_last_committed"), int)))
    answer = layer.get("clustercheck")
    if answer is None:
        out.append(_check(host, "clustercheck", False, "no answer on the clustercheck port"))
    else:
        fields = answer.get("fields", {})
        why = next((f"{k}: {v}" for k, v in fields.items()
                    if k in ("error", "mysqld", "maintenance")), "")
        out.append(_check(host, "clustercheck", answer.get("code") == 200,
                          f"HTTP {answer.get('code')}" + (f" ({why})" if why else "")))
    return out


def _judge_gluster(host, layer, expected_peers, limits):
    """One line for a gluster host; volume-wide facts come from the first gluster host."""
    problems, parts = [], []
    peers = layer.get("peers")
    if isinstance(peers, dict) and "error" in peers:
        problems.append(f"peer status: {peers['error']}")
    else:
        good = [p for p in peers or [] if p.get("in_cluster")]
        parts.append(f"peers {len(good)}/{expected_peers} connected")
        if len(good) != expected_peers:
            problems.append("a peer is not connected")
    volume = layer.get("volume")
    if volume is None:
        pass  # another gluster host reports the volume
    elif "error" in volume:
        problems.append(f"volume status: {volume['error']}")
    else:
        bricks = (volume or {}).get("bricks", {})
        online = sum(1 for b in bricks.values() if b.get("online"))
        # One brick per gluster host; a brick whose host is gone is missing from the answer.
        expected = max(len(bricks), expected_peers + 1)
        parts.append(f"bricks {online}/{expected} online")
        if online != expected:
            problems.append("a brick is offline")
    heal = layer.get("heal")
    if heal is None:
        pass
    elif "error" in heal:
        problems.append(f"heal info: {heal['error']}")
    else:
        entries = [b.get("entries") for b in heal.values()]
        pending = sum(e for e in entries if isinstance(e, int))
        parts.append(f"heal pending {pending}")
        if pending:
            problems.append(f"{pending} entries to heal")
        if any(e is None for e in entries):
            problems.append("heal info has a brick not connected")
    split = layer.get("split_brain")
    if split is not None and "error" not in split:
        count = sum(b.get("entries") or 0 for b in split.values())
        parts.append(f"split-brain {count}")
        if count:
            problems.append(f"{count} entries in split-brain")
    brick = layer.get("brick", {})
    if "error" in brick:
        problems.append(f"brick {brick.get('path')}: {brick['error']}")
    elif brick.get("total"):
        free = 100.0 * brick["free"] / brick["total"]
        parts.append(f"brick free {free:.0f}% ({brick['free'] // 2**20} MiB)")
        if free < limits["brick_free_percent"]:
            problems.append(f"brick {free:.0f}% free")
    return [_check(host, "gluster", not problems,
                   ", ".join(parts) + (f" ({'; '.join(problems)})" if problems else ""))]


def writer_of(rows):
    """The server HAProxy sends writes to: the first UP non-backup, else the first UP backup."""
    servers = [r for r in rows if r["pxname"] == "db-writer"
               and r["svname"] not in ("FRONTEND", "BACKEND")]
    for backup in ("0", "1"):
        for row in servers:
            if row["bck"] == backup and row["status"].startswith("UP"):
                return row["svname"]
    return None


def _judge_lb(host, layer, ports):
    out = []
    services = {"haproxy": layer.get("haproxy_active"),
                "keepalived": layer.get("keepalived_active")}
    down = [name for name, up in services.items() if not up]
    out.append(_check(host, "lb", not down,
                      "haproxy and keepalived active" if not down
                      else f"{', '.join(down)} not active",
                      vip_held=bool(layer.get("vip_held"))))
    rows = layer.get("stat")
    if isinstance(rows, dict):
        out.append(_check(host, "haproxy", False, f"stats socket: {rows.get('error')}"))
        return out
    for proxy, port_key in PROXIES.items():
        # Unchecked servers (the web farm's fallbacks) have no state to judge.
        servers = [r for r in rows or [] if r["pxname"] == proxy
                   and r["svname"] not in ("FRONTEND", "BACKEND")
                   and r["status"] != "no check"]
        up = [r["svname"] for r in servers if r["status"].startswith("UP")]
        downs = [f"{r['svname']} {r['status']}" for r in servers
                 if not r["status"].startswith("UP")]
        text = f":{ports.get(port_key, '?')} {proxy}: {len(up)}/{len(servers)} up"
        if proxy == "db-writer":
            writer = writer_of(rows)
            text += f", writer {writer or 'NONE'}"
        if downs:
            text += f" (down: {', '.join(downs)})"
        out.append(_check(host, "haproxy", bool(up) and not downs and bool(servers), text,
                          proxy=proxy))
    # The redis endpoints (role redis: the cache's, and the sessions' while Moodle keeps its
    # sessions there): exactly one server UP, the primary; the replicas answer role:slave to
    # the check and are DOWN by design.
    for proxy in ("redis", "redis-sessions"):
        redis = [r for r in rows or [] if r["pxname"] == proxy
                 and r["svname"] not in ("FRONTEND", "BACKEND")]
        if not redis:
            continue
        up = [r["svname"] for r in redis if r["status"].startswith("UP")]
        text = f":{ports.get(proxy + '_port', '?')} {proxy}: " + (
            f"primary {up[0]}, {len(redis) - 1} replica(s)" if len(up) == 1 else
            "no primary UP" if not up else f"{len(up)} servers claim the primary: {', '.join(up)}")
        out.append(_check(host, "haproxy", len(up) == 1, text, proxy=proxy))
    return out


def _iso_epoch(text):
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except (TypeError, ValueError):
        return None


def _judge_backup(host, layer, now, limits):
    """The newest verified backup's age, a failed last run, the timer."""
    if "error" in layer:
        return [_check(host, "backup", False, f"cannot list backups: {layer['error']}")]
    newest, last = layer.get("newest"), layer.get("last_run") or {}
    problems = []
    if not layer.get("timer_active"):
        problems.append("timer not active")
    if last and last.get("result") is False:
        problems.append(f"last run failed: {str(last.get('error'))[:160]}")
    if newest is None:
        # A fresh cluster: green while the timer is active and no run failed.
        text = "no verified backup yet"
    else:
        finished = _iso_epoch(newest.get("finished"))
        age = now - finished if finished is not None else None
        if age is None or age > limits["backup_max_age"]:
            problems.append(f"older than {limits['backup_max_age']} s")
        text = (f"newest {newest['name']}, {age / 3600:.1f} h old, "
                f"{(newest.get('bytes') or 0) / 1e6:.1f} MB, seqno {newest.get('seqno')}, "
                f"{layer.get('count')} kept")
    return [_check(host, "backup", not problems,
                   text + (f" ({'; '.join(problems)})" if problems else ""))]


def _judge_garbd(host, layer):
    """The arbitrator's service; whether it is a member shows in every galera line's size."""
    active = bool(layer.get("active"))
    return [_check(host, "garbd", active, "garb active (arbitrator)" if active
                   else "garb not active: the cluster has one vote less")]


def _judge_chrony(host, layer, limits):
    """chronyd synchronised, its offset from the source within status:clock_offset."""
    leap = layer.get("leap")
    offset = max(abs(layer.get("system_offset") or 0.0), abs(layer.get("last_offset") or 0.0))
    limit = limits.get("clock_offset", 0.1)
    source = f"{layer.get('reference')} (stratum {layer.get('stratum')})"
    if leap == "Not synchronised" or layer.get("stratum") in (None, 0, 16):
        return [_check(host, "chrony", False, f"not synchronised (source {source})")]
    ok = offset <= limit
    text = (f"synced to {source}, offset {offset * 1000:.3f} ms" if ok else
            f"offset {offset * 1000:.1f} ms from {source}, beyond {limit * 1000:.0f} ms")
    return [_check(host, "chrony", ok, text, offset=offset)]


def _judge_web(host, layer, limits):
    out = []
    health = layer.get("health", {})
    seconds = health.get("seconds")
    code = health.get("code")
    ok = code == 200 and seconds is not None and seconds <= limits["web_seconds"]
    text = (f"health page HTTP {code} in {seconds:.2f} s" if code
            else f"health page: {health.get('error', 'no answer')}")
    out.append(_check(host, "web", ok, text))
    cron = layer.get("cron")
    if cron is not None:
        age = cron.get("last_exit_age")
        timer_age = cron.get("timer_age")
        problems = []
        if not cron.get("timer_active"):
            problems.append("timer not active")
        if age is None:
            # Not run since boot: fine while the timer has not been up for cron_max_age.
            if timer_age is None or timer_age > limits["cron_max_age"]:
                problems.append("no run")
            text = (f"not run yet, timer active for {timer_age:.0f} s" if timer_age is not None
                    else "never ran")
        else:
            if cron.get("last_result") != "success":
                problems.append(f"last run {cron.get('last_result')}")
            if age > limits["cron_max_age"]:
                problems.append(f"last run {age:.0f} s ago")
            text = f"last run {age:.0f} s ago, {cron.get('last_result')}"
        out.append(_check(host, "cron", not problems,
                          text + (f" ({'; '.join(problems)})" if problems else "")))
    return out


def evaluate(answers, expected, started, finished, limits=None):
    """
    Judge the hosts' facts against the thresholds of the map (``moodle_ha:status``, which each
    host sends along; ``limits`` overrides single ones). ``answers``: ``{host: facts}`` of
    those that answered;
    ``expected``: ``{host: [roles]}`` of the topology (plus the ports under ``"_ports"`` and
    the Galera voter count under ``"_voters"`` when known); ``started``/``finished``: the
    master's clock around the call (a host's clock must fall inside, give or take the skew
    limit). Returns ``{"checks": [...], "ok": bool, "verdict": str, "retcode": int}``.
    """
    from_map = next((f["limits"] for f in answers.values()
                     if isinstance(f, dict) and f.get("limits")), {})
    limits = dict(from_map, **(limits or {}))
    hosts = {name: roles for name, roles in expected.items() if not name.startswith("_")}
    voters = expected.get("_voters") or sum("galera" in r or "garbd" in r for r in hosts.values())
    gluster_peers = sum("gluster" in r for r in hosts.values()) - 1
    ports = expected.get("_ports", {})
    checks = []
    for host in sorted(hosts):
        facts = answers.get(host)
        if not isinstance(facts, dict):
            if facts is None or str(facts).startswith("Minion did not return"):
                text = "unreachable: no answer in time" + (f" ({facts})" if facts else "")
            else:
                text = f"bad answer: {str(facts)[:200]}"
            checks.append(_check(host, "host", False, text))
            continue
        if "error" in facts:
            checks.append(_check(host, "host", False, facts["error"]))
            continue
        when = facts.get("time", 0)
        skew = max(started - when, when - finished, 0.0)
        checks.append(_check(host, "clock", skew <= limits["clock_skew"],
                             f"within {max(skew, finished - started):.1f} s of the master"
                             if skew <= limits["clock_skew"] else f"off by {skew:.1f} s",
                             skew=round(skew, 3)))
        layers = facts.get("layers", {})
        for role, layer in sorted(layers.items()):
            if "error" in layer and set(layer) <= {"error", "seconds"}:
                checks.append(_check(host, role, False, f"cannot read: {layer['error']}"))
            elif role == "galera":
                checks += _judge_galera(host, layer, voters, limits)
            elif role == "gluster":
                checks += _judge_gluster(host, layer, gluster_peers, limits)
            elif role == "lb":
                checks += _judge_lb(host, layer, ports)
            elif role == "web":
                checks += _judge_web(host, layer, limits)
            elif role == "garbd":
                checks += _judge_garbd(host, layer)
            elif role == "chrony":
                checks += _judge_chrony(host, layer, limits)
            elif role == "backup":
                checks += _judge_backup(host, layer, finished, limits)
        tasks = layers.get("galera", {}).get("failed_tasks")
        if tasks is not None:
            if isinstance(tasks, dict):
                checks.append(_check(host, "tasks", False, f"cannot read: {tasks.get('error')}"))
            else:
                checks.append(_check(
                    host, "tasks", not tasks,
                    "no failed scheduled task" if not tasks else
                    f"{len(tasks)} failing: " + ", ".join(t["task"] for t in tasks[:5])))
    lbs = [c for c in checks if c["layer"] == "lb" and "vip_held" in c]
    holders = [c["host"] for c in lbs if c["vip_held"]]
    if any("lb" in r for r in hosts.values()):
        checks.append(_check("cluster", "vip", len(holders) == 1,
                             f"held by {holders[0]}" if len(holders) == 1
                             else f"held by {len(holders)} hosts {holders}"))
    seqnos = [c["seqno"] for c in checks if c.get("seqno") is not None]
    if seqnos:
        # An active arbitrator is a voter that reports (it has no seqno of its own).
        arbiters = sum(1 for c in checks if c["layer"] == "garbd" and c["ok"])
        checks.append(_check("cluster", "galera", None,
                             f"{len(seqnos) + arbiters}/{voters} voters report, seqno spread "
                             f"{max(seqnos) - min(seqnos)}"))
    if "_backup_node" in expected and not expected["_backup_node"]:
        checks.append(_check("cluster", "backup", None, "backups disabled (backup:enabled)"))
    red = [c for c in checks if c["ok"] is False]
    where = list(dict.fromkeys(f"{c['host']} {c['layer']}" for c in red))
    verdict = "all green" if not red else f"RED: {len(red)} problem(s): " + ", ".join(where)
    return {"checks": checks, "ok": not red, "verdict": verdict, "retcode": 1 if red else 0,
            "seconds": round(finished - started, 2)}


def status(timeout=5):
    """
    One line per host and layer, green or red, and a verdict; non-zero exit when red.

    CLI Example:

    .. code-block:: bash

        salt-run moodle_ha.status
        salt-run moodle_ha.status --out=json
        salt-run moodle_ha.status timeout=10
    """
    timeout = int(timeout)
    client = salt.client.get_local_client(__opts__["conf_file"])
    started = time.time()
    # A probe on a host gets 2 s, the host 3 s in all; silent for `timeout` s: unreachable.
    answers = client.cmd("roles:*", "moodle_ha_status.facts", [2, max(timeout - 2, 1)],
                         tgt_type="grain", timeout=timeout, gather_job_timeout=2)
    finished = time.time()
    expected = {}
    for facts in answers.values():
        if isinstance(facts, dict) and "topology" in facts:
            expected.update(facts["topology"])
    for host in answers:
        expected.setdefault(host, [])
    report = evaluate(answers, expected, started, finished)
    return {"data": report, "outputter": "moodle_ha_status"}


def _backup_node(client, timeout):
    """The minion holding the backup configuration (the layer removes it elsewhere)."""
    found = client.cmd("roles:galera", "file.file_exists", ["/etc/moodle_ha/backup.json"],
                       tgt_type="grain", timeout=timeout)
    nodes = sorted(name for name, present in found.items() if present is True)
    return nodes


def backup_now(node=None, timeout=21600):
    """
    Take one backup now on the backup node (as its timer would) and say where it went and
    how long it took; non-zero exit when it failed.

    CLI Example:

    .. code-block:: bash

        salt-run moodle_ha.backup_now
        salt-run moodle_ha.backup_now node=moodle3
    """
    client = salt.client.get_local_client(__opts__["conf_file"])
    if node is None:
        nodes = _backup_node(client, 10)
        if len(nodes) != 1:
            return {"data": {"result": False, "retcode": 1,
                             "comment": f"expected one backup node, found {nodes or 'none'}"
                                        " (apply moodle_ha.backup, or pass node=...)"},
                    "outputter": "nested"}
        node = nodes[0]
    started = time.monotonic()
    answer = client.cmd(node, "moodle_ha_backup.run", timeout=int(timeout),
                        full_return=True).get(node)
    seconds = round(time.monotonic() - started, 1)
    if not isinstance(answer, dict) or answer.get("retcode") != 0:
        ret = answer.get("ret") if isinstance(answer, dict) else answer
        return {"data": {"result": False, "retcode": 1, "node": node, "seconds": seconds,
                         "comment": f"backup on {node} failed: {ret or 'no answer'}"},
                "outputter": "nested"}
    ret = answer["ret"]
    summary = (f"backup {ret['name']} on {node}: {ret['path']}, {ret['bytes'] / 1e6:.1f} MB,"
               f" {ret['seconds']} s ({'drained from' if ret['drained'] else 'stayed in'}"
               f" the DB pools), Galera seqno {ret['galera']['seqno']}")
    return {"data": {"result": True, "retcode": 0, "node": node, "comment": summary,
                     "name": ret["name"], "path": ret["path"], "bytes": ret["bytes"],
                     "seconds": ret["seconds"], "galera": ret["galera"],
                     "removed": ret.get("removed", [])},
            "outputter": "nested"}

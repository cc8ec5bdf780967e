"""
Raw health facts of one moodle_ha host, for the ``moodle_ha.status`` runner.

:py:func:`facts` reads what this host's roles run (Galera, clustercheck, gluster, HAProxy,
keepalived, the Galera arbitrator, the web health page, the cron timer) and returns plain
data; it never changes anything and never fails as a whole: a layer that cannot be read says
so in its own entry.
Verdicts (green/red) are the runner's (``_runners/moodle_ha.py``), which sees every host.
"""

import contextvars
import http.client
import json
import os
import shutil
import socket
import threading
import time

__virtualname__ = "moodle_ha_status"

# Renders the host's merged map (defaults, OS, release, pillar) the way every SLS does.
_MAP_TEMPLATE = (
    '{%- set tpldir = "moodle_ha" %}'
    '{%- from "moodle_ha/map.jinja" import mapdata with context %}'
    "{{ mapdata | json }}"
)
# haproxy `show stat` fields the runner reads.
_STAT_FIELDS = ("pxname", "svname", "status", "bck", "act", "check_status", "lastchg", "scur")


def __virtual__():
    return __virtualname__


def _map():
    text = __salt__["slsutil.renderer"](string=_MAP_TEMPLATE, default_renderer="jinja")
    return json.loads(text)


def _error(exc):
    return {"error": f"{type(exc).__name__}: {exc}"}


def _parallel(tasks, budget):
    """
    Run ``{key: callable}`` at once in daemon threads; what has not answered within
    ``budget`` seconds is reported as such (a dead peer can make gluster wait for its
    ping timeout, twice: the host must still answer the runner in time).
    """
    results = {}

    def run(key, fun):
        try:
            results[key] = fun()
        except Exception as exc:
            results[key] = _error(exc)

    # Salt's loader dunders (__salt__, ...) live in a context variable: each thread runs in a
    # copy of this one's context, or it sees __salt__ as None.
    threads = [threading.Thread(target=contextvars.copy_context().run, args=(run, *item),
                                daemon=True) for item in tasks.items()]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + budget
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return {key: results.get(key, {"error": f"no answer within {budget} s"}) for key in tasks}


def parse_show_stat(text):
    """
    Parse HAProxy's ``show stat`` CSV into rows of the fields the runner uses.

    CLI Example:

    .. code-block:: bash

        salt lb1 moodle_ha_status.parse_show_stat "$(cat show-stat.csv)"
    """
    lines = [line for line in (text or "").splitlines() if line.strip()]
    if not lines or not lines[0].startswith("# "):
        return []
    header = lines[0][2:].split(",")
    rows = []
    for line in lines[1:]:
        values = dict(zip(header, line.split(","), strict=False))
        rows.append({key: values.get(key, "") for key in _STAT_FIELDS})
    return rows


def _haproxy_command(sock_path, command, timeout):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(sock_path)
        conn.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            data = conn.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


def _galera(mapdata, timeout):
    galera = mapdata["galera"]
    out = {"running": __salt__["galera.is_running"]()}
    try:
        out["status"] = __salt__["galera.status"](socket_path=galera["socket"])
    except Exception as exc:
        out.update(_error(exc))
    me = mapdata["nodes"]["self"]
    answer = __salt__["galera.clustercheck"](me["ip"], galera["clustercheck"]["port"], timeout)
    out["clustercheck"] = answer
    # Moodle's own table, read once: on the node that manages the accounts.
    if mapdata["nodes"]["bootstrap_node"] == me["name"] and mapdata["nodes"]["roles"].get("web"):
        try:
            out["failed_tasks"] = _failed_tasks(mapdata)
        except Exception as exc:
            out["failed_tasks"] = _error(exc)
    return out


def _failed_tasks(mapdata):
    """Moodle scheduled tasks whose last run failed (Moodle backs them off: faildelay > 0)."""
    db = mapdata["moodle"]["db"]
    table = "`{}`.`{}task_scheduled`".format(db["name"].replace("`", "``"),
                                              db["prefix"].replace("`", "``"))
    rows = __salt__["galera.query"](
        f"SELECT classname, faildelay FROM {table} WHERE faildelay > 0 ORDER BY classname",
        socket_path=mapdata["galera"]["socket"], timeout=2)
    return [{"task": row[0], "faildelay": int(row[1])} for row in rows if len(row) > 1]


def _backup(mapdata):
    """The backup node's newest verified backup, its last run and the timer."""
    b = mapdata["backup"]
    try:
        answer = __salt__["moodle_ha_backup.list"](script=b["script"], config=b["config_file"])
    except Exception as exc:
        return _error(exc)
    verified = [e for e in answer["backups"] if e.get("verified")]
    return {"newest": verified[0] if verified else None, "count": len(verified),
            "last_run": answer.get("last_run"),
            "timer_active": __salt__["service.status"]("moodle_ha-backup.timer")}


def _gluster(mapdata, budget):
    volume = mapdata["gluster"]["volume"]
    reads = {"peers": lambda: __salt__["gluster.peer_status"]()}
    # Volume-wide answers from the first gluster host only: the same gluster commands from
    # every node at once contend for glusterd's cluster lock.
    if mapdata["nodes"]["roles"]["gluster"][0]["name"] == mapdata["nodes"]["self"]["name"]:
        reads["volume"] = lambda: __salt__["gluster.volume_status"](volume)
        reads["heal"] = lambda: __salt__["gluster.heal_info"](volume)
        reads["split_brain"] = lambda: __salt__["gluster.heal_info"](volume, True)
    out = _parallel(reads, budget)
    if isinstance(out["peers"], list):
        for peer in out["peers"]:
            peer["in_cluster"] = __salt__["gluster.in_cluster"](peer)
    brick = os.path.join(mapdata["gluster"]["brick_root"], volume)
    try:
        usage = shutil.disk_usage(brick)
        out["brick"] = {"path": brick, "free": usage.free, "total": usage.total}
    except OSError as exc:
        out["brick"] = {"path": brick, **_error(exc)}
    return out


def _lb(mapdata, timeout):
    haproxy = mapdata["lb"]["haproxy"]
    out = {"haproxy_active": __salt__["service.status"](mapdata["services"]["haproxy"]),
           "keepalived_active": __salt__["service.status"](mapdata["services"]["keepalived"]),
           "vip_held": mapdata["topology"]["vip"] in __salt__["network.ip_addrs"]()}
    try:
        out["stat"] = parse_show_stat(_haproxy_command(haproxy["admin_socket"], "show stat",
                                                       timeout))
    except OSError as exc:
        out["stat"] = _error(exc)
    return out


# `chronyc -c tracking` fields (chronyc's CSV: reference id, name, stratum, reference time,
# system time offset, last offset, RMS offset, ..., leap status last).
_TRACKING = ("ref_id", "reference", "stratum", "ref_time", "system_offset", "last_offset",
             "rms_offset", "frequency", "residual_freq", "skew", "root_delay",
             "root_dispersion", "update_interval", "leap")


def parse_tracking(text):
    """chronyd's tracking as a dict (offsets in seconds), from `chronyc -n -c tracking`."""
    fields = text.strip().splitlines()[-1].split(",") if text.strip() else []
    if len(fields) != len(_TRACKING):
        raise ValueError(f"unexpected chronyc tracking output: {text.strip()[:200]!r}")
    out = dict(zip(_TRACKING, fields, strict=True))
    for key in ("stratum",):
        out[key] = int(out[key])
    for key in ("ref_time", "system_offset", "last_offset", "rms_offset", "root_delay",
                "root_dispersion"):
        out[key] = float(out[key])
    if out["ref_id"].upper() == "7F7F0101":  # 127.127.1.1: `local stratum`, its own clock
        out["reference"] = "local clock"
    return {key: out[key] for key in ("reference", "stratum", "ref_time", "system_offset",
                                      "last_offset", "rms_offset", "leap")}


def _chrony(mapdata, timeout):
    """chronyd's view of this host's clock against its source."""
    run = __salt__["cmd.run_all"](["chronyc", "-n", "-c", "tracking"], python_shell=False,
                                  timeout=timeout, ignore_retcode=True)
    if run["retcode"] != 0:
        return {"error": (run.get("stderr") or run.get("stdout") or "chronyc failed").strip()}
    return parse_tracking(run["stdout"])


def _garbd(mapdata):
    """The arbitrator's unit (its membership shows in the galera nodes' cluster size)."""
    return {"active": __salt__["service.status"](mapdata["services"]["garbd"])}


def _web(mapdata, timeout):
    me = mapdata["nodes"]["self"]
    haproxy = mapdata["lb"]["haproxy"]
    host = mapdata["web"]["server_name"] or mapdata["topology"]["vip"]
    out = {}
    start = time.monotonic()
    try:
        conn = http.client.HTTPConnection(me["ip"], haproxy["web_backend_port"], timeout=timeout)
        conn.request("GET", haproxy["web_check_path"], headers={"Host": host})
        resp = conn.getresponse()
        resp.read(256)
        out["health"] = {"code": resp.status}
        conn.close()
    except (OSError, http.client.HTTPException) as exc:
        out["health"] = _error(exc)
    out["health"]["seconds"] = round(time.monotonic() - start, 3)
    if mapdata["nodes"]["primary_node"] == me["name"] and mapdata["moodle"]["cron"]["enabled"]:
        out["cron"] = _cron()
    return out


def _cron():
    props = ("Result", "ExecMainStatus", "ExecMainExitTimestampMonotonic",
             "ActiveState", "ActiveEnterTimestampMonotonic")
    res = __salt__["cmd.run_all"](
        ["systemctl", "show", "moodle_ha-cron.service", "moodle_ha-cron.timer",
         "-p", ",".join(props + ("Id",))], python_shell=False, output_loglevel="quiet")
    units = {}
    for block in res["stdout"].split("\n\n"):
        fields = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if "Id" in fields:
            units[fields["Id"]] = fields
    service = units.get("moodle_ha-cron.service", {})
    timer = units.get("moodle_ha-cron.timer", {})
    # Monotonic microseconds: the age needs no clock agreement between hosts.
    now = time.monotonic() * 1e6
    exit_at = int(service.get("ExecMainExitTimestampMonotonic") or 0)
    timer_since = int(timer.get("ActiveEnterTimestampMonotonic") or 0)
    return {
        "timer_active": timer.get("ActiveState") == "active",
        "timer_age": round((now - timer_since) / 1e6, 1) if timer_since else None,
        "last_result": service.get("Result"),
        "last_status": service.get("ExecMainStatus"),
        "last_exit_age": round((now - exit_at) / 1e6, 1) if exit_at else None,
    }


def facts(timeout=2, budget=3):
    """
    Health facts of this host for the roles it has in the topology.

    Each probe gives up after ``timeout`` seconds; the layers are read at once and whatever
    has not answered within ``budget`` seconds says so. Returns ``{"time", "host",
    "roles", "layers": {role: {...}}, "topology", "limits"}``; a layer that cannot be read
    carries an ``error`` (the map itself failing gives a top-level ``error``).

    CLI Example:

    .. code-block:: bash

        salt '*' moodle_ha_status.facts
    """
    out = {"time": time.time(), "host": __grains__.get("id"), "layers": {}}
    try:
        mapdata = _map()
    except Exception as exc:
        out.update(_error(exc))
        return out
    me = mapdata["nodes"]["self"]
    if me is None:
        out["error"] = "not a host of moodle_ha:topology:hosts"
        return out
    out["roles"] = me["roles"]
    # What the runner needs to judge every host, also those that do not answer.
    haproxy = mapdata["lb"]["haproxy"]
    out["topology"] = {name: list(spec.get("roles") or [])
                       for name, spec in mapdata["topology"]["hosts"].items()
                       if not spec.get("decommission")}
    out["topology"]["_ports"] = {key: haproxy[key]
                                 for key in ("writer_port", "reader_port", "web_port")}
    # HAProxy's redis endpoints by listen section (the cache's, the sessions').
    for inst in mapdata.get("redis_instances") or []:
        out["topology"]["_ports"][f"{inst['proxy']}_port"] = inst["endpoint_port"]
    out["limits"] = mapdata.get("status") or {}
    out["topology"]["_backup_node"] = mapdata["nodes"].get("backup_node")
    readers = {"galera": lambda: _galera(mapdata, timeout), "backup": lambda: _backup(mapdata),
               "gluster": lambda: _gluster(mapdata, budget),
               "lb": lambda: _lb(mapdata, timeout), "web": lambda: _web(mapdata, timeout),
               "garbd": lambda: _garbd(mapdata)}

    def timed(fun):
        def run():
            start = time.monotonic()
            layer = fun()
            layer["seconds"] = round(time.monotonic() - start, 3)
            return layer
        return run

    layers = [role for role in me["roles"] if role in readers]
    if (mapdata.get("chrony") or {}).get("enabled"):
        readers["chrony"] = lambda: _chrony(mapdata, timeout)
        layers.append("chrony")
    if mapdata["nodes"].get("backup_node") == me["name"]:
        layers.append("backup")
    out["layers"] = _parallel({role: timed(readers[role]) for role in layers}, budget + 0.5)
    out["time_done"] = time.time()
    return out

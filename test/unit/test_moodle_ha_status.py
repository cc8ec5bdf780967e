"""
The status runner's verdicts (_runners/moodle_ha.py) and the host facts' parsers
(_modules/moodle_ha_status.py), on answers recorded from the lab's five Debian 13 hosts
(test/data/status/facts-<case>.debian13-lab.json: what `salt ... moodle_ha_status.facts`
returned, a killed host being absent).
"""

import json

import pytest

from render.renderlib import REPO
from saltmodules import load

runner = load("_runners/moodle_ha.py", "moodle_ha_runner_under_test")
status_module = load("_modules/moodle_ha_status.py", "moodle_ha_status_under_test")
DATA = REPO / "test" / "data" / "status"
HOSTS = ["lb1", "lb2", "moodle1", "moodle2", "moodle3"]


def _answers(case):
    return json.loads((DATA / f"facts-{case}.debian13-lab.json").read_text())


def _expected(answers):
    expected = {}
    for facts in answers.values():
        expected.update(facts["topology"])
    return expected


def _judge(case, drop=(), replace=None):
    answers = _answers(case)
    expected = _expected(answers)
    for host in drop:
        answers.pop(host, None)
    answers.update(replace or {})
    times = [f["time"] for f in answers.values() if isinstance(f, dict)]
    return runner.evaluate(answers, expected, min(times) - 0.5, max(times) + 0.5)


def _red(report):
    return {(c["host"], c["layer"]) for c in report["checks"] if c["ok"] is False}


def test_healthy_cluster_is_all_green_with_a_line_per_host_and_layer():
    report = _judge("healthy")
    assert report["ok"] is True and report["retcode"] == 0
    assert report["verdict"] == "all green"
    seen = {(c["host"], c["layer"]) for c in report["checks"]}
    for host in ("moodle1", "moodle2", "moodle3"):
        assert {(host, "galera"), (host, "clustercheck"), (host, "gluster"), (host, "web"),
                (host, "clock")} <= seen
    assert {("lb1", "lb"), ("lb2", "lb"), ("cluster", "vip"), ("moodle1", "cron")} <= seen
    galera = next(c for c in report["checks"] if c["layer"] == "galera")
    assert galera["text"].startswith("Synced, Primary, size 3/3")
    writer = [c["text"] for c in report["checks"] if c.get("proxy") == "db-writer"]
    assert writer == [":3307 db-writer: 3/3 up, writer moodle1"] * 2
    gluster = next(c for c in report["checks"] if c["host"] == "moodle1"
                   and c["layer"] == "gluster")
    assert "bricks 3/3 online, heal pending 0, split-brain 0" in gluster["text"]


def test_report_is_json_serialisable():
    json.dumps(_judge("healthy"))


def test_stopped_cron_timer_is_the_only_red_line():
    report = _judge("cron-timer-stopped")
    assert _red(report) == {("moodle1", "cron")}
    assert report["retcode"] == 1
    assert "timer not active" in next(c["text"] for c in report["checks"]
                                      if c["layer"] == "cron")


def test_haproxy_stopped_on_the_vip_holder_reds_that_lb_only():
    report = _judge("haproxy-stopped-on-lb1")
    assert _red(report) == {("lb1", "lb"), ("lb1", "haproxy")}
    assert "haproxy not active" in next(c["text"] for c in report["checks"]
                                        if c["host"] == "lb1" and c["layer"] == "lb")


def test_killed_brick_process_reds_the_volume_line():
    report = _judge("brick-moodle2-killed")
    assert _red(report) == {("moodle1", "gluster")}
    text = next(c["text"] for c in report["checks"] if c["host"] == "moodle1"
                and c["layer"] == "gluster")
    assert "bricks 2/3 online" in text and "a brick is offline" in text


def test_killed_db_host_is_unreachable_and_every_other_host_is_still_judged():
    report = _judge("moodle3-killed")
    red = _red(report)
    assert ("moodle3", "host") in red
    assert {("moodle1", "galera"), ("moodle2", "galera")} <= red  # size 2 of 3
    assert ("lb1", "haproxy") in red  # moodle3 DOWN in every backend
    unreachable = next(c["text"] for c in report["checks"] if c["host"] == "moodle3")
    assert unreachable.startswith("unreachable")
    judged = {c["host"] for c in report["checks"] if c["layer"] != "host"}
    assert {"lb1", "lb2", "moodle1", "moodle2"} <= judged
    assert report["verdict"].startswith("RED: ")
    assert report["verdict"].count("lb1 haproxy") == 1


def test_salt_not_connected_string_counts_as_unreachable():
    report = _judge("healthy", replace={"moodle2": "Minion did not return. [Not connected]"})
    assert _red(report) == {("moodle2", "host")}
    text = next(c["text"] for c in report["checks"] if c["host"] == "moodle2")
    assert text.startswith("unreachable") and "Not connected" in text


def test_two_vip_holders_are_red():
    answers = _answers("healthy")
    for lb in ("lb1", "lb2"):
        answers[lb]["layers"]["lb"]["vip_held"] = True
    times = [f["time"] for f in answers.values()]
    report = runner.evaluate(answers, _expected(answers), min(times), max(times))
    assert ("cluster", "vip") in _red(report)


def test_a_clock_outside_the_call_window_is_red():
    answers = _answers("healthy")
    times = [f["time"] for f in answers.values()]
    answers["moodle2"]["time"] = max(times) + 30
    report = runner.evaluate(answers, _expected(answers), min(times) - 0.5, max(times) + 0.5)
    assert _red(report) == {("moodle2", "clock")}
    assert "off by 29.5 s" in next(c["text"] for c in report["checks"]
                                   if c["host"] == "moodle2" and c["layer"] == "clock")


def test_cron_not_run_yet_is_green_only_while_the_timer_is_young():
    answers = _answers("healthy")
    cron = answers["moodle1"]["layers"]["web"]["cron"]
    cron.update(last_exit_age=None, last_result="success", timer_age=30)
    times = [f["time"] for f in answers.values()]
    window = (min(times) - 0.5, max(times) + 0.5)
    assert runner.evaluate(answers, _expected(answers), *window)["ok"] is True
    cron["timer_age"] = 3600
    assert _red(runner.evaluate(answers, _expected(answers), *window)) == {("moodle1", "cron")}


def test_thresholds_come_from_the_limits():
    answers = _answers("healthy")
    times = [f["time"] for f in answers.values()]
    report = runner.evaluate(answers, _expected(answers), min(times) - 0.5, max(times) + 0.5,
                             {"web_seconds": 0.0})
    assert {layer for _, layer in _red(report)} == {"web"}


@pytest.mark.parametrize("path", sorted(DATA.glob("facts-*.json")), ids=lambda p: p.name)
def test_facts_carry_no_secret(path):
    text = path.read_text()
    assert "password" not in text.lower() and "secrets" not in text
    assert set(json.loads(text)) <= set(HOSTS)


def test_a_slow_probe_is_reported_and_does_not_hold_the_host_back():
    import time

    start = time.monotonic()
    out = status_module._parallel({"fast": lambda: {"ok": 1},
                                   "slow": lambda: time.sleep(5) or {"ok": 2},
                                   "broken": lambda: 1 / 0}, 0.5)
    assert time.monotonic() - start < 2
    assert out["fast"] == {"ok": 1}
    assert out["slow"] == {"error": "no answer within 0.5 s"}
    assert out["broken"]["error"].startswith("ZeroDivisionError")


def test_writer_is_the_first_up_active_server_else_the_first_up_backup():
    rows = [{"pxname": "db-writer", "svname": "moodle1", "status": "DOWN", "bck": "0"},
            {"pxname": "db-writer", "svname": "moodle2", "status": "UP", "bck": "1"},
            {"pxname": "db-writer", "svname": "moodle3", "status": "UP", "bck": "1"},
            {"pxname": "db-writer", "svname": "BACKEND", "status": "UP", "bck": "0"}]
    assert runner.writer_of(rows) == "moodle2"
    rows[0]["status"] = "UP"
    assert runner.writer_of(rows) == "moodle1"


def test_show_stat_csv_is_parsed_by_its_header():
    text = ("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,"
            "eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,"
            "qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,"
            "check_status,\n"
            "db-writer,moodle2,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1,0,1,0,0,12,0,,1,3,2,,0,,2,0,,0,"
            "L7OK,\n")
    rows = status_module.parse_show_stat(text)
    assert rows == [{"pxname": "db-writer", "svname": "moodle2", "status": "UP", "bck": "1",
                     "act": "0", "check_status": "L7OK", "lastchg": "12", "scur": "0"}]
    assert status_module.parse_show_stat("") == []


# --------------------------------------------------------------------------- backup and tasks
# facts-backup-failed-task: a healthy cluster whose backup node (moodle3) holds 4 verified
# backups, with one Moodle scheduled task failing (faildelay 60).


def _line(report, host, layer):
    return next(c for c in report["checks"] if c["host"] == host and c["layer"] == layer)


def test_backup_line_is_green_with_a_fresh_verified_backup_and_a_failing_task_is_red():
    report = _judge("backup-failed-task")
    backup = _line(report, "moodle3", "backup")
    assert backup["ok"] is True and "newest 20261201T232620Z" in backup["text"]
    tasks = _line(report, "moodle1", "tasks")
    assert tasks["ok"] is False and "session_cleanup_task" in tasks["text"]
    assert report["retcode"] == 1 and report["verdict"] == "RED: 1 problem(s): moodle1 tasks"


def _with_backup(**changes):
    answers = _answers("backup-failed-task")
    answers["moodle1"]["layers"]["galera"]["failed_tasks"] = []
    answers["moodle3"]["layers"]["backup"].update(changes)
    return {"moodle3": answers["moodle3"], "moodle1": answers["moodle1"]}


@pytest.mark.parametrize("changes, why", [
    ({"timer_active": False}, "timer not active"),
    ({"last_run": {"result": False, "finished": 0, "error": "node moodle3 is not Synced"}},
     "last run failed: node moodle3 is not Synced"),
    ({"newest": {"name": "20261101T023000Z", "finished": "2026-11-01T02:30:00+00:00",
                 "bytes": 1, "seqno": 1}}, "older than 93600 s"),
])
def test_backup_line_turns_red(changes, why):
    report = _judge("backup-failed-task", replace=_with_backup(**changes))
    backup = _line(report, "moodle3", "backup")
    assert backup["ok"] is False and why in backup["text"]
    assert "moodle3 backup" in report["verdict"]


def test_no_backup_yet_is_green_while_the_timer_runs():
    report = _judge("backup-failed-task", replace=_with_backup(newest=None, count=0, last_run=None))
    backup = _line(report, "moodle3", "backup")
    assert backup["ok"] is True and backup["text"] == "no verified backup yet"


# --------------------------------------------------------------------------- arbitrator (garbd)
# SYNTHESIZED, not recorded: the lab has not run an arbitrator yet. These are the healthy
# recording turned into a "2 galera nodes + garbd on lb1" cluster: moodle3 keeps gluster and
# web (its galera layer and its rows in the DB pools go), lb1 gets role garbd and the layer
# moodle_ha_status.facts reports for it, every host's topology says so. The galera nodes'
# recorded wsrep_cluster_size 3 stands for the two of them and garbd.


def _with_arbitrator(active=True, cluster_size=None):
    answers = _answers("healthy")
    topology = dict(answers["lb1"]["topology"], moodle3=["gluster", "web"], lb1=["lb", "garbd"])
    for facts in answers.values():
        facts["topology"] = topology
    answers["moodle3"]["roles"] = ["gluster", "web"]
    del answers["moodle3"]["layers"]["galera"]
    answers["lb1"]["roles"] = ["lb", "garbd"]
    answers["lb1"]["layers"]["garbd"] = {"active": active, "seconds": 0.012}
    for lb in ("lb1", "lb2"):
        layer = answers[lb]["layers"]["lb"]
        layer["stat"] = [row for row in layer["stat"] if row["svname"] != "moodle3"
                         or row["pxname"] not in ("db-writer", "db-readers")]
    if cluster_size is not None:
        for host in ("moodle1", "moodle2"):
            answers[host]["layers"]["galera"]["status"]["wsrep_cluster_size"] = str(cluster_size)
    return answers


def _judge_answers(answers):
    times = [f["time"] for f in answers.values()]
    return runner.evaluate(answers, _expected(answers), min(times) - 0.5, max(times) + 0.5)


def test_two_galera_nodes_and_an_active_arbitrator_are_all_green():
    report = _judge_answers(_with_arbitrator())
    assert report["verdict"] == "all green"
    assert _line(report, "lb1", "garbd")["text"] == "garb active (arbitrator)"
    for host in ("moodle1", "moodle2"):
        assert _line(report, host, "galera")["text"].startswith("Synced, Primary, size 3/3")
    assert _line(report, "cluster", "galera")["text"].startswith("3/3 voters report")
    assert not any(c["host"] == "moodle3" and c["layer"] == "galera" for c in report["checks"])


def test_a_stopped_arbitrator_is_red_and_so_is_the_size_it_leaves():
    # Just stopped: the nodes have not seen it leave yet.
    report = _judge_answers(_with_arbitrator(active=False))
    assert _red(report) == {("lb1", "garbd")}
    assert "garb not active" in _line(report, "lb1", "garbd")["text"]
    assert _line(report, "cluster", "galera")["text"].startswith("2/3 voters report")
    # Gone from the group: each galera line counts one voter missing.
    report = _judge_answers(_with_arbitrator(active=False, cluster_size=2))
    assert _red(report) == {("lb1", "garbd"), ("moodle1", "galera"), ("moodle2", "galera")}
    assert "cluster size 2, expected 3" in _line(report, "moodle1", "galera")["text"]
    assert report["verdict"] == "RED: 3 problem(s): lb1 garbd, moodle1 galera, moodle2 galera"


def test_an_arbitrator_running_outside_the_group_shows_in_the_galera_size():
    report = _judge_answers(_with_arbitrator(active=True, cluster_size=2))
    assert _red(report) == {("moodle1", "galera"), ("moodle2", "galera")}
    assert _line(report, "lb1", "garbd")["ok"] is True


def test_facts_of_an_arbitrator_host_read_its_unit(monkeypatch):
    """facts() on a host with role garbd only: the garbd layer, from systemctl, nothing else."""
    mapdata = {
        "nodes": {"self": {"name": "arb1", "ip": "172.30.77.31", "roles": ["garbd"]},
                  "backup_node": "moodle2"},
        "topology": {"hosts": {"moodle1": {"roles": ["galera"]}, "moodle2": {"roles": ["galera"]},
                               "arb1": {"roles": ["garbd"]}}},
        "lb": {"haproxy": {"writer_port": 3307, "reader_port": 3308, "web_port": 80}},
        "services": {"garbd": "garb"},
        "status": {"clock_skew": 1.0},
    }
    asked = []

    def service_status(name):
        asked.append(name)
        return name == "garb"

    monkeypatch.setattr(status_module, "__salt__", {
        "slsutil.renderer": lambda **kwargs: json.dumps(mapdata),
        "service.status": service_status}, raising=False)
    monkeypatch.setattr(status_module, "__grains__", {"id": "arb1"}, raising=False)
    facts = status_module.facts()
    assert set(facts["layers"]) == {"garbd"} and facts["roles"] == ["garbd"]
    assert facts["layers"]["garbd"]["active"] is True and asked == ["garb"]
    assert facts["topology"]["arb1"] == ["garbd"]


def test_backup_fact_takes_the_newest_verified_backup_from_the_recorded_list(monkeypatch):
    listed = json.loads((REPO / "test/data/backup/list.stdout.debian13-lab.json").read_text())
    calls = []

    def fake_list(script, config):
        calls.append((script, config))
        return listed

    monkeypatch.setattr(status_module, "__salt__", {
        "moodle_ha_backup.list": fake_list, "service.status": lambda unit: True}, raising=False)
    fact = status_module._backup({"backup": {"script": "/usr/local/sbin/moodle_ha-backup",
                                             "config_file": "/etc/moodle_ha/backup.json"}})
    assert calls == [("/usr/local/sbin/moodle_ha-backup", "/etc/moodle_ha/backup.json")]
    assert fact["newest"]["name"] == listed["backups"][0]["name"] and fact["timer_active"]
    assert fact["count"] == sum(b["verified"] for b in listed["backups"])


# -- chrony (moodle_ha.chrony): `chronyc -n -c tracking` recorded on Debian 13 lab hosts ----

def _tracking(name):
    return (DATA / f"chronyc-tracking-{name}.debian13-lab.txt").read_text()


def test_tracking_of_a_client_names_its_source_and_offsets():
    got = status_module.parse_tracking(_tracking("moodle1-client"))
    assert got == {"reference": "172.30.77.21", "stratum": 11, "ref_time": 1796198490.643877388,
                   "system_offset": -0.000001029, "last_offset": -0.000000144,
                   "rms_offset": 0.000124123, "leap": "Normal"}


def test_tracking_of_a_local_server_in_orphan_mode_says_local_clock():
    got = status_module.parse_tracking(_tracking("lb1-local"))
    assert got["reference"] == "local clock" and got["stratum"] == 10


@pytest.mark.parametrize("text", ["", "506 Cannot talk to daemon", "A,B,3"])
def test_tracking_that_is_not_chronyc_csv_is_an_error(text):
    with pytest.raises(ValueError):
        status_module.parse_tracking(text)


def _chrony_checks(layer, limits=None):
    return runner._judge_chrony("moodle1", layer, dict({"clock_offset": 0.1}, **(limits or {})))


def test_chrony_line_is_green_with_the_offset_in_milliseconds():
    [check] = _chrony_checks(status_module.parse_tracking(_tracking("moodle1-client")))
    assert check["ok"] is True
    assert check["text"] == "synced to 172.30.77.21 (stratum 11), offset 0.001 ms"
    [check] = _chrony_checks(status_module.parse_tracking(_tracking("lb1-local")))
    assert check["ok"] is True and check["text"].startswith("synced to local clock (stratum 10)")


def test_chrony_line_is_red_beyond_the_limit_or_unsynchronised():
    layer = status_module.parse_tracking(_tracking("moodle1-client"))
    [check] = _chrony_checks(dict(layer, system_offset=0.25))
    assert check["ok"] is False
    assert check["text"] == "offset 250.0 ms from 172.30.77.21 (stratum 11), beyond 100 ms"
    [check] = _chrony_checks(dict(layer, system_offset=0.25), {"clock_offset": 0.5})
    assert check["ok"] is True
    [check] = _chrony_checks(dict(layer, leap="Not synchronised", stratum=0))
    assert check["ok"] is False and check["text"].startswith("not synchronised")


def test_evaluate_judges_the_chrony_layer_of_each_host():
    answers = _answers("healthy")
    layer = status_module.parse_tracking(_tracking("moodle1-client"))
    answers["moodle2"]["layers"]["chrony"] = dict(layer, system_offset=0.3)
    answers["moodle1"]["layers"]["chrony"] = layer
    times = [f["time"] for f in answers.values() if isinstance(f, dict)]
    report = runner.evaluate(answers, _expected(answers), min(times) - 0.5, max(times) + 0.5)
    assert _red(report) == {("moodle2", "chrony")}
    assert ("moodle1", "chrony") in {(c["host"], c["layer"]) for c in report["checks"]}


def test_facts_read_chrony_on_every_host_when_the_layer_is_enabled(monkeypatch):
    mapdata = {
        "nodes": {"self": {"name": "arb1", "ip": "172.30.77.31", "roles": ["garbd"]},
                  "backup_node": None},
        "topology": {"hosts": {"arb1": {"roles": ["garbd"]}}},
        "lb": {"haproxy": {"writer_port": 3307, "reader_port": 3308, "web_port": 80}},
        "services": {"garbd": "garb"},
        "status": {"clock_skew": 1.0},
        "chrony": {"enabled": True},
    }
    calls = []

    def run_all(cmd, **kwargs):
        calls.append((cmd, kwargs.get("python_shell")))
        return {"retcode": 0, "stdout": _tracking("moodle1-client"), "stderr": ""}

    monkeypatch.setattr(status_module, "__salt__", {
        "slsutil.renderer": lambda **kwargs: json.dumps(mapdata),
        "service.status": lambda name: True, "cmd.run_all": run_all}, raising=False)
    monkeypatch.setattr(status_module, "__grains__", {"id": "arb1"}, raising=False)
    facts = status_module.facts()
    assert set(facts["layers"]) == {"garbd", "chrony"}
    assert facts["layers"]["chrony"]["reference"] == "172.30.77.21"
    assert calls == [(["chronyc", "-n", "-c", "tracking"], False)]
    mapdata["chrony"]["enabled"] = False
    assert set(status_module.facts()["layers"]) == {"garbd"}


# --- the redis endpoint (role redis on the three app hosts; cron paused by a benchmark) ----

def _redis_rows(report, lb):
    return [c for c in report["checks"] if c["host"] == lb and c.get("proxy") == "redis"]


def test_redis_endpoint_with_one_primary_is_green_on_both_load_balancers():
    report = _judge("redis")
    for lb in ("lb1", "lb2"):
        (check,) = _redis_rows(report, lb)
        assert check["ok"] is True
        assert check["text"] == ":6379 redis: primary moodle1, 2 replica(s)"
    # The recording was taken with the cron timer stopped: the only red line.
    assert _red(report) == {("moodle1", "cron")}


def _redis_states(states):
    """The recording with lb1's redis servers in `states` ({server: status})."""
    answers = _answers("redis")
    for row in answers["lb1"]["layers"]["lb"]["stat"]:
        if row["pxname"] == "redis" and row["svname"] in states:
            row["status"] = states[row["svname"]]
    return answers


@pytest.mark.parametrize(("states", "text"), [
    ({"moodle1": "DOWN"}, ":6379 redis: no primary UP"),
    ({"moodle2": "UP"}, ":6379 redis: 2 servers claim the primary: moodle1, moodle2"),
])
def test_redis_endpoint_without_exactly_one_primary_is_red(states, text):
    answers = _redis_states(states)
    times = [f["time"] for f in answers.values()]
    report = runner.evaluate(answers, _expected(answers), min(times) - 0.5, max(times) + 0.5)
    (check,) = _redis_rows(report, "lb1")
    assert check["ok"] is False and check["text"] == text
    assert ("lb1", "haproxy") in _red(report) and ("lb2", "haproxy") not in _red(report)


def test_the_web_farms_unchecked_fallbacks_are_not_judged():
    answers = _answers("healthy")
    rows = answers["lb1"]["layers"]["lb"]["stat"]
    farm = [r for r in rows if r["pxname"] == "web-farm" and r["svname"] == "moodle1"][0]
    rows.append({**farm, "svname": "moodle1-fallback", "status": "no check", "bck": "1"})
    times = [f["time"] for f in answers.values()]
    report = runner.evaluate(answers, _expected(answers), min(times) - 0.5, max(times) + 0.5)
    line = next(c for c in report["checks"] if c["host"] == "lb1" and c.get("proxy") == "web-farm")
    assert line["ok"] is True and line["text"] == ":80 web-farm: 3/3 up", line


def test_redis_sessions_endpoint_has_its_own_line_beside_the_caches():
    # Recorded with moodle:session:store redis: HAProxy's redis-sessions listen section on
    # 6380, its primary moodle1 (the sessions server on each host, not the cache's).
    report = _judge("redis-sessions")
    for lb in ("lb1", "lb2"):
        lines = {c["proxy"]: c for c in report["checks"] if c["host"] == lb
                 and c.get("proxy", "").startswith("redis")}
        assert lines["redis"]["text"] == ":6379 redis: primary moodle1, 2 replica(s)"
        assert lines["redis-sessions"]["ok"] is True
        assert lines["redis-sessions"]["text"] == (
            ":6380 redis-sessions: primary moodle1, 2 replica(s)")
    answers = _answers("redis-sessions")
    for row in answers["lb1"]["layers"]["lb"]["stat"]:
        if row["pxname"] == "redis-sessions" and row["svname"] == "moodle1":
            row["status"] = "DOWN"
    times = [f["time"] for f in answers.values()]
    report = runner.evaluate(answers, _expected(answers), min(times) - 0.5, max(times) + 0.5)
    line = next(c for c in report["checks"] if c["host"] == "lb1"
                and c.get("proxy") == "redis-sessions")
    assert line["ok"] is False and line["text"] == ":6380 redis-sessions: no primary UP"
    assert next(c for c in report["checks"] if c["host"] == "lb1"
                and c.get("proxy") == "redis")["ok"] is True

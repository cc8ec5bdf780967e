"""
Lab: `salt-run moodle_ha.status` is green on a healthy cluster and names each injected fault
(red line, non-zero exit) while still reporting every other host.
"""

import json
import time

import pytest

from mhalab.testkit import lab_run, until

pytestmark = pytest.mark.lab


def _status(timeout=5):
    start = time.monotonic()
    proc = lab_run("salt-run", "moodle_ha.status", f"timeout={timeout}", "--out=json",
                   timeout=120)
    took = time.monotonic() - start
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"status gave no JSON: {proc.stdout}{proc.stderr}") from None
    return proc.returncode, data, took


def _red(data):
    return {(c["host"], c["layer"]) for c in data["checks"] if c["ok"] is False}


def _lines(data):
    return "\n".join(f"{c['ok']} {c['host']} {c['layer']} {c['text']}" for c in data["checks"])


def _green(limit=240):
    took, result = until(lambda: (r := _status())[0] == 0 and r, limit, interval=5)
    if took is None:
        _, data, _ = _status()
        raise AssertionError("status did not turn green:\n" + _lines(data))
    return result


def _synced(lab_salt, host):
    try:
        status = lab_salt(host, "galera.status")
    except AssertionError:
        return False
    # A minion that is still starting answers with an error text, not the status mapping.
    return isinstance(status, dict) and status.get("wsrep_local_state_comment") == "Synced"


def test_status_is_all_green_on_a_healthy_cluster(deployed):
    rc, data, took = _green()
    assert rc == 0 and data["ok"] and data["verdict"] == "all green"
    seen = {(c["host"], c["layer"]) for c in data["checks"]}
    for host in ("moodle1", "moodle2", "moodle3"):
        assert {(host, "galera"), (host, "clustercheck"), (host, "gluster"), (host, "web"),
                (host, "clock")} <= seen
    assert ("moodle1", "cron") in seen
    assert {("lb1", "lb"), ("lb2", "lb"), ("lb1", "haproxy"), ("cluster", "vip")} <= seen
    writer = [c["text"] for c in data["checks"] if c.get("proxy") == "db-writer"]
    assert writer and all("writer moodle" in text for text in writer)
    # Clock sync: every host synced, chrony's offset from its source below 100 ms.
    chrony = {c["host"]: c for c in data["checks"] if c["layer"] == "chrony"}
    assert set(chrony) == {"lb1", "lb2", "moodle1", "moodle2", "moodle3"}
    assert all(c["ok"] and c["offset"] < 0.1 for c in chrony.values()), chrony
    print(f"\nstatus on a healthy cluster: {took:.1f} s; chrony offsets (ms): "
          + ", ".join(f"{h} {c['offset'] * 1000:.3f}" for h, c in sorted(chrony.items())))
    human = lab_run("salt-run", "moodle_ha.status", timeout=120)
    assert human.returncode == 0, human.stdout + human.stderr
    assert "all green" in human.stdout and "FAIL" not in human.stdout


def test_status_names_a_stopped_cron_timer(deployed, lab_salt):
    _green()
    lab_salt("moodle1", "service.stop", "moodle_ha-cron.timer")
    try:
        rc, data, _ = _status()
        assert rc != 0
        assert _red(data) == {("moodle1", "cron")}, _lines(data)
    finally:
        lab_salt("moodle1", "service.start", "moodle_ha-cron.timer")


def test_status_names_haproxy_stopped_on_the_vip_holder(deployed, lab_salt, topology):
    _, data, _ = _green()
    holder = next(c["host"] for c in data["checks"] if c.get("vip_held"))
    other = "lb2" if holder == "lb1" else "lb1"
    lab_salt(holder, "service.stop", "haproxy")
    try:
        # Until the VIP has moved the site is really down (every web line red): judge after.
        moved, _ = until(lambda: topology["vip"] in lab_salt(other, "network.ip_addrs"), 20)
        assert moved is not None
        # ... and until the web nodes' DB connections answer through the new holder, and the
        # new holder's HAProxy has seen its web checks pass again (rise 2 at 2 s: the checks
        # failed while the VIP, and the DB behind the health page, were moving).
        last = {}

        def only_the_holder_red():
            last["status"] = result = _status()
            return not {h for h, _ in _red(result[1])} - {holder, "cluster"} and result

        took, result = until(only_the_holder_red, 45)
        assert took is not None, ("lines other than the stopped holder's stayed red:\n"
                                  + _lines(last["status"][1]))
        rc, data, _ = result
        assert rc != 0
        red = _red(data)
        assert (holder, "lb") in red and (holder, "haproxy") in red, _lines(data)
        print(f"\nstatus names only {holder} {took:.1f} s after the VIP moved")
    finally:
        lab_salt(holder, "service.start", "haproxy")


def test_status_names_a_stopped_brick(deployed, lab_salt):
    _green()
    lab_salt("moodle2", "cmd.run", "pkill -KILL -x glusterfsd")
    try:
        rc, data, _ = _status()
        assert rc != 0
        red = _red(data)
        assert red and {layer for _, layer in red} == {"gluster"}, _lines(data)
        assert any("brick" in c["text"] and "offline" in c["text"] for c in data["checks"])
    finally:
        lab_salt("moodle1", "cmd.run", "gluster volume start moodledata force")


def test_status_reports_a_killed_db_host_and_still_judges_the_rest(deployed, lab_salt):
    _green()
    assert lab_run("kill", "moodle3").returncode == 0
    try:
        # Galera needs a few seconds (evs timeouts) to evict the dead member.
        evicted, result = until(lambda: ("moodle1", "galera") in _red((r := _status())[1])
                                and r, 30, interval=1)
        assert evicted is not None, "status never showed the cluster size drop"
        rc, data, took = result
        assert rc != 0
        red = _red(data)
        assert ("moodle3", "host") in red, _lines(data)
        assert ("lb1", "lb") not in red and ("moodle1", "web") not in red, _lines(data)
        print(f"\nstatus with a killed host: {took:.1f} s")
        assert took < 30
    finally:
        assert lab_run("start", "moodle3").returncode == 0
    took, _ = until(lambda: _synced(lab_salt, "moodle3"), 240, interval=3)
    assert took is not None, "moodle3 did not rejoin"


def test_status_reports_a_cut_host_unreachable_within_seconds(deployed, lab_salt):
    _green()
    assert lab_run("cut", "moodle2").returncode == 0
    try:
        rc, data, took = _status()
        assert rc != 0
        assert ("moodle2", "host") in _red(data), _lines(data)
        reported = {c["host"] for c in data["checks"] if c["layer"] != "host"}
        assert {"moodle1", "moodle3", "lb1", "lb2"} <= reported
        print(f"\nstatus with a cut host: {took:.1f} s")
        assert took < 30
    finally:
        assert lab_run("heal", "moodle2").returncode == 0
    took, _ = until(lambda: _synced(lab_salt, "moodle2"), 240, interval=3)
    assert took is not None, "moodle2 did not rejoin after heal"
    _green()

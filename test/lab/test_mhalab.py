"""The lab tool's own logic, without a lab: where the topology and release come from, the
image key, and how a failed orchestrate run is summarised."""

from __future__ import annotations

import pytest

from mhalab import image, paths, results, saltctl, testkit

STATE = "file_|-moodle_ha-galera-config-file-managed_|-/etc/mysql/galera.cnf_|-managed"
REQ = "service_|-moodle_ha-galera-service-running_|-mariadb_|-running"


def orch_result(minion_states: dict, step_ok: bool = False) -> dict:
    return {
        "data": {
            "lab-master": {
                "salt_|-moodle_ha-orch-galera_|-moodle_ha-orch-galera_|-state": {
                    "result": step_ok,
                    "comment": "Run failed on minions: moodle1",
                    "changes": {"ret": minion_states},
                }
            }
        }
    }


def test_failed_states_name_host_id_and_cause_and_count_requisite_failures():
    long = "line\n" * 50 + "x" * 5000
    orch = orch_result({
        "moodle1": {
            STATE: {"result": False, "comment": long, "changes": {}},
            REQ: {"result": False, "comment": "One or more requisite failed: x", "changes": {}},
        },
        "moodle2": {STATE: {"result": True, "comment": "ok", "changes": {"diff": "x"}}},
    })
    lines = saltctl.summarise(orch)
    text = "\n".join(lines)
    assert "moodle1: moodle_ha-galera-config-file-managed (file.managed)" in text
    assert "[...]" in text and len(text) < 800
    assert "1 more states not run: a requisite failed" in text
    assert results.changed(orch) == [f"moodle2: {STATE}"]


def test_render_errors_and_failed_steps_without_states_are_reported():
    orch = orch_result({"lb1": ["Rendering SLS 'base:moodle_ha.lb' failed: bad"]})
    assert results.failures(orch)[0][1:3] == ("lb1", "(render)")
    bare = orch_result({})
    assert results.failures(bare)[0][1] == "-"
    assert "Run failed on minions" in results.failures(bare)[0][3]


def test_an_orchestration_that_does_not_render_is_a_failure():
    # Recorded from the lab: moodle4 marked decommission with an even number of voters left.
    message = ("Rendering SLS 'base:moodle_ha.orch' failed: Jinja error: moodle_ha pillar is"
               " invalid: moodle_ha:topology:hosts: 3 galera node(s) and 1 arbitrator(s)")
    orch = {"data": {"lab-master": [message]}}
    assert results.failed(orch) == [f"lab-master: {message}"]
    assert results.changed(orch) == []


def test_release_defaults_to_trixie_and_follows_the_environment(monkeypatch):
    monkeypatch.delenv("MOODLE_HA_LAB_RELEASE", raising=False)
    assert paths.release() == "trixie"
    monkeypatch.setenv("MOODLE_HA_LAB_RELEASE", "bookworm")
    assert paths.release() == "bookworm"
    assert paths.release("trixie") == "trixie"
    with pytest.raises(SystemExit):
        paths.release("buster")


def test_topology_comes_from_the_chosen_pillar_file(tmp_path, monkeypatch):
    pillar = tmp_path / "p.sls"
    pillar.write_text(
        "moodle_ha:\n  topology:\n    subnet: 10.9.0.0/24\n    vip: 10.9.0.100\n"
        "    hosts:\n      a1: {ip: 10.9.0.11, roles: [lb]}\n"
    )
    monkeypatch.setenv("MOODLE_HA_LAB_PILLAR", str(pillar))
    assert paths.pillar_source(fresh=True) == pillar
    topo = paths.topology(paths.pillar_source(fresh=True))
    assert topo["gateway"] == "10.9.0.1" and topo["prefix"] == 24
    assert topo["hosts"] == {"a1": {"ip": "10.9.0.11", "roles": ["lb"]}}
    assert paths.pillar_source(paths.DEFAULT_PILLAR, fresh=True) == paths.DEFAULT_PILLAR


def test_each_release_has_its_own_image_and_sources():
    names = {rel: image.image_name(rel) for rel in paths.RELEASES}
    assert names["bookworm"].startswith("base-bookworm-")
    assert names["trixie"].startswith("base-trixie-")
    assert len(set(names.values())) == len(paths.RELEASES)
    assert set(image.RELEASES) == set(paths.RELEASES)
    sources = image.debian_sources("trixie", {"debian": "http://m/debian",
                                              "security": "http://m/debian-security"})
    assert "Suites: trixie trixie-updates\n" in sources
    assert "Suites: trixie-security\n" in sources


def test_until_reports_seconds_and_value():
    calls = iter([0, 0, "yes"])
    waited = testkit.until(lambda: next(calls), 5, interval=0.01)
    seconds, value = waited
    assert waited and value == "yes" and seconds < 1
    assert not testkit.until(lambda: None, 0.05, interval=0.01)

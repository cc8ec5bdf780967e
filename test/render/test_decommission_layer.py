"""Scale-in renders: moodle_ha.orch with hosts marked decommission, the decommission layer on
a leaving host, the brick removal on the first gluster node, and what the members stop
naming (Galera's cluster address, HAProxy's backends, garbd's peers) while the firewall
still admits the leaving host.

The pillar is pillar.example grown by moodle4 (galera, gluster, web) and arb1 (garbd), then
both marked decommission with moodle4's brick confirmed.
"""

import pytest

from render.renderlib import example_pillar, state_args
from render.test_firewall_layer import _expected_lines
from render.test_orch import _arg, _steps

APP4 = {"ip": "172.30.77.14", "roles": ["galera", "gluster", "web"]}
ARB1 = {"ip": "172.30.77.31", "roles": ["garbd"]}


def _pillar(leaving=True, confirm=True):
    pillar = example_pillar()
    hosts = pillar["moodle_ha"]["topology"]["hosts"]
    hosts["moodle4"] = dict(APP4, decommission=leaving)
    hosts["arb1"] = dict(ARB1, decommission=leaving)
    pillar["moodle_ha"]["gluster"]["remove_bricks"] = ["moodle4"] if confirm and leaving else []
    return pillar


def test_orch_drains_the_load_balancers_then_stops_the_leaving_hosts_before_the_volume(
        renderer):
    order = [(name.removeprefix("moodle_ha-orch-"), _arg(s, "tgt"))
             for name, s in _steps(renderer, pillar=_pillar())]
    assert order[:11] == [
        ("modules-synced", "arb1,lb1,lb2,moodle1,moodle2,moodle3,moodle4"),
        ("hosts-applied", "arb1,lb1,lb2,moodle1,moodle2,moodle3,moodle4"),
        ("lb-drained", "lb1,lb2"),
        ("decommission-moodle4-stopped", "moodle4"),
        ("decommission-moodle4-settled", "moodle1"),
        ("decommission-arb1-stopped", "arb1"),
        ("decommission-arb1-settled", "moodle1"),
        ("gluster-servers-applied", "moodle2,moodle3"),
        ("gluster-moodle1-volume-applied", "moodle1"),
        ("decommission-gluster-stopped", "moodle4"),
        ("galera-applied", "moodle1,moodle2,moodle3"),
    ]
    names = [name for name, _ in order]
    assert "garbd-applied" not in names


def test_orch_without_leaving_hosts_has_no_decommission_step(renderer):
    names = [n for n, _ in _steps(renderer, pillar=_pillar(leaving=False))]
    assert not [n for n in names if "decommission" in n or "drained" in n]


def test_unconfirmed_brick_removal_fails_the_render_naming_the_key(renderer):
    text = renderer.render_error("moodle_ha.orch", minion_id="master", roles=[],
                                 pillar=_pillar(confirm=False))
    assert "moodle_ha:gluster:remove_bricks: moodle4 is marked decommission" in text


def test_the_first_gluster_node_removes_the_leaving_brick_before_the_volume_check(renderer):
    out = renderer.show_sls("moodle_ha.gluster", pillar=_pillar())
    args = state_args(out["moodle_ha-gluster-volume-bricks-removed"])
    assert args["bricks"] == ["172.30.77.14:/srv/gluster/moodledata"]
    assert args["detach"] == ["172.30.77.14"]
    assert {"gluster": "moodle_ha-gluster-volume-present"} in args["require_in"]
    present = state_args(out["moodle_ha-gluster-volume-present"])
    assert "172.30.77.14:/srv/gluster/moodledata" not in present["bricks"]
    assert present["replica"] == 3


def test_members_render_no_brick_removal_without_leaving_hosts(renderer):
    out = renderer.show_sls("moodle_ha.gluster", pillar=_pillar(leaving=False))
    assert "moodle_ha-gluster-volume-bricks-removed" not in out
    assert len(state_args(out["moodle_ha-gluster-volume-present"])["bricks"]) == 4


def test_leaving_app_node_stops_web_then_leaves_galera(renderer):
    out = renderer.show_sls("moodle_ha.decommission", minion_id="moodle4", pillar=_pillar())
    assert set(out) == {
        "moodle_ha-decommission-web-cron-timer-dead",
        "moodle_ha-decommission-web-apache-service-dead",
        "moodle_ha-decommission-web-dataroot-unmounted",
        "moodle_ha-decommission-galera-backup-timer-dead",
        "moodle_ha-decommission-galera-member-left",
        "moodle_ha-decommission-galera-clustercheck-service-dead",
        "moodle_ha-decommission-services-stopped",
    }
    left = state_args(out["moodle_ha-decommission-galera-member-left"])
    assert {"mount": "moodle_ha-decommission-web-dataroot-unmounted"} in left["require"]
    assert state_args(out["moodle_ha-decommission-web-dataroot-unmounted"])["persist"] is True
    gluster = renderer.show_sls("moodle_ha.decommission.gluster", minion_id="moodle4",
                                pillar=_pillar())
    assert set(gluster) == {"moodle_ha-decommission-gluster-service-dead"}


def test_leaving_arbitrator_only_stops_garbd(renderer):
    out = renderer.show_sls("moodle_ha.decommission", minion_id="arb1", roles=["garbd"],
                            pillar=_pillar())
    assert set(out) == {"moodle_ha-decommission-garbd-service-dead",
                        "moodle_ha-decommission-services-stopped"}


@pytest.mark.parametrize("minion", ["moodle1", "lb1"])
def test_the_decommission_layer_fails_on_a_member(renderer, minion):
    out = renderer.show_sls("moodle_ha.decommission", minion_id=minion, pillar=_pillar())
    assert set(out) == {"moodle_ha-decommission-not-marked"}


def test_members_stop_naming_the_leaving_hosts_but_still_admit_them(renderer, tmp_path):
    cnf = renderer.template("galera", "60-galera.cnf.jinja", tmp_path, pillar=_pillar())
    address = next(line for line in cnf.splitlines() if line.startswith("wsrep_cluster_address"))
    assert "172.30.77.14" not in address and "172.30.77.13" in address
    haproxy = renderer.template("lb", "haproxy.cfg.jinja", tmp_path, minion_id="lb1",
                                pillar=_pillar())
    assert "172.30.77.14" not in haproxy and "172.30.77.13" in haproxy
    # The firewall keeps admitting moodle4 (to Galera's and gluster's ports) while it leaves.
    rules = "\n".join(_expected_lines("moodle1", "Debian-13", pillar=_pillar()))
    galera = next(line for line in rules.splitlines() if "4567" in line)
    bricks = next(line for line in rules.splitlines() if "gluster bricks" in line)
    assert "172.30.77.14" in galera and "172.30.77.14" in bricks


@pytest.mark.parametrize(("minion", "grown", "donors"), [
    ("moodle1", False, "moodle2,moodle3,"), ("moodle2", False, "moodle3,"),
    ("moodle3", False, "moodle2,"), ("moodle4", True, "moodle2,moodle3,moodle5,")])
def test_joiners_prefer_a_donor_other_than_the_writer(renderer, tmp_path, minion, grown,
                                                      donors):
    # moodle1, the first galera node, is the writer behind 3307; a donor answers 503 on
    # clustercheck, so a new member must not take its state from moodle1 unless it has to.
    pillar = example_pillar()
    if grown:
        hosts = pillar["moodle_ha"]["topology"]["hosts"]
        hosts["moodle4"] = APP4
        hosts["moodle5"] = {"ip": "172.30.77.15", "roles": ["galera"]}
    cnf = renderer.template("galera", "60-galera.cnf.jinja", tmp_path, minion_id=minion,
                            pillar=pillar)
    assert f"wsrep_sst_donor = {donors}" in cnf.splitlines()


def test_settle_step_waits_on_a_staying_member_with_the_map_s_timings(renderer):
    pillar = _pillar()
    pillar["moodle_ha"]["galera"].update(leave_settle=12, leave_settle_timeout=90)
    out = renderer.show_sls("moodle_ha.decommission.settled", minion_id="moodle1",
                            pillar=pillar)
    args = state_args(out["moodle_ha-decommission-galera-view-settled"])
    assert (args["settle"], args["timeout"], args["name"]) == (12, 90, "moodle1")
    assert args["socket_path"].endswith(".sock")


def test_a_leaving_web_only_host_gets_no_settle_step(renderer):
    pillar = example_pillar()
    hosts = pillar["moodle_ha"]["topology"]["hosts"]
    hosts["web4"] = {"ip": "172.30.77.19", "roles": ["web"], "decommission": True}
    names = [name.removeprefix("moodle_ha-orch-") for name, _ in _steps(renderer, pillar=pillar)]
    assert "decommission-web4-stopped" in names
    assert not [n for n in names if n.endswith("-settled")], names

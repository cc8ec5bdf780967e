"""moodle_ha.orch renders one step per phase and node, each requiring the step before."""

from render.renderlib import example_pillar


def _steps(renderer, **kwargs):
    out = renderer.show_sls("moodle_ha.orch", minion_id="master", roles=[], **kwargs)
    steps = sorted(out.items(), key=lambda kv: kv[1]["salt"][-1]["order"])
    return steps


def _arg(state, key):
    for item in state["salt"]:
        if isinstance(item, dict) and key in item:
            return item[key]
    return None


def test_orch_sequences_phases_and_applies_galera_to_all_nodes_in_one_job(renderer):
    steps = _steps(renderer)
    order = [(name.removeprefix("moodle_ha-orch-"), _arg(s, "tgt")) for name, s in steps]
    assert order == [
        ("modules-synced", "lb1,lb2,moodle1,moodle2,moodle3"),
        ("hosts-applied", "lb1,lb2,moodle1,moodle2,moodle3"),
        ("gluster-servers-applied", "moodle2,moodle3"),
        ("gluster-moodle1-volume-applied", "moodle1"),
        ("galera-applied", "moodle1,moodle2,moodle3"),
        ("lb-applied", "lb1,lb2"),
        ("web-applied", "moodle1,moodle2,moodle3"),
        ("moodle-staged", "moodle1,moodle2,moodle3"),
        ("moodle-upgrade-window-opened", "moodle1"),
        ("moodle-upgrade-switched", "moodle1,moodle2,moodle3"),
        ("moodle-upgrade-window-closed", "moodle1"),
        ("moodle-moodle1-applied", "moodle1"),
        ("moodle-others-applied", "moodle2,moodle3"),
        ("moodle-held-window-closed", "moodle1"),
        ("check-moodle1-passed", "moodle1"),
        ("check-others-passed", "moodle2,moodle3"),
        ("backup-applied", "moodle1,moodle2,moodle3"),
        ("metrics-applied", "lb1,lb2,moodle1,moodle2,moodle3"),
    ]
    for (prev, _), (_name, state) in zip(steps, steps[1:], strict=False):
        assert _arg(state, "require") == [{"salt": prev}]
        assert _arg(state, "failhard") is True


def test_orch_follows_the_designated_primary_node(renderer):
    steps = _steps(renderer, patch={"moodle_ha:moodle:primary_node": "moodle2"})
    names = [name.removeprefix("moodle_ha-orch-") for name, _ in steps]
    assert "moodle-moodle2-applied" in names and "check-moodle2-passed" in names
    tgts = {name.removeprefix("moodle_ha-orch-"): _arg(s, "tgt") for name, s in steps}
    assert tgts["moodle-upgrade-window-opened"] == tgts["moodle-upgrade-window-closed"] == "moodle2"


def test_orch_switches_every_node_in_one_job_inside_the_window_only_for_an_upgrade(renderer):
    steps = dict(_steps(renderer))
    opened = [{"salt": "moodle_ha-orch-moodle-upgrade-window-opened"}]
    switched = steps["moodle_ha-orch-moodle-upgrade-switched"]
    closed = steps["moodle_ha-orch-moodle-upgrade-window-closed"]
    # One job on every web node: the switch everywhere, upgrade.php on the primary.
    assert _arg(switched, "sls") == "moodle_ha.moodle.switch"
    assert _arg(switched, "onchanges") == opened and _arg(closed, "onchanges") == opened
    # Any other step runs whatever the one before changed.
    assert [name for name, s in steps.items() if _arg(s, "onchanges")] == [
        "moodle_ha-orch-moodle-upgrade-switched", "moodle_ha-orch-moodle-upgrade-window-closed"]
    # The final close (a window held from an interrupted run) always runs.
    held = steps["moodle_ha-orch-moodle-held-window-closed"]
    assert _arg(held, "sls") == "moodle_ha.moodle.upgrade_window.close"
    assert _arg(held, "onchanges") is None


def test_orch_stages_the_release_on_every_web_node_before_any_switches(renderer):
    steps = dict(_steps(renderer))
    staged = steps["moodle_ha-orch-moodle-staged"]
    assert _arg(staged, "sls") == ["moodle_ha.moodle.stage", "moodle_ha.moodle.config"]


def test_orch_includes_a_fourth_app_node(renderer):
    pillar = example_pillar()
    hosts = pillar["moodle_ha"]["topology"]["hosts"]
    hosts["moodle4"] = {"ip": "172.30.77.14", "roles": ["gluster", "web"]}
    pillar["moodle_ha"]["gluster"]["replica"] = 4
    steps = dict(_steps(renderer, pillar=pillar))
    assert "moodle4" in _arg(steps["moodle_ha-orch-web-applied"], "tgt")
    assert "moodle4" in _arg(steps["moodle_ha-orch-gluster-servers-applied"], "tgt")


def test_orch_has_no_metrics_step_when_metrics_are_disabled(renderer):
    steps = dict(_steps(renderer, patch={"moodle_ha:metrics:enabled": False}))
    assert "moodle_ha-orch-metrics-applied" not in steps
    assert "moodle_ha-orch-check-others-passed" in steps


def test_orch_applies_arbitrators_right_after_galera_and_before_the_load_balancers(renderer):
    pillar = example_pillar()
    hosts = pillar["moodle_ha"]["topology"]["hosts"]
    # Three galera nodes and two arbitrators: five voters.
    hosts["lb1"]["roles"] = ["lb", "garbd"]
    hosts["arb1"] = {"ip": "172.30.77.31", "roles": ["garbd"]}
    steps = _steps(renderer, pillar=pillar)
    names = [name.removeprefix("moodle_ha-orch-") for name, _ in steps]
    at = names.index("garbd-applied")
    assert names[at - 1:at + 2] == ["galera-applied", "garbd-applied", "lb-applied"]
    state = dict(steps)["moodle_ha-orch-garbd-applied"]
    assert _arg(state, "sls") == "moodle_ha.garbd"
    assert _arg(state, "tgt") == "arb1,lb1"
    assert _arg(state, "require") == [{"salt": "moodle_ha-orch-galera-applied"}]
    assert _arg(dict(steps)["moodle_ha-orch-lb-applied"], "require") == [
        {"salt": "moodle_ha-orch-garbd-applied"}]
    assert _arg(dict(steps)["moodle_ha-orch-galera-applied"], "tgt") == "moodle1,moodle2,moodle3"

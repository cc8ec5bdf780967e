"""A layer applied to a host without its role renders one failing state and nothing else
(`salt '*' state.apply moodle_ha.lb` must not install HAProxy on an app node)."""

import pytest

GUARDED = [("moodle_ha.lb", "lb", "moodle1"), ("moodle_ha.galera", "galera", "lb1"),
           ("moodle_ha.gluster", "gluster", "lb2"), ("moodle_ha.web", "web", "lb1"),
           ("moodle_ha.moodle", "web", "lb2")]


@pytest.mark.parametrize("sls, role, host", GUARDED)
def test_layer_on_a_host_without_its_role_is_one_failing_state(renderer, sls, role, host):
    layer = sls.split(".")[1]
    out = renderer.show_sls(sls, minion_id=host)
    assert sorted(out) == [f"moodle_ha-{layer}-role-missing"]
    state = out[f"moodle_ha-{layer}-role-missing"]
    assert "fail_without_changes" in state["test"]
    comment = next(i["comment"] for i in state["test"] if isinstance(i, dict) and "comment" in i)
    assert f"{host} has no role {role}" in comment


def test_applying_the_lb_layer_to_an_app_node_fails_and_changes_nothing(renderer):
    code, out = renderer.call("state.sls", "moodle_ha.lb", "test=True", minion_id="moodle1")
    assert code != 0
    assert list(out) == ["test_|-moodle_ha-lb-role-missing_|-moodle_ha.lb not applied_|-"
                         "fail_without_changes"]
    assert out[next(iter(out))]["changes"] == {}

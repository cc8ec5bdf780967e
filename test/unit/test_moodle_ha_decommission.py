"""Scale-out and scale-in in the validation and the derived topology (_modules/moodle_ha.py).

A host marked ``decommission: true`` leaves the role lists every layer reads
(``nodes.roles``) and is listed under ``nodes.leaving``; the quorum rules count the members
that stay; a leaving gluster host needs ``gluster:remove_bricks`` naming it. The pillar is
pillar.example (moodle1..3 with galera, gluster, web; lb1, lb2) patched as in
test_moodle_ha_validation.py.
"""

import pytest
from maplib import patched
from maplib import post_map as maplib_post_map
from test_moodle_ha_validation import HOSTS, KNOWN, VALIDATION

from render.renderlib import example_pillar

APP4 = {"ip": "172.30.77.14", "roles": ["galera", "gluster", "web"]}
ARB1 = {"ip": "172.30.77.31", "roles": ["garbd"]}
GROWN = {f"{HOSTS}:moodle4": APP4, f"{HOSTS}:arb1": ARB1}
LEAVE = {f"{HOSTS}:moodle4": {**APP4, "decommission": True},
         f"{HOSTS}:arb1": {**ARB1, "decommission": True},
         "moodle_ha:gluster:remove_bricks": ["moodle4"]}


def _result(patch, minion_id="moodle1"):
    roles = patched(example_pillar(), patch)["moodle_ha"]["topology"]["hosts"][minion_id]
    return maplib_post_map(VALIDATION, KNOWN, patched(example_pillar(), patch)["moodle_ha"],
                           minion_id, roles["roles"])


def _names(nodes, role):
    return [n["name"] for n in nodes.get(role, [])]


def test_four_app_nodes_and_an_arbitrator_are_five_voters():
    result = _result(GROWN)
    assert result["errors"] == []
    nodes = result["map"]["nodes"]
    assert _names(nodes["roles"], "galera") == ["moodle1", "moodle2", "moodle3", "moodle4"]
    assert _names(nodes["roles"], "garbd") == ["arb1"]
    assert nodes["replica"] == 4
    assert nodes["leaving"] == {}


def test_a_fourth_galera_node_without_an_arbitrator_is_refused():
    errors = _result({f"{HOSTS}:moodle4": APP4})["errors"]
    assert errors == [f"{HOSTS}: 4 galera node(s) and 0 arbitrator(s): Galera needs an odd"
                      " number of at least 3 voters (add a node or a garbd host)"]


def test_leaving_hosts_are_out_of_every_role_list_and_listed_as_leaving():
    result = _result(LEAVE)
    assert result["errors"] == []
    nodes = result["map"]["nodes"]
    for role in ("galera", "gluster", "web"):
        assert _names(nodes["roles"], role) == ["moodle1", "moodle2", "moodle3"], role
    assert _names(nodes["roles"], "garbd") == []
    assert _names(nodes["leaving"], "galera") == ["moodle4"]
    assert _names(nodes["leaving"], "gluster") == ["moodle4"]
    assert _names(nodes["leaving"], "garbd") == ["arb1"]
    assert nodes["replica"] == 3
    assert nodes["self"]["decommission"] is False


def test_the_leaving_host_knows_it_leaves():
    nodes = _result(LEAVE, minion_id="moodle4")["map"]["nodes"]
    assert nodes["self"] == {"name": "moodle4", "ip": "172.30.77.14",
                             "fqdn": "moodle4.moodle-ha.internal",
                             "roles": ["galera", "gluster", "web"], "decommission": True}


def test_leaving_galera_node_that_would_leave_an_even_count_is_refused():
    patch = {**GROWN, f"{HOSTS}:moodle4": {**APP4, "decommission": True},
             "moodle_ha:gluster:remove_bricks": ["moodle4"]}
    errors = _result(patch)["errors"]
    assert errors == [f"{HOSTS}: 3 galera node(s) and 1 arbitrator(s): Galera needs an odd"
                      " number of at least 3 voters (add a node or a garbd host) (counting"
                      " without moodle4, marked decommission)"]


def test_leaving_below_three_voters_is_refused():
    patch = {f"{HOSTS}:moodle3:decommission": True,
             "moodle_ha:gluster:remove_bricks": ["moodle3"]}
    errors = _result(patch)["errors"]
    assert any("2 galera node(s) and 0 arbitrator(s)" in e and "counting without moodle3" in e
               for e in errors), errors


def test_a_leaving_brick_without_the_confirmation_is_refused_naming_what_to_set():
    patch = {**LEAVE, "moodle_ha:gluster:remove_bricks": []}
    errors = _result(patch)["errors"]
    assert errors == [
        "moodle_ha:gluster:remove_bricks: moodle4 is marked decommission and holds a brick of"
        " volume moodledata; its brick is removed only when listed here (set"
        " moodle_ha:gluster:remove_bricks: [moodle4] to confirm; nothing changes until then)"]


def test_a_confirmation_for_a_host_that_stays_is_refused():
    errors = _result({**GROWN, "moodle_ha:gluster:remove_bricks": ["moodle2"]})["errors"]
    assert errors == ["moodle_ha:gluster:remove_bricks: 'moodle2' is not a gluster host marked"
                      " decommission (remove it from the list)"]


def test_a_load_balancer_is_not_decommissioned():
    errors = _result({f"{HOSTS}:lb2:decommission": True}, minion_id="lb1")["errors"]
    assert any(e.startswith(f"{HOSTS}:lb2:decommission: lb2 is a load balancer") for e in errors)


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_decommission_is_a_boolean(value):
    errors = _result({**GROWN, f"{HOSTS}:moodle4:decommission": value})["errors"]
    assert f"{HOSTS}:moodle4:decommission: {value!r} is not true or false" in errors


def test_a_fixed_replica_count_cannot_shrink():
    patch = {**LEAVE, "moodle_ha:gluster:replica": 4}
    errors = _result(patch)["errors"]
    assert any(e.startswith("moodle_ha:gluster:replica: removing bricks from a volume with a"
                            " fixed replica count") for e in errors), errors


def test_the_primary_node_cannot_be_a_leaving_host():
    patch = {**LEAVE, "moodle_ha:moodle:primary_node": "moodle4"}
    errors = _result(patch)["errors"]
    assert "moodle_ha:moodle:primary_node: 'moodle4' is not a web host" in errors

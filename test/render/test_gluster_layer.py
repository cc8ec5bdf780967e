"""Render tests of moodle_ha.gluster's brick keeper: every gluster node checks its own brick
(host:path as the volume names it); only the first gluster node, which starts the volume,
waits for that first."""

import pytest

from render.renderlib import state_args

BRICK_RUNNING = "moodle_ha-gluster-volume-brick-running"


@pytest.mark.parametrize("host, ip", [("moodle1", "172.30.77.11"), ("moodle3", "172.30.77.13")])
def test_every_gluster_node_keeps_its_own_brick_running(renderer, host, ip):
    out = renderer.show_sls("moodle_ha.gluster", minion_id=host)
    args = state_args(out[BRICK_RUNNING])
    assert args["name"] == "moodledata"
    assert args["brick"] == f"{ip}:/srv/gluster/moodledata"
    started = {"gluster": "moodle_ha-gluster-volume-started"}
    assert (started in args["require"]) is (host == "moodle1")


def test_a_host_without_the_gluster_role_has_no_brick_to_keep(renderer):
    out = renderer.show_sls("moodle_ha.gluster", minion_id="lb1", roles=["lb"])
    assert BRICK_RUNNING not in out

"""The galera layer hands the map's paths to its custom state (one configuration path)."""

import pytest

from render.renderlib import PLATFORMS


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_cluster_member_gets_socket_datadir_and_user_from_the_map(renderer, platform):
    out = renderer.show_sls("moodle_ha.galera", minion_id="moodle2", platform=platform,
                            patch={"moodle_ha:lookup:galera:datadir": "/srv/mysql"})
    args = {k: v for item in out["moodle_ha-galera-cluster-member"]["galera"]
            if isinstance(item, dict) for k, v in item.items()}
    assert args["socket_path"] == "/run/mysqld/mysqld.sock"
    assert args["datadir"] == "/srv/mysql"
    assert args["user"] == "mysql"
    assert [n["name"] for n in args["nodes"]] == ["moodle1", "moodle2", "moodle3"]

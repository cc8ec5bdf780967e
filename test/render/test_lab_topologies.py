"""The lab's other topologies are pillar.example with a few roles changed, and nothing else."""

import yaml

from render.renderlib import REPO, example_pillar


def test_garbd_topology_is_pillar_example_with_an_arbitrator_on_lb1_and_galera_tls():
    want = example_pillar()
    want["moodle_ha"]["galera"]["tls"]["enabled"] = True
    hosts = want["moodle_ha"]["topology"]["hosts"]
    hosts["moodle3"]["roles"] = ["gluster", "web"]
    hosts["lb1"]["roles"] = ["lb", "garbd"]
    got = yaml.safe_load((REPO / "test/lab/topologies/garbd.yaml").read_text())
    assert got == want


def test_redis_topology_is_pillar_example_with_redis_on_the_app_hosts():
    want = example_pillar()
    for name in ("moodle1", "moodle2", "moodle3"):
        want["moodle_ha"]["topology"]["hosts"][name]["roles"].append("redis")
    want["moodle_ha"]["moodle"]["cache"]["application_store"] = "redis"
    want["moodle_ha"]["moodle"]["session"] = {"store": "redis"}
    got = yaml.safe_load((REPO / "test/lab/topologies/redis.yaml").read_text())
    assert got == want

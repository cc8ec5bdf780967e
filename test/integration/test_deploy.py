"""
Lab: moodle_ha.orch takes the bare hosts to Moodle on the VIP; a second run changes nothing;
each layer is checked from outside (salt calls into the hosts, traffic to the VIP).
"""

import pytest

pytestmark = pytest.mark.lab


def test_orchestrate_from_bare_hosts_succeeds(deployed):
    assert deployed.failed == [], "\n".join(deployed.failed)
    assert deployed.changed, "the first run changed nothing: were the hosts not bare?"


def test_second_orchestrate_changes_nothing(redeployed):
    assert redeployed.failed == [], "\n".join(redeployed.failed)
    assert redeployed.changed == [], "\n".join(redeployed.changed)


def test_gluster_volume_is_replica_3_and_started(deployed, lab_salt):
    info = lab_salt("moodle1", "gluster.volume_info", "moodledata")
    vol = info["moodledata"]
    assert vol["status"] in ("Started", 1, "1")
    assert int(vol["replica"]) == 3
    assert len(vol["bricks"]) == 3
    assert vol["options"].get("network.ping-timeout") == "2"


def test_file_written_on_moodle1_dataroot_is_read_on_moodle3(deployed, lab_salt):
    lab_salt("moodle1", "file.write", "/var/moodledata/it-shared.txt", "from moodle1")
    assert lab_salt("moodle3", "file.read", "/var/moodledata/it-shared.txt").strip() == (
        "from moodle1"
    )


def test_dataroot_is_not_world_writable(deployed, lab_salt):
    mode = lab_salt("moodle2", "file.get_mode", "/var/moodledata")
    assert int(mode, 8) & 0o002 == 0


def test_galera_cluster_has_three_synced_members(deployed, lab_salt):
    for host in ("moodle1", "moodle2", "moodle3"):
        status = lab_salt(host, "galera.status")
        assert int(status["wsrep_cluster_size"]) == 3
        assert status["wsrep_cluster_status"] == "Primary"
        assert status["wsrep_local_state_comment"] == "Synced"


def test_config_php_is_0640_and_points_at_the_vip(deployed, lab_salt):
    stat = lab_salt("moodle2", "file.stats", "/var/www/moodle/config.php")
    assert stat["mode"] == "0640"
    text = lab_salt("moodle2", "cmd.run", "cat /var/www/moodle/config.php")
    assert "172.30.77.100" in text and "3307" in text and "3308" in text


def test_moodle_answers_through_the_vip(deployed, vip_http):
    status, body = vip_http("/")
    assert status == 200, body[:500]


def test_clustercheck_answers_200_when_synced(deployed, clustercheck_http):
    for host in ("moodle1", "moodle2", "moodle3"):
        status, body = clustercheck_http(host)
        assert status == 200, body[:300]


def test_clustercheck_answers_503_when_desynced(deployed, lab_salt, clustercheck_http):
    sql = "SET GLOBAL wsrep_desync=ON"
    lab_salt("moodle3", "cmd.run", f'mysql -e "{sql}"')
    try:
        status, body = clustercheck_http("moodle3")
        assert status == 503, body[:300]
    finally:
        lab_salt("moodle3", "cmd.run", 'mysql -e "SET GLOBAL wsrep_desync=OFF"')

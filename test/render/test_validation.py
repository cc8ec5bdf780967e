"""Invalid pillars fail at render time with one clear message naming the key."""

import pytest

from saltmodules import load

SECRETS = load("_modules/moodle_ha.py", "moodle_ha_validation_secrets").SECRETS
HOSTS = "moodle_ha:topology:hosts"


def _error(renderer, patch, minion_id="moodle1", roles=None):
    text = renderer.render_error("moodle_ha.hosts", patch=patch, minion_id=minion_id, roles=roles)
    assert "moodle_ha pillar is invalid" in text
    return text


@pytest.mark.parametrize("secret", SECRETS)
def test_missing_secret_names_its_key(renderer, secret):
    text = _error(renderer, {f"moodle_ha:secrets:{secret}": renderer.DELETE})
    assert f"moodle_ha:secrets:{secret}: missing" in text


def test_two_galera_nodes_without_arbitrator_rejected(renderer):
    text = _error(renderer, {f"{HOSTS}:moodle3:roles": ["gluster", "web"]})
    assert "2 galera node(s) and 0 arbitrator(s)" in text


def test_even_galera_node_count_rejected(renderer):
    text = _error(renderer, {f"{HOSTS}:moodle4": {"ip": "172.30.77.14", "roles": ["galera"]}})
    assert "4 galera node(s)" in text and "odd number" in text


def test_two_galera_nodes_with_arbitrator_accepted(renderer):
    out = renderer.show_sls(
        "moodle_ha.hosts",
        patch={f"{HOSTS}:moodle3:roles": ["gluster", "web"],
               f"{HOSTS}:arb1": {"ip": "172.30.77.31", "roles": ["garbd"]}},
    )
    assert "moodle_ha-hosts-entry-arb1-present" in out


def test_brick_count_not_fitting_replica_rejected(renderer):
    text = _error(renderer, {"moodle_ha:gluster:replica": 2})
    assert "moodle_ha:gluster:replica: 3 brick(s) do not fit replica 2" in text


def test_malformed_ip_rejected(renderer):
    text = _error(renderer, {f"{HOSTS}:moodle2:ip": "172.30.77.300"})
    assert f"{HOSTS}:moodle2:ip: '172.30.77.300' is not a valid IPv4 address" in text


def test_duplicate_ip_rejected(renderer):
    text = _error(renderer, {f"{HOSTS}:moodle2:ip": "172.30.77.11"})
    assert "172.30.77.11 is already used by host moodle1" in text


def test_vip_outside_subnet_rejected(renderer):
    text = _error(renderer, {"moodle_ha:topology:vip": "10.0.0.100"})
    assert "moodle_ha:topology:vip: 10.0.0.100 is outside moodle_ha:topology:subnet" in text


def test_vip_equal_to_host_ip_rejected(renderer):
    text = _error(renderer, {"moodle_ha:topology:vip": "172.30.77.21"})
    assert "moodle_ha:topology:vip: 172.30.77.21 is the IP of host lb1" in text


def test_unknown_role_rejected(renderer):
    text = _error(renderer, {f"{HOSTS}:lb2:roles": ["lb", "cache"]})
    assert f"{HOSTS}:lb2:roles: unknown role 'cache'" in text


def test_keepalived_auth_longer_than_8_rejected(renderer):
    text = _error(renderer, {"moodle_ha:secrets:keepalived_auth_pass": "nine-char"})
    assert "moodle_ha:secrets:keepalived_auth_pass: longer than 8 characters" in text


def test_grain_role_not_in_pillar_rejected(renderer):
    text = _error(renderer, {}, minion_id="lb1", roles=["lb", "galera"])
    assert f"{HOSTS}:lb1:roles: grain roles ['galera']" in text


def test_malformed_subnet_rejected(renderer):
    text = _error(renderer, {"moodle_ha:topology:subnet": "172.30.77.1/24"})
    assert "moodle_ha:topology:subnet" in text and "CIDR" in text


def test_pillar_example_renders(renderer):
    out = renderer.show_sls("moodle_ha.hosts")
    assert "moodle_ha-hosts-vip-entry-present" in out


@pytest.mark.parametrize("patch, message", [
    ({"moodle_ha:metrics:node_exporter:port": "9100x"},
     "moodle_ha:metrics:node_exporter:port: '9100x' is not a TCP port"),
    ({"moodle_ha:metrics:mysqld_exporter:port": 70000},
     "moodle_ha:metrics:mysqld_exporter:port: 70000 is not a TCP port"),
    ({"moodle_ha:metrics:mysqld_exporter:port": 9200},
     "moodle_ha:metrics:mysqld_exporter:port: port 9200 is also"
     " moodle_ha:galera:clustercheck:port on host moodle1"),
    ({"moodle_ha:metrics:node_exporter:port": 8404},
     "moodle_ha:metrics:node_exporter:port: port 8404 is also moodle_ha:lb:haproxy:stats_port"
     " on host lb1"),
    ({"moodle_ha:metrics:mysqld_exporter:port": 9100},
     "moodle_ha:metrics:mysqld_exporter:port: port 9100 is also"
     " moodle_ha:metrics:node_exporter:port on host moodle1"),
    ({"moodle_ha:metrics:enabled": "yes"},
     "moodle_ha:metrics:enabled: 'yes' is not true or false"),
    ({"moodle_ha:metrics:haproxy:path": "/"},
     "moodle_ha:metrics:haproxy:path: '/' is not a URL path such as /metrics"),
    ({"moodle_ha:metrics:node_exporter:args": ["--collector.systemd --x"]},
     "moodle_ha:metrics:node_exporter:args: ['--collector.systemd --x'] is not a list of"
     " --flags"),
    ({"moodle_ha:metrics:mysqld_exporter:connection": "env"},
     "moodle_ha:metrics:mysqld_exporter:connection: 'env' is not one of my_cnf, dsn"),
])
def test_bad_metrics_key_rejected_naming_it(renderer, patch, message):
    assert message in _error(renderer, patch)


def test_disabled_metrics_skip_the_exporter_port_checks(renderer):
    text = _error(renderer, {"moodle_ha:metrics:node_exporter:port": 9200})
    assert "moodle_ha:metrics:node_exporter:port: port 9200 is also" in text
    out = renderer.show_sls("moodle_ha.hosts", patch={
        "moodle_ha:metrics:enabled": False, "moodle_ha:metrics:node_exporter:port": 9200})
    assert "moodle_ha-hosts-vip-entry-present" in out


# --------------------------------------------------------------------------- arbitrator (garbd)
TWO_DB = {f"{HOSTS}:moodle3:roles": ["gluster", "web"]}
ARB = {"ip": "172.30.77.31", "roles": ["garbd"]}


def test_arbitrator_beside_a_load_balancer_accepted(renderer):
    out = renderer.show_sls("moodle_ha.hosts", minion_id="lb1", roles=["lb", "garbd"],
                            patch={**TWO_DB, f"{HOSTS}:lb1:roles": ["lb", "garbd"]})
    assert "moodle_ha-hosts-vip-entry-present" in out


def test_arbitrator_on_a_galera_host_rejected(renderer):
    text = _error(renderer, {f"{HOSTS}:moodle3:roles": ["galera", "gluster", "web", "garbd"]})
    assert (f"{HOSTS}:moodle3:roles: galera and garbd on one host (an arbitrator is a vote of"
            " its own") in text
    assert "odd number" not in text  # one message: the host's votes are not counted twice


@pytest.mark.parametrize("arbitrators", [1, 2])
def test_one_galera_node_with_arbitrators_rejected(renderer, arbitrators):
    patch = {f"{HOSTS}:moodle2:roles": ["gluster", "web"], **TWO_DB}
    for i in range(arbitrators):
        patch[f"{HOSTS}:arb{i + 1}"] = {"ip": f"172.30.77.3{i + 1}", "roles": ["garbd"]}
    text = _error(renderer, patch)
    assert (f"{HOSTS}: 1 galera node(s) and {arbitrators} arbitrator(s): an arbitrator holds no"
            " data and needs at least 2 galera nodes") in text


def test_arbitrators_outnumbering_galera_nodes_rejected(renderer):
    patch = {**TWO_DB, **{f"{HOSTS}:arb{i}": {"ip": f"172.30.77.3{i}", "roles": ["garbd"]}
                          for i in (1, 2, 3)}}
    text = _error(renderer, patch)
    assert (f"{HOSTS}: 2 galera node(s) and 3 arbitrator(s): arbitrators must be fewer than"
            " galera nodes") in text


def test_arbitrator_outside_the_subnet_rejected(renderer):
    text = _error(renderer, {**TWO_DB, f"{HOSTS}:arb1": {"ip": "10.0.0.31", "roles": ["garbd"]}})
    assert f"{HOSTS}:arb1:ip: 10.0.0.31 is outside moodle_ha:topology:subnet" in text


@pytest.mark.parametrize("patch, message", [
    ({"moodle_ha:garbd:options": {"socket.ssl_cert": "/etc/ssl/my cert.pem"}},
     "moodle_ha:garbd:options: {'socket.ssl_cert': '/etc/ssl/my cert.pem'} is not a map of"
     " provider option names"),
    ({"moodle_ha:garbd:options": {"evs.suspect_timeout": "PT2S'; rm -rf /'"}},
     "moodle_ha:garbd:options: "),
    ({"moodle_ha:garbd:log_file": "/var/log/garbd.log"},
     "moodle_ha:garbd:log_file: '/var/log/garbd.log' is not null (the journal) or a file in"
     " /var/log/garbd/"),
    ({"moodle_ha:garbd:restart_sec": 0},
     "moodle_ha:garbd:restart_sec: 0 is not a number of seconds >= 1"),
    ({"moodle_ha:galera:cluster_name": "moodle galera"},
     "moodle_ha:galera:cluster_name: 'moodle galera' is not a plain name"),
    # The arbitrator listens on the Galera replication port: no exporter may take it there.
    ({"moodle_ha:metrics:node_exporter:port": 4567},
     "moodle_ha:metrics:node_exporter:port: port 4567 is also moodle_ha:galera:replication_port"
     " on host arb1"),
])
def test_bad_garbd_key_rejected_naming_it(renderer, patch, message):
    assert message in _error(renderer, {**TWO_DB, f"{HOSTS}:arb1": ARB, **patch})


def test_garbd_keys_are_not_checked_without_an_arbitrator(renderer):
    out = renderer.show_sls("moodle_ha.hosts", patch={"moodle_ha:garbd:log_file": "/tmp/x"})
    assert "moodle_ha-hosts-vip-entry-present" in out

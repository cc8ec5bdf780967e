"""Invalid pillars fail at render time with one clear message naming the key."""

import copy
import json

import pytest
import yaml

from render.renderlib import REPO, example_pillar, merge
from saltmodules import load

VALIDATION = load("_modules/moodle_ha.py", "moodle_ha_validation_secrets")
SECRETS = VALIDATION.SECRETS
HOSTS = "moodle_ha:topology:hosts"


def _render_error(renderer, sls, **kwargs):
    """The render error of `sls` as salt printed it (quotes, backslashes, non-ASCII as is)."""
    code, out = renderer.call("state.show_sls", sls, **kwargs)
    assert code != 0 or not isinstance(out, dict), f"{sls} rendered although invalid"
    if isinstance(out, list):
        return "\n".join(str(line) for line in out)
    return out if isinstance(out, str) else json.dumps(out, ensure_ascii=False)


def _error(renderer, patch, minion_id="moodle1", roles=None):
    text = _render_error(renderer, "moodle_ha.hosts", patch=patch, minion_id=minion_id,
                         roles=roles)
    assert "moodle_ha pillar is invalid" in text
    return text


def _defaults_tree():
    """defaults.yaml, os_family/Debian.yaml and osfinger/Debian-13.yaml merged, as map.jinja."""
    tree = {}
    for name in ("defaults", "os_family/Debian", "osfinger/Debian-13"):
        path = REPO / "moodle_ha" / "parameters" / f"{name}.yaml"
        merge(tree, yaml.safe_load(path.read_text())["values"])
    return tree


def _merged_example():
    pillar = example_pillar()["moodle_ha"]
    pillar.pop("lookup", None)
    return merge(copy.deepcopy(_defaults_tree()), pillar)


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


# --------------------------------------------------------------------------- shapes (mappings)
LB1 = {"minion_id": "lb1", "roles": ["lb"]}  # renders although moodle1's entry is broken


def _error_as_lb1(renderer, patch):
    text = _render_error(renderer, "moodle_ha.hosts", patch=patch, **LB1)
    # The error raised is the validation's message, not an exception of the code reading
    # the map ('str' object has no attribute 'get', unhashable type, ...).
    assert "Jinja error: moodle_ha pillar is invalid: moodle_ha:" in text
    return text


@pytest.mark.parametrize("value, kind", [
    ("172.30.77.11", "a string"),
    (["172.30.77.11", "galera"], "a list"),
    (None, "null"),
])
def test_host_entry_that_is_not_a_mapping_names_its_key(renderer, value, kind):
    text = _error_as_lb1(renderer, {f"{HOSTS}:moodle1": value})
    assert f"{HOSTS}:moodle1: must be a mapping ({{ip: ..., roles: [...]}}), not {kind}" in text


@pytest.mark.parametrize("key, value, kind", [
    ("topology", "172.30.77.0/24", "a string"),
    ("topology:hosts", ["moodle1", "moodle2"], "a list"),
    ("secrets", "one-password-for-all", "a string"),
    ("galera", None, "null"),
    ("gluster", ["replica", 3], "a list"),
    ("lb:haproxy", "3307", "a string"),
    ("lb:keepalived", 77, "a number"),
    ("web", True, "a boolean"),
    ("moodle:source", "salt://moodle_ha_source/moodle.tgz", "a string"),
    ("metrics:node_exporter", 9100, "a number"),
    ("backup", False, "a boolean"),
])
def test_section_that_is_not_a_mapping_names_its_key(renderer, key, value, kind):
    text = _error_as_lb1(renderer, {f"moodle_ha:{key}": value})
    assert f"moodle_ha:{key}: must be a mapping, not {kind}" in text
    if key == "secrets":
        assert value not in text  # a secret is never echoed


def test_role_that_is_not_a_string_names_its_key(renderer):
    text = _error_as_lb1(renderer, {f"{HOSTS}:moodle1:roles": ["galera", {"web": True}]})
    assert f"{HOSTS}:moodle1:roles: a mapping is not a role name (known: galera," in text


def test_moodle_ha_pillar_that_is_not_a_mapping_fails_with_one_line(renderer):
    text = _render_error(renderer, "moodle_ha.hosts", patch={"moodle_ha": ["topology"]}, **LB1)
    assert "Jinja error: moodle_ha pillar is invalid: moodle_ha: must be a mapping" in text


def test_lookup_that_is_not_a_mapping_names_its_key(renderer):
    text = _error_as_lb1(renderer, {"moodle_ha:lookup": ["web"]})
    assert "moodle_ha:lookup: must be a mapping, not a list" in text


# --------------------------------------------------------------------------- ports
def _port_keys():
    """Every `port` / `*_port` key of the defaults (outside the open mappings)."""
    defaults = yaml.safe_load((REPO / "moodle_ha/parameters/defaults.yaml").read_text())
    found = []

    def walk(node, path):
        for key, value in node.items():
            full = f"{path}{key}"
            if isinstance(value, dict) and full not in ("web:php", "gluster:options"):
                walk(value, full + ":")
            elif key == "port" or str(key).endswith("_port"):
                found.append(full)
    walk(defaults["values"], "")
    return found


PORT_KEYS = _port_keys()


def test_every_listener_port_of_the_defaults_is_found():
    assert {"galera:port", "galera:replication_port", "galera:clustercheck:port",
            "lb:haproxy:writer_port", "lb:haproxy:stats_port", "lb:haproxy:web_backend_port",
            "metrics:node_exporter:port", "metrics:mysqld_exporter:port"} <= set(PORT_KEYS)


@pytest.mark.parametrize("key", PORT_KEYS)
def test_boolean_port_rejected_naming_its_key(renderer, key):
    text = _error(renderer, {f"moodle_ha:{key}": True})
    assert f"moodle_ha:{key}: True is not a TCP port (an integer 1..65535" in text


@pytest.mark.parametrize("value", ["3307", 3307.0, 0, 65536, "yes"])
def test_non_integer_or_out_of_range_port_rejected(renderer, value):
    text = _error(renderer, {"moodle_ha:lb:haproxy:writer_port": value})
    assert f"moodle_ha:lb:haproxy:writer_port: {value!r} is not a TCP port" in text


def test_integer_port_accepted(renderer):
    out = renderer.show_sls("moodle_ha.lb", minion_id="lb1",
                            patch={"moodle_ha:lb:haproxy:writer_port": 13306})
    assert "moodle_ha-lb-haproxy-config-file-managed" in out


def test_clash_with_the_galera_port_names_the_galera_key(renderer):
    text = _error(renderer, {"moodle_ha:lb:haproxy:writer_port": 3306})
    assert "moodle_ha:galera:port: port 3306 is used twice" in text
    assert "moodle_ha:lb:haproxy:galera:port" not in text


# --------------------------------------------------------------------------- gluster replica
def test_replica_one_refused_without_the_switch(renderer):
    text = _error(renderer, {"moodle_ha:gluster:replica": 1})
    assert ("moodle_ha:gluster:replica: replica 1 keeps a single copy of each file") in text
    assert "moodle_ha:gluster:allow_no_redundancy" in text


def test_replica_one_accepted_with_the_switch(renderer):
    out = renderer.show_sls("moodle_ha.gluster", patch={
        "moodle_ha:gluster:replica": 1, "moodle_ha:gluster:allow_no_redundancy": True})
    assert any("volume" in state_id for state_id in out)


def test_single_gluster_host_needs_the_switch(renderer):
    patch = {f"{HOSTS}:moodle2:roles": ["galera", "web"],
             f"{HOSTS}:moodle3:roles": ["galera", "web"],
             "moodle_ha:gluster:replica": None}
    text = _error(renderer, patch)
    assert "moodle_ha:gluster:replica: replica 1 keeps a single copy" in text


@pytest.mark.parametrize("value", [True, 0, "3"])
def test_replica_that_is_not_a_positive_integer_rejected(renderer, value):
    text = _error(renderer, {"moodle_ha:gluster:replica": value})
    assert f"moodle_ha:gluster:replica: {value!r} is not a positive integer" in text


# --------------------------------------------------------------------------- unknown keys
@pytest.mark.parametrize("key, closest", [
    ("topolgy", "topology"),
    ("lb:haproxy:writer_prot", "lb:haproxy:writer_port"),
    ("galera:clustercheck:prot", "galera:clustercheck:port"),
    ("secrets:sst_pasword", "secrets:sst_password"),
    ("topology:hosts:moodle1:role", "topology:hosts:moodle1:roles"),
    ("moodle:source:rev", "moodle:source:ref"),
])
def test_unknown_key_rejected_naming_the_closest_known_key(renderer, key, closest):
    text = _error(renderer, {f"moodle_ha:{key}": "x"})
    assert f"moodle_ha:{key}: unknown key (did you mean moodle_ha:{closest}?)" in text


def test_unknown_key_without_a_close_one_lists_the_known_keys(renderer):
    text = _error(renderer, {"moodle_ha:restore:zzz": 1})
    assert "moodle_ha:restore:zzz: unknown key (known here: backup, confirm)" in text


def test_keys_of_open_mappings_and_release_keys_are_accepted(renderer):
    out = renderer.show_sls("moodle_ha.hosts", patch={
        "moodle_ha:gluster:options:performance.write-behind": "on",
        "moodle_ha:web:php:date.timezone": "UTC",
        "moodle_ha:galera:provider_options:gcs.fc_limit": 64,
        "moodle_ha:garbd:options:socket.ssl": "no",
        "moodle_ha:tofs:source_files:moodle_ha-lb-haproxy-config-file-managed": ["x.jinja"],
        # os_family and osfinger keys are known keys
        "moodle_ha:pkgs:haproxy": ["haproxy"],
        "moodle_ha:lb:keepalived:config_test_wrapper": None,
        "moodle_ha:moodle:source:version": "5.1",
        # still accepted from older pillars, used nowhere
        "moodle_ha:secrets:db_root_password": "old-root-password",
    })
    assert "moodle_ha-hosts-vip-entry-present" in out


def test_known_keys_come_from_the_defaults_given_at_render_time():
    data = _merged_example()
    known = _defaults_tree()
    data["galera"]["new_switch"] = True
    errors = VALIDATION.post_map(data, "moodle1", None, known)["errors"]
    assert [e.split(" (")[0] for e in errors] == ["moodle_ha:galera:new_switch: unknown key"]
    known["galera"]["new_switch"] = False
    assert VALIDATION.post_map(data, "moodle1", None, known)["errors"] == []


# --------------------------------------------------------------------------- host names
def test_host_name_not_lower_case_rejected(renderer):
    patch = {f"{HOSTS}:lb2": renderer.DELETE,
             f"{HOSTS}:LB2": {"ip": "172.30.77.22", "roles": ["lb"]}}
    text = _error(renderer, patch)
    assert (f"{HOSTS}:LB2: 'LB2' is not lower case (Salt minion ids of this formula's hosts"
            " must be lower case)") in text


# --------------------------------------------------------------------------- secrets
def test_db_root_password_no_longer_required(renderer):
    assert "db_root_password" not in SECRETS
    out = renderer.show_sls("moodle_ha.hosts",
                            patch={"moodle_ha:secrets:db_root_password": renderer.DELETE})
    assert "moodle_ha-hosts-vip-entry-present" in out


@pytest.mark.parametrize("secret", SECRETS + ("backup_encryption_key",))
def test_control_character_in_a_secret_rejected_naming_it(renderer, secret):
    value = "Ab\x7f1\x01" if secret == "keepalived_auth_pass" else "A-long-secret\x7f\x01-1"
    text = _error(renderer, {f"moodle_ha:secrets:{secret}": value})
    assert (f"moodle_ha:secrets:{secret}: contains control character(s) U+007F, U+0001"
            " (not allowed in a secret)") in text


@pytest.mark.parametrize("secret", ["moodle_admin_password", "sst_password"])
def test_secret_ending_with_a_newline_rejected(renderer, secret):
    text = _error(renderer, {f"moodle_ha:secrets:{secret}": "Example-Password-1\n"})
    assert (f"moodle_ha:secrets:{secret}: ends with a newline (a YAML block scalar? use |-)"
            in text)
    assert "Example-Password-1" not in text


@pytest.mark.parametrize("value, shown", [
    ("ab cd", "' ' (U+0020)"),
    ("ab#cd", "'#' (U+0023)"),
    ("ab!cd", "'!' (U+0021)"),
    ('ab"cd', "'\"' (U+0022)"),
    ("ab'cd", "\"'\" (U+0027)"),
    ("ab\\cd", "'\\\\' (U+005C)"),
    ("abécd", "'é' (U+00E9)"),
    ("ab{cd", "'{' (U+007B)"),
    ("ab}cd", "'}' (U+007D)"),
    ("ab$cd", "'$' (U+0024)"),
])
def test_keepalived_auth_pass_character_rejected_naming_it(renderer, value, shown):
    text = _error(renderer, {"moodle_ha:secrets:keepalived_auth_pass": value})
    assert (f"moodle_ha:secrets:keepalived_auth_pass: contains {shown}, which keepalived's"
            " config parser cannot carry") in text


@pytest.mark.parametrize("value", ["ad min", "admin:x", "ad#min", "", None])
def test_stats_user_outside_the_plain_set_rejected(renderer, value):
    text = _error(renderer, {"moodle_ha:lb:haproxy:stats_user": value})
    assert (f"moodle_ha:lb:haproxy:stats_user: {value!r} is not a user name of letters,"
            " digits, '.', '_' and '-'") in text


def test_plain_stats_user_accepted(renderer):
    out = renderer.show_sls("moodle_ha.hosts",
                            patch={"moodle_ha:lb:haproxy:stats_user": "ops.admin-1"})
    assert "moodle_ha-hosts-vip-entry-present" in out


@pytest.mark.parametrize("value, kind", [(12345678, "a number"), (True, "a boolean"),
                                         (["a", "b"], "a list")])
def test_secret_that_is_not_a_string_rejected(renderer, value, kind):
    text = _error(renderer, {"moodle_ha:secrets:keepalived_auth_pass": value})
    assert (f"moodle_ha:secrets:keepalived_auth_pass: {kind} in YAML, not a string (quote it:"
            " YAML reads e.g. 0123 as 83 and yes as true)") in text
    assert "12345678" not in text

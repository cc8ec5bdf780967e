"""Invalid pillars are refused with one clear message naming the key.

The messages are checked on _modules/moodle_ha.py itself, called as map.jinja calls it:
post_map(<defaults, os_family and osfinger merged, the pillar's lookup and the rest of the
pillar over them>, <minion id>, <roles grain>, <the parameters files' merge: the known keys>).
The pillar is pillar.example patched as the render tests patch it, and the roles grain is
the minion's pillar roles unless a test gives others (as renderlib.Renderer does). map.jinja
fails the render with "moodle_ha pillar is invalid: " and the errors joined by "; ";
test/render/test_validation.py keeps a few renders that prove that path end to end.
"""

import copy

import pytest
import yaml
from maplib import DELETE, known_tree, patched
from maplib import post_map as maplib_post_map

from render.renderlib import REPO, example_pillar, merge
from saltmodules import load

VALIDATION = load("_modules/moodle_ha.py", "moodle_ha_validation_unit")
SECRETS = VALIDATION.SECRETS
HOSTS = "moodle_ha:topology:hosts"
RELEASE = "Debian-13"  # the render tests' default platform


def _defaults_tree():
    """defaults.yaml, os_family/Debian.yaml and osfinger/Debian-13.yaml merged, as map.jinja."""
    return known_tree(RELEASE)


KNOWN = _defaults_tree()


def _merged_example():
    pillar = example_pillar()["moodle_ha"]
    pillar.pop("lookup", None)
    return merge(copy.deepcopy(_defaults_tree()), pillar)


def _patched(patch):
    """pillar.example with `patch` ({"moodle_ha:a:b": value or DELETE}) applied."""
    return patched(example_pillar(), patch)


def _post_map(patch=None, minion_id="moodle1", roles=None):
    """post_map's result for the patched pillar, with the arguments map.jinja passes."""
    return maplib_post_map(VALIDATION, KNOWN, _patched(patch or {})["moodle_ha"], minion_id,
                           roles)


def _error(patch, minion_id="moodle1", roles=None):
    """The errors, joined as map.jinja joins them after "moodle_ha pillar is invalid: "."""
    errors = _post_map(patch, minion_id, roles)["errors"]
    assert errors, f"{patch} accepted although invalid"
    return "; ".join(errors)


def _accepted(patch, minion_id="moodle1", roles=None):
    result = _post_map(patch, minion_id, roles)
    assert result["errors"] == []
    return result["map"]


def test_pillar_example_is_accepted_on_every_host():
    for name in example_pillar()["moodle_ha"]["topology"]["hosts"]:
        assert _accepted({}, minion_id=name)["nodes"]["self"]["name"] == name


@pytest.mark.parametrize("secret", SECRETS)
def test_missing_secret_names_its_key(secret):
    text = _error({f"moodle_ha:secrets:{secret}": DELETE})
    assert f"moodle_ha:secrets:{secret}: missing" in text


def test_two_galera_nodes_without_arbitrator_rejected():
    text = _error({f"{HOSTS}:moodle3:roles": ["gluster", "web"]})
    assert "2 galera node(s) and 0 arbitrator(s)" in text


def test_even_galera_node_count_rejected():
    text = _error({f"{HOSTS}:moodle4": {"ip": "172.30.77.14", "roles": ["galera"]}})
    assert "4 galera node(s)" in text and "odd number" in text


def test_two_galera_nodes_with_arbitrator_accepted():
    mapdata = _accepted({f"{HOSTS}:moodle3:roles": ["gluster", "web"],
                         f"{HOSTS}:arb1": {"ip": "172.30.77.31", "roles": ["garbd"]}})
    assert [n["name"] for n in mapdata["nodes"]["roles"]["garbd"]] == ["arb1"]
    assert [n["name"] for n in mapdata["nodes"]["roles"]["galera"]] == ["moodle1", "moodle2"]


def test_brick_count_not_fitting_replica_rejected():
    text = _error({"moodle_ha:gluster:replica": 2})
    assert "moodle_ha:gluster:replica: 3 brick(s) do not fit replica 2" in text


def test_malformed_ip_rejected():
    text = _error({f"{HOSTS}:moodle2:ip": "172.30.77.300"})
    assert f"{HOSTS}:moodle2:ip: '172.30.77.300' is not a valid IPv4 address" in text


def test_duplicate_ip_rejected():
    text = _error({f"{HOSTS}:moodle2:ip": "172.30.77.11"})
    assert "172.30.77.11 is already used by host moodle1" in text


def test_vip_outside_subnet_rejected():
    text = _error({"moodle_ha:topology:vip": "10.0.0.100"})
    assert "moodle_ha:topology:vip: 10.0.0.100 is outside moodle_ha:topology:subnet" in text


def test_vip_equal_to_host_ip_rejected():
    text = _error({"moodle_ha:topology:vip": "172.30.77.21"})
    assert "moodle_ha:topology:vip: 172.30.77.21 is the IP of host lb1" in text


def test_unknown_role_rejected():
    text = _error({f"{HOSTS}:lb2:roles": ["lb", "cache"]})
    assert f"{HOSTS}:lb2:roles: unknown role 'cache'" in text


def test_keepalived_auth_pass_required_with_vrrp_version_2_only():
    assert VALIDATION.VRRP2_SECRET not in SECRETS
    _accepted({"moodle_ha:secrets:keepalived_auth_pass": DELETE})
    text = _error({"moodle_ha:secrets:keepalived_auth_pass": DELETE,
                   "moodle_ha:lb:keepalived:vrrp_version": 2,
                   "moodle_ha:lb:keepalived:advert_int": 1})
    assert ("moodle_ha:secrets:keepalived_auth_pass: missing (required with"
            " lb:keepalived:vrrp_version 2") in text
    _accepted({"moodle_ha:secrets:keepalived_auth_pass": "exmplpw8",
               "moodle_ha:lb:keepalived:vrrp_version": 2,
               "moodle_ha:lb:keepalived:advert_int": 1})


@pytest.mark.parametrize("version, advert, ok", [
    (3, 0.2, True), (3, 0.01, True), (3, 40.95, True), (3, 1, True),
    (3, 0.005, False), (3, 0.125, False), (3, 41, False), (3, 0, False), (3, "1s", False),
    (2, 1, True), (2, 255, True), (2, 0.5, False), (2, 256, False), (2, True, False),
])
def test_vrrp_advert_interval_fits_the_version(version, advert, ok):
    patch = {"moodle_ha:lb:keepalived:vrrp_version": version,
             "moodle_ha:lb:keepalived:advert_int": advert,
             "moodle_ha:secrets:keepalived_auth_pass": "exmplpw8"}
    if ok:
        _accepted(patch)
    else:
        assert f"moodle_ha:lb:keepalived:advert_int: {advert!r} is not a" in _error(patch)


def test_vrrp_version_other_than_2_or_3_rejected():
    text = _error({"moodle_ha:lb:keepalived:vrrp_version": 4})
    assert "moodle_ha:lb:keepalived:vrrp_version: 4 is not 2 or 3" in text


def test_keepalived_auth_longer_than_8_rejected():
    text = _error({"moodle_ha:secrets:keepalived_auth_pass": "nine-char"})
    assert "moodle_ha:secrets:keepalived_auth_pass: longer than 8 characters" in text


def test_grain_role_not_in_pillar_rejected():
    text = _error({}, minion_id="lb1", roles=["lb", "galera"])
    assert f"{HOSTS}:lb1:roles: grain roles ['galera']" in text


def test_malformed_subnet_rejected():
    text = _error({"moodle_ha:topology:subnet": "172.30.77.1/24"})
    assert "moodle_ha:topology:subnet" in text and "CIDR" in text


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
def test_bad_metrics_key_rejected_naming_it(patch, message):
    assert message in _error(patch)


def test_disabled_metrics_skip_the_exporter_port_checks():
    text = _error({"moodle_ha:metrics:node_exporter:port": 9200})
    assert "moodle_ha:metrics:node_exporter:port: port 9200 is also" in text
    _accepted({"moodle_ha:metrics:enabled": False, "moodle_ha:metrics:node_exporter:port": 9200})


# --------------------------------------------------------------------------- arbitrator (garbd)
TWO_DB = {f"{HOSTS}:moodle3:roles": ["gluster", "web"]}
ARB = {"ip": "172.30.77.31", "roles": ["garbd"]}


def test_arbitrator_beside_a_load_balancer_accepted():
    mapdata = _accepted({**TWO_DB, f"{HOSTS}:lb1:roles": ["lb", "garbd"]},
                        minion_id="lb1", roles=["lb", "garbd"])
    assert mapdata["nodes"]["self"]["roles"] == ["lb", "garbd"]


def test_arbitrator_on_a_galera_host_rejected():
    text = _error({f"{HOSTS}:moodle3:roles": ["galera", "gluster", "web", "garbd"]})
    assert (f"{HOSTS}:moodle3:roles: galera and garbd on one host (an arbitrator is a vote of"
            " its own") in text
    assert "odd number" not in text  # one message: the host's votes are not counted twice


@pytest.mark.parametrize("arbitrators", [1, 2])
def test_one_galera_node_with_arbitrators_rejected(arbitrators):
    patch = {f"{HOSTS}:moodle2:roles": ["gluster", "web"], **TWO_DB}
    for i in range(arbitrators):
        patch[f"{HOSTS}:arb{i + 1}"] = {"ip": f"172.30.77.3{i + 1}", "roles": ["garbd"]}
    text = _error(patch)
    assert (f"{HOSTS}: 1 galera node(s) and {arbitrators} arbitrator(s): an arbitrator holds no"
            " data and needs at least 2 galera nodes") in text


def test_arbitrators_outnumbering_galera_nodes_rejected():
    patch = {**TWO_DB, **{f"{HOSTS}:arb{i}": {"ip": f"172.30.77.3{i}", "roles": ["garbd"]}
                          for i in (1, 2, 3)}}
    text = _error(patch)
    assert (f"{HOSTS}: 2 galera node(s) and 3 arbitrator(s): arbitrators must be fewer than"
            " galera nodes") in text


def test_arbitrator_outside_the_subnet_rejected():
    text = _error({**TWO_DB, f"{HOSTS}:arb1": {"ip": "10.0.0.31", "roles": ["garbd"]}})
    assert f"{HOSTS}:arb1:ip: 10.0.0.31 is outside moodle_ha:topology:subnet" in text


@pytest.mark.parametrize("patch, message", [
    ({"moodle_ha:garbd:options": {"socket.ssl_cert": "/etc/ssl/my cert.pem"}},
     "moodle_ha:garbd:options: {'socket.ssl_cert': '/etc/ssl/my cert.pem'} is not a map of"
     " provider option names"),
    ({"moodle_ha:garbd:options": {"evs.suspect_timeout": "PT2S'; rm -rf /'"}},
     "moodle_ha:garbd:options: {'evs.suspect_timeout': \"PT2S'; rm -rf /'\"} is not a map of"
     " provider option names"),
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
def test_bad_garbd_key_rejected_naming_it(patch, message):
    assert message in _error({**TWO_DB, f"{HOSTS}:arb1": ARB, **patch})


def test_garbd_keys_are_not_checked_without_an_arbitrator():
    _accepted({"moodle_ha:garbd:log_file": "/tmp/x"})


# --------------------------------------------------------------------------- shapes (mappings)
LB1 = {"minion_id": "lb1", "roles": ["lb"]}  # accepted as far as lb1 goes but for the patch


def _error_as_lb1(patch):
    # The validation's message (map.jinja raises it), not an exception of the code reading
    # the map ('str' object has no attribute 'get', unhashable type, ...): post_map returns.
    text = _error(patch, **LB1)
    assert text.startswith("moodle_ha:")
    return text


@pytest.mark.parametrize("value, kind", [
    ("172.30.77.11", "a string"),
    (["172.30.77.11", "galera"], "a list"),
    (None, "null"),
])
def test_host_entry_that_is_not_a_mapping_names_its_key(value, kind):
    text = _error_as_lb1({f"{HOSTS}:moodle1": value})
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
def test_section_that_is_not_a_mapping_names_its_key(key, value, kind):
    text = _error_as_lb1({f"moodle_ha:{key}": value})
    assert f"moodle_ha:{key}: must be a mapping, not {kind}" in text
    if key == "secrets":
        assert value not in text  # a secret is never echoed


def test_role_that_is_not_a_string_names_its_key():
    text = _error_as_lb1({f"{HOSTS}:moodle1:roles": ["galera", {"web": True}]})
    assert f"{HOSTS}:moodle1:roles: a mapping is not a role name (known: galera," in text


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
def test_boolean_port_rejected_naming_its_key(key):
    text = _error({f"moodle_ha:{key}": True})
    assert f"moodle_ha:{key}: True is not a TCP port (an integer 1..65535" in text


@pytest.mark.parametrize("value", ["3307", 3307.0, 0, 65536, "yes"])
def test_non_integer_or_out_of_range_port_rejected(value):
    text = _error({"moodle_ha:lb:haproxy:writer_port": value})
    assert f"moodle_ha:lb:haproxy:writer_port: {value!r} is not a TCP port" in text


def test_integer_port_accepted():
    mapdata = _accepted({"moodle_ha:lb:haproxy:writer_port": 13306}, minion_id="lb1")
    assert mapdata["lb"]["haproxy"]["writer_port"] == 13306


def test_clash_with_the_galera_port_names_the_galera_key():
    text = _error({"moodle_ha:lb:haproxy:writer_port": 3306})
    assert "moodle_ha:galera:port: port 3306 is used twice" in text
    assert "moodle_ha:lb:haproxy:galera:port" not in text


# --------------------------------------------------------------------------- gluster replica
def test_replica_one_refused_without_the_switch():
    text = _error({"moodle_ha:gluster:replica": 1})
    assert ("moodle_ha:gluster:replica: replica 1 keeps a single copy of each file") in text
    assert "moodle_ha:gluster:allow_no_redundancy" in text


def test_replica_one_accepted_with_the_switch():
    mapdata = _accepted({"moodle_ha:gluster:replica": 1,
                         "moodle_ha:gluster:allow_no_redundancy": True})
    assert mapdata["nodes"]["replica"] == 1


def test_single_gluster_host_needs_the_switch():
    patch = {f"{HOSTS}:moodle2:roles": ["galera", "web"],
             f"{HOSTS}:moodle3:roles": ["galera", "web"],
             "moodle_ha:gluster:replica": None}
    text = _error(patch)
    assert "moodle_ha:gluster:replica: replica 1 keeps a single copy" in text


@pytest.mark.parametrize("value", [True, 0, "3"])
def test_replica_that_is_not_a_positive_integer_rejected(value):
    text = _error({"moodle_ha:gluster:replica": value})
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
def test_unknown_key_rejected_naming_the_closest_known_key(key, closest):
    text = _error({f"moodle_ha:{key}": "x"})
    assert f"moodle_ha:{key}: unknown key (did you mean moodle_ha:{closest}?)" in text


def test_unknown_key_without_a_close_one_lists_the_known_keys():
    text = _error({"moodle_ha:restore:zzz": 1})
    assert "moodle_ha:restore:zzz: unknown key (known here: backup, confirm)" in text


def test_keys_of_open_mappings_and_release_keys_are_accepted():
    _accepted({
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


def test_known_keys_come_from_the_defaults_given_at_render_time():
    data = _merged_example()
    known = _defaults_tree()
    data["galera"]["new_switch"] = True
    errors = VALIDATION.post_map(data, "moodle1", None, known)["errors"]
    assert [e.split(" (")[0] for e in errors] == ["moodle_ha:galera:new_switch: unknown key"]
    known["galera"]["new_switch"] = False
    assert VALIDATION.post_map(data, "moodle1", None, known)["errors"] == []


# --------------------------------------------------------------------------- host names
def test_host_name_not_lower_case_rejected():
    patch = {f"{HOSTS}:lb2": DELETE, f"{HOSTS}:LB2": {"ip": "172.30.77.22", "roles": ["lb"]}}
    text = _error(patch)
    assert (f"{HOSTS}:LB2: 'LB2' is not lower case (Salt minion ids of this formula's hosts"
            " must be lower case)") in text


# --------------------------------------------------------------------------- secrets
def test_db_root_password_no_longer_required():
    assert "db_root_password" not in SECRETS
    _accepted({"moodle_ha:secrets:db_root_password": DELETE})


@pytest.mark.parametrize("secret", SECRETS + ("backup_encryption_key", VALIDATION.VRRP2_SECRET))
def test_control_character_in_a_secret_rejected_naming_it(secret):
    value = "Ab\x7f1\x01" if secret == "keepalived_auth_pass" else "A-long-secret\x7f\x01-1"
    text = _error({f"moodle_ha:secrets:{secret}": value})
    assert (f"moodle_ha:secrets:{secret}: contains control character(s) U+007F, U+0001"
            " (not allowed in a secret)") in text


@pytest.mark.parametrize("secret", ["moodle_admin_password", "sst_password"])
def test_secret_ending_with_a_newline_rejected(secret):
    text = _error({f"moodle_ha:secrets:{secret}": "Example-Password-1\n"})
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
def test_keepalived_auth_pass_character_rejected_naming_it(value, shown):
    text = _error({"moodle_ha:secrets:keepalived_auth_pass": value})
    assert (f"moodle_ha:secrets:keepalived_auth_pass: contains {shown}, which keepalived's"
            " config parser cannot carry") in text


@pytest.mark.parametrize("value", ["ad min", "admin:x", "ad#min", "", None])
def test_stats_user_outside_the_plain_set_rejected(value):
    text = _error({"moodle_ha:lb:haproxy:stats_user": value})
    assert (f"moodle_ha:lb:haproxy:stats_user: {value!r} is not a user name of letters,"
            " digits, '.', '_' and '-'") in text


def test_plain_stats_user_accepted():
    _accepted({"moodle_ha:lb:haproxy:stats_user": "ops.admin-1"})


@pytest.mark.parametrize("value, kind", [(12345678, "a number"), (True, "a boolean"),
                                         (["a", "b"], "a list")])
def test_secret_that_is_not_a_string_rejected(value, kind):
    text = _error({"moodle_ha:secrets:keepalived_auth_pass": value})
    assert (f"moodle_ha:secrets:keepalived_auth_pass: {kind} in YAML, not a string (quote it:"
            " YAML reads e.g. 0123 as 83 and yes as true)") in text
    assert "12345678" not in text


@pytest.mark.parametrize("value", [0, -1, True, "2", None])
def test_releases_keep_below_one_or_not_a_number_rejected(value):
    assert (f"moodle_ha:moodle:releases_keep: {value!r} is not a number >= 1"
            in _error({"moodle_ha:moodle:releases_keep": value}))


# --- the redis layer -----------------------------------------------------------------------

REDIS_ON = {f"moodle_ha:topology:hosts:moodle{n}:roles": ["galera", "gluster", "web", "redis"]
            for n in (1, 2, 3)}
REDIS_ON["moodle_ha:secrets:redis_password"] = "r3dis#pass\\$x%é"
REDIS_ON["moodle_ha:moodle:cache:application_store"] = "redis"


def test_redis_on_three_hosts_with_a_password_is_accepted():
    _accepted(REDIS_ON)


def test_redis_needs_three_hosts():
    text = _error({**REDIS_ON, "moodle_ha:topology:hosts:moodle3:roles":
                   ["galera", "gluster", "web"]})
    assert f"{HOSTS}: role redis on 2 host(s) (moodle1, moodle2): Sentinel needs three" in text


def test_redis_without_its_password_names_the_secret():
    text = _error({**REDIS_ON, "moodle_ha:secrets:redis_password": DELETE})
    assert ("moodle_ha:secrets:redis_password: missing (required while a host has role redis;"
            in text)


@pytest.mark.parametrize("password", ["two words", 'a"quote', "it's", "tab\there"])
def test_redis_password_that_sentinel_cannot_rewrite_is_refused(password):
    text = _error({**REDIS_ON, "moodle_ha:secrets:redis_password": password})
    assert "moodle_ha:secrets:redis_password: contains" in text
    assert "no whitespace and no quotes" in text


def test_redis_password_is_not_needed_without_redis_hosts():
    _accepted({"moodle_ha:secrets:redis_password": DELETE})


def test_redis_application_store_needs_redis_hosts():
    text = _error({"moodle_ha:moodle:cache:application_store": "redis"})
    assert "moodle_ha:moodle:cache:application_store: redis needs hosts with role redis" in text


@pytest.mark.parametrize(("key", "value", "message"), [
    ("moodle_ha:moodle:cache:application_store", "memcached", "is not one of file, redis"),
    ("moodle_ha:moodle:cache:redis_prefix", "moodle_", "is not 1 to 5 letters"),
    ("moodle_ha:redis:maxmemory", "lots", "is not a Redis memory size"),
    ("moodle_ha:redis:maxmemory", 0, "is not a Redis memory size"),
    ("moodle_ha:redis:maxmemory_policy", "lru", "is not one of noeviction"),
    ("moodle_ha:redis:quorum", 4, "is not null (a majority) or a number of sentinels from 1 to 3"),
    ("moodle_ha:redis:down_after_ms", "3s", "is not a positive integer"),
    ("moodle_ha:redis:master_name", "moodle ha", "is not a plain name"),
    ("moodle_ha:redis:port", "6379", "is not a TCP port"),
])
def test_bad_redis_settings_name_their_key(key, value, message):
    text = _error({**REDIS_ON, key: value})
    assert f"{key}: " in text and message in text, text


def test_redis_endpoint_on_the_ssh_port_is_refused():
    text = _error({**REDIS_ON, "moodle_ha:redis:endpoint_port": 22})
    assert ("moodle_ha:firewall:ssh_port: port 22 is also moodle_ha:redis:endpoint_port"
            in text), text


# --- Moodle's sessions in Redis ------------------------------------------------------------

SESSIONS_ON = {**REDIS_ON, "moodle_ha:moodle:session:store": "redis"}


def test_redis_sessions_on_the_redis_hosts_are_accepted():
    _accepted(SESSIONS_ON)


def test_redis_sessions_need_redis_hosts():
    text = _error({"moodle_ha:moodle:session:store": "redis"})
    assert "moodle_ha:moodle:session:store: redis needs hosts with role redis" in text, text


@pytest.mark.parametrize("key, value, message", [
    ("moodle_ha:moodle:session:store", "memcached", "is not one of database, redis"),
    ("moodle_ha:moodle:session:redis_prefix", "sess ion", "is not 1 to 32 letters"),
    ("moodle_ha:moodle:session:lock_timeout", 0, "is not a positive number of seconds"),
    ("moodle_ha:redis:sessions:maxmemory", "lots", "is not a Redis memory size"),
    ("moodle_ha:redis:sessions:master_name", "moodle ha", "is not a plain name"),
    ("moodle_ha:redis:sessions:master_name", "moodle_ha", "is the cache server's"),
    ("moodle_ha:redis:sessions:port", 6379, "is also redis:port"),
    ("moodle_ha:redis:sessions:port", 26379, "is also redis:sentinel_port"),
    ("moodle_ha:redis:sessions:endpoint_port", 6379, "is also redis:endpoint_port"),
    ("moodle_ha:redis:sessions:endpoint_port", 3307, "is also lb:haproxy:writer_port"),
])
def test_bad_redis_session_settings_name_their_key(key, value, message):
    text = _error({**SESSIONS_ON, key: value})
    assert f"{key}: " in text and message in text, text


def test_redis_session_settings_are_not_judged_while_sessions_stay_in_the_database():
    _accepted({**REDIS_ON, "moodle_ha:redis:sessions:port": 6379})


@pytest.mark.parametrize("setting, limit, memory, want", [
    (None, "256M", 4096, 8), (None, "256M", 24105, 47), (None, "1G", 2048, 4),
    (None, "512M", 1_000_000, 150), (None, "-1", 4096, 8), (None, 268435456, 4096, 8),
    (None, "128K", 4096, 150), (40, "256M", 1024, 40),
])
def test_max_request_workers_follows_memory_unless_set(setting, limit, memory, want):
    assert VALIDATION.max_request_workers(setting, limit, memory) == want


@pytest.mark.parametrize("value", [0, -1, "many", 20001, True])
def test_bad_max_request_workers_names_its_key(value):
    text = _error({"moodle_ha:web:apache:max_request_workers": value})
    assert "moodle_ha:web:apache:max_request_workers: " in text, text

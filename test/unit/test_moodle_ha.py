"""Unit tests for _modules/moodle_ha.py: pillar validation and topology expansion."""

import copy

import pytest
import yaml

from render.renderlib import REPO, merge
from saltmodules import load

moodle_ha = load("_modules/moodle_ha.py", "moodle_ha_module_under_test")


@pytest.fixture
def data():
    """The merged map for pillar.example (defaults + pillar, no OS layer needed here)."""
    defaults = yaml.safe_load((REPO / "moodle_ha/parameters/defaults.yaml").read_text())["values"]
    pillar = yaml.safe_load((REPO / "pillar.example").read_text())["moodle_ha"]
    return merge(copy.deepcopy(defaults), pillar)


def test_pillar_example_is_valid(data):
    assert moodle_ha.validate(data, "moodle1", ["galera", "gluster", "web"]) == []


def test_every_problem_is_reported_with_its_key(data):
    data["secrets"]["sst_password"] = ""
    data["topology"]["hosts"]["lb2"]["ip"] = "172.30.77.21"
    errors = moodle_ha.validate(data)
    assert any(e.startswith("moodle_ha:secrets:sst_password:") for e in errors)
    assert any(e.startswith("moodle_ha:topology:hosts:lb2:ip:") for e in errors)


def test_non_dict_map_is_rejected():
    assert moodle_ha.validate(None) == ["moodle_ha: the merged map is not a dictionary"]


def test_single_role_grain_string_is_accepted(data):
    assert moodle_ha.validate(data, "lb1", "lb") == []


def test_archive_without_sha256_is_rejected_unless_salt_url(data):
    data["moodle"]["source"] = {"type": "archive", "url": "https://example.invalid/m.tgz"}
    assert any("moodle_ha:moodle:source:sha256" in e for e in moodle_ha.validate(data))
    data["moodle"]["source"]["sha256"] = "a" * 64
    assert moodle_ha.validate(data) == []


def test_git_source_needs_ref(data):
    data["moodle"]["source"] = {"type": "git", "url": "https://example.invalid/moodle.git"}
    assert any("moodle_ha:moodle:source:ref" in e for e in moodle_ha.validate(data))


def test_duplicate_ports_rejected(data):
    data["lb"]["haproxy"]["reader_port"] = 3307
    errors = moodle_ha.validate(data)
    assert any("port 3307 is used twice" in e for e in errors)


def test_topology_lists_nodes_per_role_in_name_order(data):
    topo = moodle_ha.topology(data, "moodle2")
    assert [n["name"] for n in topo["roles"]["galera"]] == ["moodle1", "moodle2", "moodle3"]
    assert [n["ip"] for n in topo["roles"]["lb"]] == ["172.30.77.21", "172.30.77.22"]
    assert topo["self"]["ip"] == "172.30.77.12"
    assert topo["self"]["fqdn"] == "moodle2.moodle-ha.internal"
    assert topo["bootstrap_node"] == "moodle1"
    assert topo["primary_node"] == "moodle1"
    assert topo["replica"] == 3


def test_topology_defaults_bootstrap_and_primary_to_first_host(data):
    data["galera"]["bootstrap_node"] = None
    data["moodle"]["primary_node"] = None
    data["topology"]["hosts"]["app0"] = {"ip": "172.30.77.10", "roles": ["galera", "web"]}
    topo = moodle_ha.topology(data)
    assert topo["bootstrap_node"] == "app0" and topo["primary_node"] == "app0"
    assert topo["self"] is None


def test_fourth_app_node_appears_in_every_role(data):
    data["topology"]["hosts"]["moodle4"] = {"ip": "172.30.77.14",
                                            "roles": ["galera", "gluster", "web"]}
    topo = moodle_ha.topology(data)
    for role in ("galera", "gluster", "web"):
        assert "moodle4" in [n["name"] for n in topo["roles"][role]]


def test_post_map_expands_the_php_version_in_packages_and_web_paths(data):
    data["web"]["php_version"] = "8.4"
    data["pkgs"] = {"web": ["apache2", "php{php_version}-cli"]}
    data["web"]["php_bin"] = "/usr/bin/php{php_version}"
    result = moodle_ha.post_map(data, "moodle1", ["web"])
    assert result["errors"] == []
    assert result["map"]["pkgs"]["web"] == ["apache2", "php8.4-cli"]
    assert result["map"]["web"]["php_bin"] == "/usr/bin/php8.4"
    assert result["map"]["nodes"]["self"]["name"] == "moodle1"


def test_post_map_never_touches_secrets(data):
    data["web"]["php_version"] = "8.4"
    data["secrets"]["moodle_db_password"] = "a{php_version}b"
    result = moodle_ha.post_map(data)
    assert result["map"]["secrets"]["moodle_db_password"] == "a{php_version}b"


def test_post_map_reports_errors_and_derives_no_topology(data):
    data["web"]["php_version"] = "8.4"
    data["secrets"]["sst_password"] = None
    result = moodle_ha.post_map(data)
    assert any(e.startswith("moodle_ha:secrets:sst_password:") for e in result["errors"])
    assert "nodes" not in result["map"]


@pytest.mark.parametrize("version", [None, "8", "php8.4"])
def test_post_map_rejects_a_missing_or_malformed_php_version(data, version):
    data["web"]["php_version"] = version
    errors = moodle_ha.post_map(data)["errors"]
    assert [e for e in errors if e.startswith("moodle_ha:web:php_version:")]


def test_post_map_accepts_an_unquoted_php_version(data):
    data["web"]["php_version"] = 8.4  # YAML reads an unquoted 8.4 as a float
    result = moodle_ha.post_map(data)
    assert result["errors"] == []


def test_exporter_port_clash_is_reported_once_naming_the_later_key(data):
    data["metrics"]["mysqld_exporter"]["port"] = data["metrics"]["node_exporter"]["port"]
    errors = [e for e in moodle_ha.validate(data) if e.startswith("moodle_ha:metrics:")]
    assert errors == ["moodle_ha:metrics:mysqld_exporter:port: port 9100 is also"
                      " moodle_ha:metrics:node_exporter:port on host moodle1"]


def test_mysqld_exporter_port_may_equal_a_listener_of_hosts_without_galera(data):
    # 8404 is HAProxy's stats port on the lb hosts only; the mysqld exporter runs on galera.
    data["metrics"]["mysqld_exporter"]["port"] = 8404
    assert moodle_ha.validate(data) == []


def test_disabled_metrics_skip_every_exporter_check(data):
    data["metrics"].update({"enabled": False, "node_exporter": {"port": "none"}})
    assert moodle_ha.validate(data) == []
    data["metrics"]["enabled"] = "no"
    assert moodle_ha.validate(data) == ["moodle_ha:metrics:enabled: 'no' is not true or false"]


# --- the galera layer's data-safety switches -----------------------------------------------

@pytest.mark.parametrize("key, value, message", [
    ("force_bootstrap_node", "moodle1", "galera:force_bootstrap_node: retired"),
    ("force_bootstrap", "moodle1", "galera:force_bootstrap: must be null or a mapping"),
    ("force_bootstrap", {"node": "lb1", "seqno": 12}, "force_bootstrap:node: 'lb1' is not"),
    ("force_bootstrap", {"node": "moodle1", "seqno": True}, "force_bootstrap:seqno: must be"),
    ("force_bootstrap", {"node": "moodle1", "seqno": "12"}, "force_bootstrap:seqno: must be"),
    ("force_bootstrap", {"node": "moodle1", "seqno": 12, "uuid": "x"}, "force_bootstrap:uuid:"),
    ("force_bootstrap", {"node": "moodle1", "seqno": 12, "when": 1}, "unknown key(s) ['when']"),
    ("discard_existing_schemas", "yes please", "discard_existing_schemas: must be true or false"),
    ("sst_user", "sst:x", "galera:sst_user: 'sst:x' is not a MariaDB user name"),
])
def test_galera_safety_switches_are_checked(data, key, value, message):
    data["galera"][key] = value
    errors = moodle_ha.validate(data)
    assert any(message in e for e in errors), errors


def test_a_one_shot_force_bootstrap_is_accepted(data):
    data["galera"]["force_bootstrap"] = {
        "node": "moodle2", "seqno": 1234, "uuid": "9420fce5-ee03-11f1-8a55-2f3c4d5e6f70"}
    data["galera"]["discard_existing_schemas"] = True
    assert moodle_ha.validate(data, "moodle1", ["galera", "gluster", "web"]) == []


@pytest.mark.parametrize("value, message", [
    ("abc\\def", "sst_password: contains '\\\\' (U+005C)"),
    (" abcdef", "sst_password: begins or ends with a space or tab"),
    ("abcdef ", "sst_password: begins or ends with a space or tab"),
])
def test_sst_password_refuses_what_the_sst_script_drops(data, value, message):
    data["secrets"]["sst_password"] = value
    errors = moodle_ha.validate(data)
    assert any(message in e for e in errors), errors


def test_sst_password_with_quotes_hash_dollar_and_inner_spaces_passes(data):
    data["secrets"]["sst_password"] = "a#b'c\"d$e ${HOME} é€"
    assert moodle_ha.validate(data) == []

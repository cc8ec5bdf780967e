"""The metrics layer renders per role and release: exporters bound to the host's own IP only,
the mysqld exporter on galera hosts over the socket without any password, HAProxy's exporter
on the stats listener, and nothing at all when metrics are disabled."""

import json

import pytest

from render.renderlib import PLATFORMS, config_section, example_pillar, state_args

PILLAR = example_pillar()["moodle_ha"]
HOSTS = PILLAR["topology"]["hosts"]
SECRETS = PILLAR["secrets"]
DISABLED = {"moodle_ha:metrics:enabled": False}

NODE_IDS = {
    "moodle_ha-metrics-node-exporter-defaults-file-managed",
    "moodle_ha-metrics-node-exporter-dropin-file-managed",
    "moodle_ha-metrics-node-exporter-systemd-reloaded",
    "moodle_ha-metrics-node-exporter-package-installed",
    "moodle_ha-metrics-node-exporter-service-running",
}
MYSQLD_IDS = {
    "moodle_ha-metrics-mysqld-exporter-dropin-file-managed",
    "moodle_ha-metrics-mysqld-exporter-systemd-reloaded",
    "moodle_ha-metrics-mysqld-exporter-package-installed",
    "moodle_ha-metrics-mysqld-exporter-defaults-file-managed",
    "moodle_ha-metrics-mysqld-exporter-service-running",
}
MY_CNF_ID = "moodle_ha-metrics-mysqld-exporter-my-cnf-file-managed"
# The mysqld exporter's connection per release: 0.17 (Debian 13) reads a client file,
# 0.14 (Debian 12) only DATA_SOURCE_NAME without a password.
CONNECTION = {"Debian-13": "my_cnf", "Debian-12": "dsn"}


def _template(renderer, tmp_path, name, minion_id, platform="Debian-13", patch=None):
    """Render moodle_ha/metrics/files/<name>.jinja as file.managed does; return its text."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    dest = tmp_path / name
    code, out = renderer.call(
        "cp.get_template", f"salt://moodle_ha/metrics/files/{name}.jinja", str(dest),
        "tpldir=moodle_ha/metrics", minion_id=minion_id, platform=platform, patch=patch,
    )
    assert code == 0 and dest.exists(), f"{name} did not render: {out}"
    return dest.read_text()


def _assert_no_secret(text):
    for name, value in SECRETS.items():
        assert str(value) not in text, f"secret {name} appears"


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
@pytest.mark.parametrize("host", sorted(HOSTS))
def test_layer_has_the_exporters_of_each_role_and_no_secret(renderer, host, platform):
    out = renderer.show_sls("moodle_ha.metrics", minion_id=host, platform=platform)
    ids = set(out) - {"__extend__"}
    expected = set(NODE_IDS)
    if "galera" in HOSTS[host]["roles"]:
        expected |= MYSQLD_IDS
        if CONNECTION[platform] == "my_cnf":
            expected.add(MY_CNF_ID)
    else:
        expected.add("moodle_ha-metrics-mysqld-exporter-not-galera")
    assert ids == expected
    _assert_no_secret(json.dumps(out))


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_node_exporter_files_come_before_its_package_and_restart_it(renderer, platform):
    out = renderer.show_sls("moodle_ha.metrics", minion_id="lb1", platform=platform)
    pkg = state_args(out["moodle_ha-metrics-node-exporter-package-installed"])
    # The package's postinst starts the exporter: its ARGS must already bind the host IP.
    assert {"file": "moodle_ha-metrics-node-exporter-defaults-file-managed"} in pkg["require"]
    assert {"cmd": "moodle_ha-metrics-node-exporter-systemd-reloaded"} in pkg["require"]
    assert pkg["install_recommends"] is False
    assert pkg["pkgs"] == ["prometheus-node-exporter"]
    defaults = state_args(out["moodle_ha-metrics-node-exporter-defaults-file-managed"])
    assert defaults["name"] == "/etc/default/prometheus-node-exporter"
    service = state_args(out["moodle_ha-metrics-node-exporter-service-running"])
    assert service["name"] == "prometheus-node-exporter" and service["enable"] is True
    assert {"file": "moodle_ha-metrics-node-exporter-defaults-file-managed"} in service["watch"]
    dropin = state_args(out["moodle_ha-metrics-node-exporter-dropin-file-managed"])
    assert dropin["name"] == (
        "/etc/systemd/system/prometheus-node-exporter.service.d/moodle_ha-metrics.conf")


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_mysqld_exporter_defaults_file_owned_as_its_postinst_sets_it(renderer, platform):
    out = renderer.show_sls("moodle_ha.metrics", minion_id="moodle2", platform=platform)
    defaults = state_args(out["moodle_ha-metrics-mysqld-exporter-defaults-file-managed"])
    assert defaults["name"] == "/etc/default/prometheus-mysqld-exporter"
    assert (defaults["user"], defaults["group"], defaults["mode"]) == (
        "prometheus", "prometheus", "0640")
    assert {"pkg": "moodle_ha-metrics-mysqld-exporter-package-installed"} in defaults["require"]
    service = state_args(out["moodle_ha-metrics-mysqld-exporter-service-running"])
    assert service["name"] == "prometheus-mysqld-exporter"
    assert {"file": "moodle_ha-metrics-mysqld-exporter-defaults-file-managed"} in service["watch"]
    assert ({"file": MY_CNF_ID} in service["watch"]) == (CONNECTION[platform] == "my_cnf")


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
@pytest.mark.parametrize("host", ["moodle2", "lb1"])
def test_node_exporter_listens_on_the_host_ip_only(renderer, tmp_path, host, platform):
    text = _template(renderer, tmp_path, "prometheus-node-exporter", host, platform)
    args = [line for line in text.splitlines() if line.startswith("ARGS=")]
    assert args == [f'ARGS="--web.listen-address={HOSTS[host]["ip"]}:9100"']
    assert "0.0.0.0" not in text and not text.startswith("\n")


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_mysqld_exporter_listens_on_the_host_ip_and_uses_the_socket(renderer, tmp_path,
                                                                    platform):
    text = _template(renderer, tmp_path, "prometheus-mysqld-exporter", "moodle2", platform)
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    listen = "--web.listen-address=172.30.77.12:9104"
    if CONNECTION[platform] == "my_cnf":
        assert lines == [f'ARGS="{listen} --config.my-cnf=/etc/moodle_ha/mysqld-exporter.cnf"']
    else:
        assert lines == [f'ARGS="{listen}"',
                         'DATA_SOURCE_NAME="prometheus@unix(/run/mysqld/mysqld.sock)/"']
    assert "0.0.0.0" not in text
    _assert_no_secret(text)


def test_mysqld_exporter_client_file_names_user_and_socket_only(renderer, tmp_path):
    text = _template(renderer, tmp_path, "mysqld-exporter.cnf", "moodle1")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines == ["[client]", "user = prometheus", "socket = /run/mysqld/mysqld.sock"]
    assert "password" not in text.lower().replace("no password", "")


def test_extra_exporter_flags_follow_the_listen_address(renderer, tmp_path):
    text = _template(renderer, tmp_path, "prometheus-node-exporter", "moodle1",
                     patch={"moodle_ha:metrics:node_exporter:args": ["--collector.systemd"]})
    assert 'ARGS="--web.listen-address=172.30.77.11:9100 --collector.systemd"' in text


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_metrics_account_is_unix_socket_on_the_bootstrap_node(renderer, platform):
    out = renderer.show_sls("moodle_ha.galera.users", minion_id="moodle1", platform=platform)
    user = state_args(out["moodle_ha-galera-users-metrics-present"])
    assert user["name"] == "prometheus" and user["host"] == "localhost"
    assert user["unix_socket"] is True and user["allow_passwordless"] is True
    assert "password" not in user and "password_hash" not in user
    grants = state_args(out["moodle_ha-galera-users-metrics-grants-present"])
    assert grants["grant"] == "PROCESS, BINLOG MONITOR, SLAVE MONITOR"
    assert grants["database"] == "*.*"
    perf = state_args(out["moodle_ha-galera-users-metrics-performance-schema-grants-present"])
    assert (perf["grant"], perf["database"]) == ("SELECT", "performance_schema.*")
    other = renderer.show_sls("moodle_ha.galera.users", minion_id="moodle2", platform=platform)
    assert not any("metrics" in sid for sid in other)


def _stats(renderer, tmp_path, patch=None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    dest = tmp_path / "haproxy.cfg"
    code, out = renderer.call(
        "cp.get_template", "salt://moodle_ha/lb/files/haproxy.cfg.jinja", str(dest),
        "tpldir=moodle_ha/lb", minion_id="lb1", patch=patch,
    )
    assert code == 0 and dest.exists(), out
    return config_section(dest.read_text(), "listen stats")


def test_haproxy_exporter_is_on_the_stats_listener_after_the_acl_before_auth(renderer,
                                                                            tmp_path):
    stats = _stats(renderer, tmp_path)
    use = "http-request use-service prometheus-exporter if { path /metrics }"
    assert "bind 172.30.77.21:8404 ssl crt /etc/haproxy/moodle_ha-site.pem alpn h2,http/1.1" in (
        stats)
    deny = stats.index("http-request deny unless moodle_ha_stats_net")
    auth = stats.index("http-request auth realm moodle_ha-stats unless"
                       " { http_auth(moodle_ha_stats) }")
    assert deny < stats.index(use) < auth


def test_haproxy_exporter_path_follows_the_map(renderer, tmp_path):
    stats = _stats(renderer, tmp_path, patch={"moodle_ha:metrics:haproxy:path": "/prom"})
    assert "http-request use-service prometheus-exporter if { path /prom }" in stats


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
@pytest.mark.parametrize("host", ["moodle1", "lb1"])
def test_disabled_metrics_render_nothing_that_changes_a_host(renderer, tmp_path, host,
                                                            platform):
    out = renderer.show_sls("moodle_ha.metrics", minion_id=host, platform=platform,
                            patch=DISABLED)
    states = {sid: state for sid, state in out.items() if not sid.startswith("__")}
    assert states
    for sid, state in states.items():
        assert [key for key in state if not key.startswith("__")] == ["test"], sid
        assert "succeed_without_changes" in state["test"], sid
    users = renderer.show_sls("moodle_ha.galera.users", minion_id="moodle1", platform=platform,
                              patch=DISABLED)
    assert not any("metrics" in sid for sid in users)
    assert not any("prometheus-exporter" in line for line in
                   _stats(renderer, tmp_path / "cfg", patch=DISABLED))

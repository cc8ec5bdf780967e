"""The garbd layer renders for an arbitrator beside HAProxy (lb1 of a "2 galera nodes + garbd"
topology: moodle3 keeps gluster and web only) and for one on a host of its own, on every
release: the configuration and drop-in before the package, the service restarted by both;
/etc/default/garb names exactly the galera hosts and the galera nodes' cluster name."""

import copy
import subprocess

import pytest

from render.renderlib import PLATFORMS, assert_yaml_lints, example_pillar, state_args

GALERA_IPS = ["172.30.77.11", "172.30.77.12"]
ARB_IP = "172.30.77.31"
IDS = {
    "moodle_ha-garbd-config-file-managed",
    "moodle_ha-garbd-dropin-file-managed",
    "moodle_ha-garbd-systemd-reloaded",
    "moodle_ha-garbd-package-installed",
    "moodle_ha-garbd-service-running",
    "moodle_ha-garbd-service-restarted",
}
DROPIN = "/etc/systemd/system/garb.service.d/moodle_ha-garbd.conf"


def _pillar(standalone=False):
    """pillar.example with two galera nodes and one arbitrator: on lb1, or on its own arb1."""
    pillar = copy.deepcopy(example_pillar())
    hosts = pillar["moodle_ha"]["topology"]["hosts"]
    hosts["moodle3"]["roles"] = ["gluster", "web"]
    if standalone:
        hosts["arb1"] = {"ip": ARB_IP, "roles": ["garbd"]}
    else:
        hosts["lb1"]["roles"] = ["lb", "garbd"]
    return pillar


# (minion, pillar, the arbitrator's IP) of each placement.
PLACEMENTS = {"beside-lb": ("lb1", _pillar(), "172.30.77.21"),
              "standalone": ("arb1", _pillar(standalone=True), ARB_IP)}


def _template(renderer, tmp_path, layer, name, minion_id, pillar, platform="Debian-13",
              patch=None):
    """Render moodle_ha/<layer>/files/<name> as file.managed does; return its text."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    dest = tmp_path / name
    code, out = renderer.call(
        "cp.get_template", f"salt://moodle_ha/{layer}/files/{name}", str(dest),
        f"tpldir=moodle_ha/{layer}", minion_id=minion_id, pillar=pillar, platform=platform,
        patch=patch,
    )
    assert code == 0 and dest.exists(), f"{name} did not render: {out}"
    return dest.read_text()


def _sourced(text, tmp_path):
    """The variables garb-systemd gets by sourcing the file (bash, as it does)."""
    path = tmp_path / "garb"
    path.write_text(text)
    names = ("GALERA_NODES", "GALERA_GROUP", "GALERA_OPTIONS", "LOG_FILE", "WORK_DIR")
    script = f". {path}; " + "; ".join(f'printf "%s\\0" "${{{n}:-}}"' for n in names)
    proc = subprocess.run(["bash", "-euc", script], capture_output=True, text=True, check=True)
    return dict(zip(names, proc.stdout.split("\0"), strict=False))


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
def test_arbitrator_gets_config_and_dropin_before_the_package(renderer, placement, platform):
    minion, pillar, _ = PLACEMENTS[placement]
    out = renderer.show_sls("moodle_ha.garbd", minion_id=minion, pillar=pillar,
                            platform=platform)
    assert set(out) - {"__extend__"} == IDS
    config = state_args(out["moodle_ha-garbd-config-file-managed"])
    assert config["name"] == "/etc/default/garb"
    assert config["check_cmd"] == "/bin/bash -n"
    assert (config["user"], config["group"], config["mode"]) == ("root", "root", "0644")
    assert state_args(out["moodle_ha-garbd-dropin-file-managed"])["name"] == DROPIN
    reload_ = state_args(out["moodle_ha-garbd-systemd-reloaded"])
    assert reload_["onchanges"] == [{"file": "moodle_ha-garbd-dropin-file-managed"}]
    # The postinst starts garb.service: its configuration and Restart= must be there first.
    pkg = state_args(out["moodle_ha-garbd-package-installed"])
    assert pkg["pkgs"] == ["galera-arbitrator-4"]
    assert {"file": "moodle_ha-garbd-config-file-managed"} in pkg["require"]
    assert {"cmd": "moodle_ha-garbd-systemd-reloaded"} in pkg["require"]
    service = state_args(out["moodle_ha-garbd-service-running"])
    assert service["name"] == "garb" and service["enable"] is True
    assert service["require"] == [{"pkg": "moodle_ha-garbd-package-installed"}]
    assert "watch" not in service
    # A changed file restarts garbd, except right after the postinst started it with them.
    restart = state_args(out["moodle_ha-garbd-service-restarted"])
    assert restart["name"] == "systemctl restart garb"
    assert {"file": "moodle_ha-garbd-config-file-managed"} in restart["onchanges"]
    assert {"file": "moodle_ha-garbd-dropin-file-managed"} in restart["onchanges"]
    unless = " ".join(restart["unless"])
    assert "ActiveEnterTimestamp" in unless and "stat -c %Y /etc/default/garb" in unless


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
def test_garb_defaults_name_the_galera_hosts_and_their_cluster(renderer, tmp_path, placement,
                                                               platform):
    minion, pillar, own_ip = PLACEMENTS[placement]
    text = _template(renderer, tmp_path, "garbd", "garb.jinja", minion, pillar, platform)
    # garb-systemd exits 0 without starting garbd while a line starts with this marker.
    assert not any(line.startswith("# REMOVE") for line in text.splitlines())
    assert not text.startswith("\n")
    env = _sourced(text, tmp_path)
    assert env["GALERA_NODES"].split(" ") == [f"{ip}:4567" for ip in GALERA_IPS]
    cnf = _template(renderer, tmp_path / "cnf", "galera", "60-galera.cnf.jinja", "moodle1",
                    pillar, platform)
    group = next(line.split(" = ", 1)[1] for line in cnf.splitlines()
                 if line.startswith("wsrep_cluster_name = "))
    assert env["GALERA_GROUP"] == group == "moodle_galera"
    options = env["GALERA_OPTIONS"].split("; ")
    assert options == [f"gmcast.listen_addr=tcp://{own_ip}:4567", "evs.suspect_timeout=PT1S",
                       "evs.inactive_timeout=PT4S", "evs.install_timeout=PT4S",
                       "evs.keepalive_period=PT0.3S"]
    # The same evs timeouts as the galera nodes' provider options, and none that garbd
    # refuses (gcache.* belongs to the data nodes).
    for option in options[1:]:
        assert option in cnf
    assert "gcache" not in text
    assert env["LOG_FILE"] == "" and env["WORK_DIR"] == ""


def test_garb_defaults_carry_extra_options_and_the_log_file(renderer, tmp_path):
    minion, pillar, _ = PLACEMENTS["beside-lb"]
    patch = {"moodle_ha:garbd:options": {"socket.ssl_cert": "/etc/ssl/galera.pem"},
             "moodle_ha:garbd:log_file": "/var/log/garbd/garbd.log"}
    env = _sourced(_template(renderer, tmp_path, "garbd", "garb.jinja", minion, pillar,
                             patch=patch), tmp_path)
    assert env["GALERA_OPTIONS"].endswith("; socket.ssl_cert=/etc/ssl/galera.pem")
    assert env["LOG_FILE"] == "/var/log/garbd/garbd.log"
    dropin = _template(renderer, tmp_path / "d", "garbd", "moodle_ha-garbd.conf.jinja", minion,
                       pillar, patch=patch)
    assert "LogsDirectory=garbd" in dropin.splitlines()


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_dropin_restarts_garbd_after_every_exit(renderer, tmp_path, platform):
    minion, pillar, _ = PLACEMENTS["standalone"]
    text = _template(renderer, tmp_path, "garbd", "moodle_ha-garbd.conf.jinja", minion, pillar,
                     platform)
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines == ["[Unit]", "Wants=network-online.target", "After=network-online.target",
                     "StartLimitIntervalSec=0", "[Service]", "Restart=always", "RestartSec=5s",
                     "StateDirectory=garbd", "WorkingDirectory=/var/lib/garbd"]


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
def test_highstate_of_the_arbitrator_host(renderer, placement, platform):
    minion, pillar, _ = PLACEMENTS[placement]
    code, out = renderer.call("state.show_highstate", minion_id=minion, pillar=pillar,
                              platform=platform)
    assert code == 0 and isinstance(out, dict), out
    layers = {state["__sls__"].split(".")[1] for sid, state in out.items()
              if not sid.startswith("__")}
    expected = {"hosts", "firewall", "chrony", "metrics", "garbd"}
    expected |= {"lb"} if placement == "beside-lb" else set()
    assert layers == expected
    # Never holds data: no database, no brick, no exporter of a database.
    assert not any("mysqld-exporter-service" in sid or "galera-" in sid for sid in out)


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_galera_nodes_list_only_the_galera_hosts(renderer, tmp_path, platform):
    """wsrep_cluster_address leaves the arbitrator out (see 60-galera.cnf.jinja: garbd dials
    the galera nodes; it can never be a starting node's donor)."""
    _, pillar, _ = PLACEMENTS["beside-lb"]
    cnf = _template(renderer, tmp_path, "galera", "60-galera.cnf.jinja", "moodle2", pillar,
                    platform)
    assert f"wsrep_cluster_address = gcomm://{','.join(GALERA_IPS)}" in cnf.splitlines()
    states = renderer.show_sls("moodle_ha.galera.cluster", minion_id="moodle2", pillar=pillar,
                               platform=platform)
    nodes = state_args(states["moodle_ha-galera-cluster-member"])["nodes"]
    assert [n["ip"] for n in nodes] == GALERA_IPS


def test_a_host_without_the_role_refuses_the_layer(renderer):
    _, pillar, _ = PLACEMENTS["beside-lb"]
    out = renderer.show_sls("moodle_ha.garbd", minion_id="lb2", pillar=pillar)
    ids = set(out) - {"__extend__"}
    assert ids == {"moodle_ha-garbd-config-not-garbd", "moodle_ha-garbd-package-not-garbd",
                   "moodle_ha-garbd-service-not-garbd"}
    for sid in ids:
        assert "fail_without_changes" in out[sid]["test"]
        assert "lb2 has no role garbd" in state_args(out[sid])["name"]


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
@pytest.mark.parametrize("sls", ["moodle_ha.garbd.config", "moodle_ha.garbd.package",
                                 "moodle_ha.garbd.service", "moodle_ha.garbd.clean"])
def test_rendered_layer_lints(renderer, tmp_path, sls, platform):
    minion, pillar, _ = PLACEMENTS["beside-lb"]
    code, text = renderer.call("slsutil.renderer", f"salt://{sls.replace('.', '/')}.sls",
                               "default_renderer=jinja", f"sls={sls}", minion_id=minion,
                               pillar=pillar, platform=platform)
    assert code == 0 and isinstance(text, str), text
    assert_yaml_lints(text, tmp_path)


def test_clean_stops_and_purges_the_arbitrator_only(renderer):
    minion, pillar, _ = PLACEMENTS["beside-lb"]
    out = renderer.show_sls("moodle_ha.garbd.clean", minion_id=minion, pillar=pillar)
    assert state_args(out["moodle_ha-garbd-clean-service-dead"])["name"] == "garb"
    purged = state_args(out["moodle_ha-garbd-clean-package-purged"])
    assert purged["pkgs"] == ["galera-arbitrator-4"]
    assert state_args(out["moodle_ha-garbd-clean-dropin-absent"])["name"] == DROPIN
    assert not any("haproxy" in sid or "keepalived" in sid for sid in out)

"""The chrony layer renders on every host and release: the local time servers (the lb hosts
by default) sync from chrony:servers and each other and serve the topology's hosts on their
own IP, or serve their own clock (orphan mode) when there is no outside server; every other
host syncs from them only and serves nobody; in a container chronyd runs with -x through a
drop-in. Validation names the chrony keys. With a chronyd on this machine (PATH, or the
CHRONYD variable naming one) its own parser reads every rendered chrony.conf back."""

import copy
import json
import os
import shutil
import subprocess

import pytest
import yaml

from render.renderlib import (
    PLATFORMS,
    REPO,
    assert_yaml_lints,
    example_pillar,
    merge,
    state_args,
)
from saltmodules import load

MODULE = load("_modules/moodle_ha.py", "moodle_ha_chrony_validation")
HOSTS = example_pillar()["moodle_ha"]["topology"]["hosts"]
IPS = {name: str(spec["ip"]) for name, spec in HOSTS.items()}
LB_IPS = [IPS["lb1"], IPS["lb2"]]
CONFIG = "/etc/chrony/chrony.conf"
DROPIN = "/etc/systemd/system/chrony.service.d/moodle_ha.conf"
# The render host's own virtualization grains would decide otherwise: every case names them.
MACHINE = {"virtual": "kvm", "virtual_subtype": ""}
NSPAWN = {"virtual": "systemd-nspawn", "virtual_subtype": ""}
IDS = {
    "moodle_ha-chrony-package-installed",
    "moodle_ha-chrony-config-file-managed",
    "moodle_ha-chrony-systemd-reloaded",
    "moodle_ha-chrony-service-running",
}
SERVERS = {"moodle_ha:chrony:servers": ["ntp1.example.org", "192.0.2.123"]}
CHRONYD = os.environ.get("CHRONYD") or shutil.which("chronyd")


def _template(renderer, tmp_path, name, minion_id, platform="Debian-13", patch=None,
              grains=None):
    """Render moodle_ha/chrony/files/<name> as file.managed does; return its text."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    dest = tmp_path / f"{minion_id}-{name}"
    code, out = renderer.call(
        "cp.get_template", f"salt://moodle_ha/chrony/files/{name}", str(dest),
        "tpldir=moodle_ha/chrony", minion_id=minion_id, platform=platform, patch=patch,
        grains=grains or MACHINE,
    )
    assert code == 0 and dest.exists(), f"{name} did not render: {out}"
    return dest.read_text()


def _parsed(path):
    """The directives chronyd's own parser reads from the file (chronyd -p)."""
    proc = subprocess.run([CHRONYD, "-p", "-f", str(path)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.splitlines()


def _conf(renderer, tmp_path, host, **kwargs):
    """The directives of the host's chrony.conf (no comments, no blank lines), checked by
    chronyd -p when there is a chronyd here."""
    text = _template(renderer, tmp_path, "chrony.conf.jinja", host, **kwargs)
    assert text.startswith("# Managed by Salt") and text.endswith("\n")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    if CHRONYD:
        # confdir is read at parse time and printed as the files it includes (none here).
        assert _parsed(tmp_path / f"{host}-chrony.conf.jinja") == [
            line for line in lines if not line.startswith("confdir ")]
    return lines


def _values(lines, directive):
    return [line.split(" ", 1)[1] for line in lines if line.split(" ", 1)[0] == directive]


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
@pytest.mark.parametrize("host", ["lb1", "moodle1"])
def test_layer_installs_then_configures_then_restarts(renderer, host, platform):
    out = renderer.show_sls("moodle_ha.chrony", minion_id=host, platform=platform,
                            grains=MACHINE)
    assert set(out) - {"__extend__"} == IDS | {"moodle_ha-chrony-dropin-file-absent"}
    assert state_args(out["moodle_ha-chrony-package-installed"])["pkgs"] == ["chrony"]
    config = state_args(out["moodle_ha-chrony-config-file-managed"])
    assert config["name"] == CONFIG
    assert config["check_cmd"] == "/usr/sbin/chronyd -p -f"
    assert (config["user"], config["group"], config["mode"]) == ("root", "root", "0644")
    assert config["source"][-1] == "salt://moodle_ha/chrony/files/chrony.conf.jinja"
    # After the package: ucf keeps the changed file through upgrades, and chronyd checks it.
    assert config["require"] == [{"pkg": "moodle_ha-chrony-package-installed"}]
    assert state_args(out["moodle_ha-chrony-dropin-file-absent"])["name"] == DROPIN
    reload_ = state_args(out["moodle_ha-chrony-systemd-reloaded"])
    assert reload_["name"] == "systemctl daemon-reload"
    assert reload_["onchanges"] == [{"file": "moodle_ha-chrony-dropin-file-absent"}]
    service = state_args(out["moodle_ha-chrony-service-running"])
    assert service["name"] == "chrony" and service["enable"] is True
    assert service["require"] == [{"pkg": "moodle_ha-chrony-package-installed"},
                                  {"cmd": "moodle_ha-chrony-systemd-reloaded"}]
    assert service["watch"] == [{"file": "moodle_ha-chrony-config-file-managed"},
                                {"file": "moodle_ha-chrony-dropin-file-absent"}]


@pytest.mark.parametrize("grains", [NSPAWN, {"virtual": "container", "virtual_subtype": "LXC"},
                                    {"virtual": "container", "virtual_subtype": "Docker"}])
def test_a_container_gets_the_dropin_and_a_reload(renderer, grains):
    out = renderer.show_sls("moodle_ha.chrony", minion_id="moodle2", grains=grains)
    assert set(out) - {"__extend__"} == IDS | {"moodle_ha-chrony-dropin-file-managed"}
    dropin = state_args(out["moodle_ha-chrony-dropin-file-managed"])
    assert dropin["name"] == DROPIN and dropin["makedirs"] is True
    assert dropin["source"][-1] == "salt://moodle_ha/chrony/files/moodle_ha.conf.jinja"
    reload_ = state_args(out["moodle_ha-chrony-systemd-reloaded"])
    assert reload_["onchanges"] == [{"file": "moodle_ha-chrony-dropin-file-managed"}]
    service = state_args(out["moodle_ha-chrony-service-running"])
    assert {"file": "moodle_ha-chrony-dropin-file-managed"} in service["watch"]


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_container_dropin_clears_the_condition_and_adds_x(renderer, tmp_path, platform):
    text = _template(renderer, tmp_path, "moodle_ha.conf.jinja", "lb1", platform,
                     grains=NSPAWN)
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    # Debian's unit (chrony 4.3 and 4.6): ExecStart=!/usr/sbin/chronyd $DAEMON_OPTS.
    assert lines == ["[Unit]", "ConditionCapability=", "[Service]", "ExecStart=",
                     "ExecStart=!/usr/sbin/chronyd $DAEMON_OPTS -x"]


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_lb_without_outside_servers_serves_its_own_clock_to_the_topology(renderer, tmp_path,
                                                                         platform):
    lines = _conf(renderer, tmp_path, "lb1", platform=platform)
    assert _values(lines, "server") == [f"{IPS['lb2']} iburst"]
    assert _values(lines, "local") == ["stratum 10 orphan"]
    assert _values(lines, "bindaddress") == [IPS["lb1"]]
    assert sorted(_values(lines, "allow")) == sorted(ip for name, ip in IPS.items()
                                                     if name != "lb1")
    assert "0.0.0.0" not in "\n".join(lines) and "port 0" not in lines
    assert _values(lines, "bindcmdaddress") == ["127.0.0.1", "::1"]
    assert "rtcsync" in lines and "makestep 1.0 3" in lines
    assert _values(lines, "driftfile") == ["/var/lib/chrony/chrony.drift"]
    assert _values(lines, "keyfile") == ["/etc/chrony/chrony.keys"]
    # Neither Debian's pool nor DHCP-provided servers: the cluster agrees on its own sources.
    assert not _values(lines, "pool") and "sourcedir /run/chrony-dhcp" not in lines
    # A directive only one of the two releases' chronyd knows would fail the other's check.
    assert not _values(lines, "leapsectz") and not _values(lines, "leapseclist")


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_app_host_syncs_from_the_lbs_only_and_serves_nobody(renderer, tmp_path, platform):
    lines = _conf(renderer, tmp_path, "moodle1", platform=platform)
    assert _values(lines, "server") == [f"{ip} iburst" for ip in LB_IPS]
    assert "port 0" in lines
    assert not _values(lines, "allow") and not _values(lines, "local")
    assert not _values(lines, "bindaddress")
    assert _values(lines, "bindcmdaddress") == ["127.0.0.1", "::1"]


def test_outside_servers_reach_the_lbs_and_end_the_local_clock(renderer, tmp_path):
    lb = _conf(renderer, tmp_path, "lb2", patch=SERVERS)
    assert _values(lb, "server") == ["ntp1.example.org iburst", "192.0.2.123 iburst",
                                     f"{IPS['lb1']} iburst"]
    assert not _values(lb, "local")
    assert len(_values(lb, "allow")) == len(IPS) - 1
    app = _conf(renderer, tmp_path, "moodle3", patch=SERVERS)
    assert _values(app, "server") == [f"{ip} iburst" for ip in LB_IPS]


def test_local_servers_from_the_pillar(renderer, tmp_path):
    patch = {"moodle_ha:chrony:local_servers": ["moodle2"]}
    serving = _conf(renderer, tmp_path, "moodle2", patch=patch)
    assert not _values(serving, "server")
    assert _values(serving, "local") == ["stratum 10 orphan"]
    assert _values(serving, "bindaddress") == [IPS["moodle2"]]
    lb = _conf(renderer, tmp_path, "lb1", patch=patch)
    assert _values(lb, "server") == [f"{IPS['moodle2']} iburst"]
    assert "port 0" in lb and not _values(lb, "allow")


def test_no_local_servers_every_host_uses_the_outside_servers(renderer, tmp_path):
    patch = {**SERVERS, "moodle_ha:chrony:local_servers": []}
    for host in ("lb1", "moodle1"):
        lines = _conf(renderer, tmp_path, host, patch=patch)
        assert _values(lines, "server") == ["ntp1.example.org iburst", "192.0.2.123 iburst"]
        assert "port 0" in lines and not _values(lines, "allow")
        assert not _values(lines, "local")


def test_container_config_leaves_the_rtc_alone(renderer, tmp_path):
    lines = _conf(renderer, tmp_path, "lb1", grains=NSPAWN)
    assert "rtcsync" not in lines
    assert _values(lines, "local") == ["stratum 10 orphan"]


@pytest.mark.parametrize("host", ["moodle1", "lb1"])
def test_disabled_chrony_renders_nothing_that_changes_a_host(renderer, host):
    out = renderer.show_sls("moodle_ha.chrony", minion_id=host,
                            patch={"moodle_ha:chrony:enabled": False})
    states = {sid: state for sid, state in out.items() if not sid.startswith("__")}
    assert set(states) == {"moodle_ha-chrony-package-disabled",
                           "moodle_ha-chrony-config-disabled",
                           "moodle_ha-chrony-service-disabled"}
    for sid, state in states.items():
        assert "succeed_without_changes" in state["test"], sid


def test_a_host_outside_the_topology_fails_the_layer(renderer):
    out = renderer.show_sls("moodle_ha.chrony", minion_id="stray1", roles=[])
    ids = set(out) - {"__extend__"}
    assert ids == {"moodle_ha-chrony-package-host-unknown",
                   "moodle_ha-chrony-config-host-unknown",
                   "moodle_ha-chrony-service-host-unknown"}
    for sid in ids:
        assert "fail_without_changes" in out[sid]["test"]


@pytest.mark.parametrize("host", ["lb1", "moodle1"])
def test_highstate_applies_chrony_on_every_host(renderer, host):
    code, out = renderer.call("state.show_highstate", minion_id=host, grains=MACHINE)
    assert code == 0 and isinstance(out, dict), out
    assert "moodle_ha-chrony-service-running" in out
    assert out["moodle_ha-chrony-service-running"]["__sls__"] == "moodle_ha.chrony.service"


@pytest.mark.parametrize("grains", [MACHINE, NSPAWN])
@pytest.mark.parametrize("sls", ["moodle_ha.chrony.package", "moodle_ha.chrony.config",
                                 "moodle_ha.chrony.service"])
def test_rendered_layer_lints(renderer, tmp_path, sls, grains):
    code, text = renderer.call("slsutil.renderer", f"salt://{sls.replace('.', '/')}.sls",
                               "default_renderer=jinja", f"sls={sls}", minion_id="lb1",
                               grains=grains)
    assert code == 0 and isinstance(text, str), text
    assert_yaml_lints(text, tmp_path)


# --- validation (_modules/moodle_ha.py _chrony_errors) ---------------------------------------

@pytest.fixture
def data():
    """The merged map for pillar.example (defaults + pillar)."""
    defaults = yaml.safe_load((REPO / "moodle_ha/parameters/defaults.yaml").read_text())["values"]
    return merge(copy.deepcopy(defaults), copy.deepcopy(example_pillar()["moodle_ha"]))


def _chrony(data):
    return [e for e in MODULE.validate(data) if e.startswith("moodle_ha:chrony:")]


def test_pillar_example_chrony_is_valid(data):
    assert MODULE.validate(data) == []
    data["chrony"].update({"servers": ["ntp1.example.org", "192.0.2.1", "2001:db8::123"],
                           "local_servers": ["lb2", "moodle1"]})
    assert MODULE.validate(data) == []


@pytest.mark.parametrize("servers", ["ntp1.example.org", ["ntp1 iburst"], [""], [123],
                                     ["-x"], None])
def test_servers_must_be_a_list_of_names_or_addresses(data, servers):
    data["chrony"]["servers"] = servers
    errors = _chrony(data)
    assert len(errors) == 1 and errors[0].startswith("moodle_ha:chrony:servers: "), errors
    assert "host names or IP addresses" in errors[0]


@pytest.mark.parametrize("local", ["lb1", ["lb3"], ["lb1", "lb1"], [None], {}])
def test_local_servers_must_be_null_or_topology_hosts(data, local):
    data["chrony"]["local_servers"] = local
    errors = _chrony(data)
    assert len(errors) == 1 and errors[0].startswith("moodle_ha:chrony:local_servers: "), errors


@pytest.mark.parametrize("enabled", ["yes", 1, None])
def test_enabled_must_be_a_boolean(data, enabled):
    data["chrony"]["enabled"] = enabled
    assert _chrony(data) == [f"moodle_ha:chrony:enabled: {enabled!r} is not true or false"]


def test_some_host_must_have_a_time_source(data):
    data["chrony"]["local_servers"] = []
    assert _chrony(data) == [
        "moodle_ha:chrony:servers: empty and no local time server (chrony:local_servers is"
        " empty, or null without an lb host): no host would have a time source"]
    data["chrony"]["servers"] = ["192.0.2.1"]
    assert _chrony(data) == []


def test_disabled_chrony_skips_its_checks(data):
    data["chrony"].update({"enabled": False, "servers": "bad", "local_servers": ["nope"]})
    assert _chrony(data) == []


def test_a_bad_chrony_pillar_fails_the_render_naming_the_key(renderer):
    code, out = renderer.call("state.show_sls", "moodle_ha.hosts",
                              patch={"moodle_ha:chrony:servers": ["ntp1 prefer"]})
    text = out if isinstance(out, str) else json.dumps(out)
    assert code != 0 and "moodle_ha pillar is invalid" in text
    assert "moodle_ha:chrony:servers:" in text
    code, out = renderer.call("state.show_sls", "moodle_ha.hosts",
                              patch={"moodle_ha:chrony:server": ["192.0.2.1"]})
    text = out if isinstance(out, str) else json.dumps(out)
    assert code != 0 and "moodle_ha:chrony:server: unknown key (did you mean" in text

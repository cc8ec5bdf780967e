"""The lb layer renders from the topology: HAProxy backends, keepalived VRRP instance."""

import json
import re
import subprocess

import pytest

from render.renderlib import config_section as _section
from render.renderlib import example_pillar

HOSTS = "moodle_ha:topology:hosts"
LB_GRAINS = {
    "lb1": {"ip4_interfaces": {"lo": ["127.0.0.1"], "host0": ["172.30.77.21"]}},
    "lb2": {"ip4_interfaces": {"lo": ["127.0.0.1"], "host0": ["172.30.77.22"]}},
    "lb3": {"ip4_interfaces": {"lo": ["127.0.0.1"], "eth1": ["172.30.77.23"]}},
}
SECRETS = example_pillar()["moodle_ha"]["secrets"]
# A fourth app node: four Galera members need an arbitrator to stay an odd number of voters.
FOURTH_APP_NODE = {
    f"{HOSTS}:moodle4": {"ip": "172.30.77.14", "roles": ["galera", "web"]},
    f"{HOSTS}:arb1": {"ip": "172.30.77.31", "roles": ["garbd"]},
}


def _template(renderer, tmp_path, name, minion_id="lb1", patch=None, **context):
    """Render moodle_ha/lb/files/<name>.jinja as file.managed does; return its text."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    dest = tmp_path / name
    args = [f"{key}={value}" for key, value in {"tpldir": "moodle_ha/lb", **context}.items()]
    code, out = renderer.call(
        "cp.get_template", f"salt://moodle_ha/lb/files/{name}.jinja", str(dest), *args,
        minion_id=minion_id, patch=patch, grains=LB_GRAINS.get(minion_id),
    )
    assert code == 0 and dest.exists(), f"{name} did not render: {out}"
    return dest.read_text()


def _servers(section):
    return [line.split()[1:] for line in section if line.startswith("server ")]


@pytest.fixture(scope="module")
def haproxy_cfg(renderer, tmp_path_factory):
    return _template(renderer, tmp_path_factory.mktemp("haproxy"), "haproxy.cfg")


def test_lb_sls_has_the_layer_states_and_no_secret_in_state_data(renderer):
    out = renderer.show_sls("moodle_ha.lb", minion_id="lb1", grains=LB_GRAINS["lb1"])
    assert {
        "moodle_ha-lb-sysctl-ip-nonlocal-bind-present",
        "moodle_ha-lb-haproxy-package-installed",
        "moodle_ha-lb-haproxy-config-file-managed",
        "moodle_ha-lb-haproxy-dropin-file-managed",
        "moodle_ha-lb-haproxy-systemd-reloaded",
        "moodle_ha-lb-haproxy-service-running",
        "moodle_ha-lb-keepalived-package-installed",
        "moodle_ha-lb-keepalived-script-user-present",
        "moodle_ha-lb-keepalived-config-file-managed",
        "moodle_ha-lb-keepalived-service-running",
    } <= set(out)
    dump = json.dumps(out)
    for name, value in SECRETS.items():
        assert str(value) not in dump, f"secret {name} leaks into the state data"


@pytest.mark.parametrize("state_id, checker, platform", [
    ("moodle_ha-lb-haproxy-config-file-managed", "/usr/sbin/haproxy -c -f", "Debian-13"),
    ("moodle_ha-lb-keepalived-config-file-managed",
     "/usr/sbin/keepalived --config-test --use-file", "Debian-13"),
    # keepalived 2.2.7 (Debian 12) needs the wrapper for its --config-test exit code.
    ("moodle_ha-lb-keepalived-config-file-managed",
     "/usr/local/sbin/moodle_ha-keepalived-config-test", "Debian-12"),
])
def test_config_files_are_checked_private_and_never_diffed(renderer, state_id, checker,
                                                           platform):
    out = renderer.show_sls("moodle_ha.lb", minion_id="lb1", grains=LB_GRAINS["lb1"],
                            platform=platform)
    args = {k: v for item in out[state_id]["file"] if isinstance(item, dict)
            for k, v in item.items()}
    assert args["mode"] == "0640"
    assert args["show_changes"] is False
    assert args["check_cmd"].startswith(checker)
    wrapper = "moodle_ha-lb-keepalived-config-test-file-managed"
    assert (wrapper in out) == (platform == "Debian-12")


def test_services_reload_on_config_change(renderer):
    out = renderer.show_sls("moodle_ha.lb", minion_id="lb1", grains=LB_GRAINS["lb1"])
    for service, conf in (("haproxy", "haproxy"), ("keepalived", "keepalived")):
        args = out[f"moodle_ha-lb-{service}-service-running"]["service"]
        flat = {k: v for item in args if isinstance(item, dict) for k, v in item.items()}
        assert flat["reload"] is True
        assert {"file": f"moodle_ha-lb-{conf}-config-file-managed"} in flat["watch"]


def test_vip_interface_is_the_one_carrying_the_host_ip(renderer):
    out = renderer.show_sls("moodle_ha.lb", minion_id="lb3", grains=LB_GRAINS["lb3"],
                            patch={f"{HOSTS}:lb3": {"ip": "172.30.77.23", "roles": ["lb"]}})
    args = out["moodle_ha-lb-keepalived-config-file-managed"]["file"]
    context = next(item["context"] for item in args if isinstance(item, dict) and "context" in item)
    assert context["interface"] == "eth1"


def test_unknown_vip_interface_fails_the_state_naming_the_key(renderer):
    grains = {"ip4_interfaces": {"lo": ["127.0.0.1"], "eth0": ["10.0.0.5"]}}
    out = renderer.show_sls("moodle_ha.lb", minion_id="lb1", grains=grains)
    state = out["moodle_ha-lb-keepalived-config-file-managed"]
    assert "test" in state and "file" not in state
    name = next(item["name"] for item in state["test"] if isinstance(item, dict) and "name" in item)
    assert "moodle_ha:lb:keepalived:interface" in name and "172.30.77.21" in name


def test_writer_sends_to_first_galera_node_others_backup(haproxy_cfg):
    writer = _section(haproxy_cfg, "listen db-writer")
    assert "bind 172.30.77.100:3307" in writer
    assert not any(line.startswith("bind") and ":3306" in line for line in writer)
    assert _servers(writer) == [
        ["moodle1", "172.30.77.11:3306", "check"],
        ["moodle2", "172.30.77.12:3306", "check", "backup"],
        ["moodle3", "172.30.77.13:3306", "check", "backup"],
    ]
    assert "option allbackups" not in writer  # one backup at a time: a single writer
    defaults = next(line for line in writer if line.startswith("default-server"))
    for option in ("port 9200", "on-marked-down shutdown-sessions",
                   "on-marked-up shutdown-backup-sessions", "rise 2", "fall 2", "inter 1s",
                   "fastinter 250ms",
                   # the first connection a dead writer fails marks it down
                   "observe layer4 error-limit 1 on-error mark-down"):
        assert option in defaults
    assert {"mode tcp", "option httpchk", "http-check expect status 200",
            "timeout client 8h", "timeout server 8h",
            # a connection to a silent node is given up quickly and retried on the next one
            "timeout connect 500ms", "option redispatch 1", "retries 2",
            # a loaded node's slow answer is not a dead node (clustercheck gives up after 3 s)
            "timeout check 4s"} <= set(writer)


def test_readers_balance_leastconn_over_every_galera_node(haproxy_cfg):
    readers = _section(haproxy_cfg, "listen db-readers")
    assert "bind 172.30.77.100:3308" in readers
    assert "balance leastconn" in readers
    assert {"timeout connect 500ms", "option redispatch 1", "retries 2"} <= set(readers)
    assert [s[0] for s in _servers(readers)] == ["moodle1", "moodle2", "moodle3"]
    assert not any("backup" in s for s in _servers(readers))
    defaults = next(line for line in readers if line.startswith("default-server"))
    assert "on-marked-down shutdown-sessions" in defaults
    # One clustercheck per node and load balancer: each reader tracks its writer twin, and
    # both pools read a drain (404) the same way.
    assert [s[1:] for s in _servers(readers)] == [
        ["172.30.77.11:3306", "track", "db-writer/moodle1"],
        ["172.30.77.12:3306", "track", "db-writer/moodle2"],
        ["172.30.77.13:3306", "track", "db-writer/moodle3"],
    ]
    assert "http-check disable-on-404" in readers
    assert "http-check disable-on-404" in _section(haproxy_cfg, "listen db-writer")


def test_web_farm_checks_with_wwwroot_host_and_retries_safely(haproxy_cfg):
    frontend = _section(haproxy_cfg, "frontend web")
    assert "bind 172.30.77.100:80" in frontend
    assert "default-server inter 2s fastinter 1s rise 2 fall 2" in _section(
        haproxy_cfg, "backend web-farm")
    # A client's own X-Forwarded-For is dropped before HAProxy adds the address it saw.
    assert frontend.index("http-request del-header X-Forwarded-For") < frontend.index(
        "option forwardfor")
    assert "mode http" in frontend
    farm = _section(haproxy_cfg, "backend web-farm")
    assert ("http-check send meth GET uri /moodle_ha_health.php ver HTTP/1.1"
            " hdr Host 172.30.77.100") in farm
    assert {"balance roundrobin", "option httpchk", "http-check expect status 200",
            "timeout check 1s", "timeout connect 500ms", "option redispatch", "retries 3",
            "retry-on all-retryable-errors", "http-request disable-l7-retry if METH_POST",
            } <= set(farm)
    # Every node twice: checked, and unchecked as a backup for when every check fails at once.
    servers = _servers(farm)
    assert [s for s in servers if "backup" not in s] == [
        [f"moodle{n}", f"172.30.77.1{n}:80", "check"] for n in (1, 2, 3)]
    assert [s for s in servers if "backup" in s] == [
        [f"moodle{n}-fallback", f"172.30.77.1{n}:80", "backup"] for n in (1, 2, 3)]
    assert "option allbackups" in farm


def test_web_check_host_follows_server_name(renderer, tmp_path):
    # (Plain HTTP: the example certificate covers the VIP, not this name.)
    cfg = _template(renderer, tmp_path, "haproxy.cfg",
                    patch={"moodle_ha:web:server_name": "moodle.example.org",
                           "moodle_ha:lb:tls:enabled": False})
    assert "hdr Host moodle.example.org" in "\n".join(_section(cfg, "backend web-farm"))


PEM = "/etc/haproxy/moodle_ha-site.pem"


def test_https_on_the_vip_redirects_http_and_tells_the_scheme(haproxy_cfg):
    frontend = _section(haproxy_cfg, "frontend web")
    for ip in ("172.30.77.100", "172.30.77.21"):
        assert f"bind {ip}:80" in frontend
        assert f"bind {ip}:443 ssl crt {PEM} alpn h2,http/1.1" in frontend
    assert {"http-request redirect scheme https code 301 unless { ssl_fc }",
            "http-request set-header X-Forwarded-Proto https if { ssl_fc }",
            "http-request set-header X-Forwarded-Proto http unless { ssl_fc }"} <= set(frontend)
    assert not any("Strict-Transport-Security" in line for line in frontend)
    glob = _section(haproxy_cfg, "global")
    assert "ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets" in glob
    # The stats page is behind the same certificate.
    assert f"bind 172.30.77.21:8404 ssl crt {PEM} alpn h2,http/1.1" in _section(
        haproxy_cfg, "listen stats")


def test_tls_switches_hsts_and_plain_http(renderer, tmp_path):
    cfg = _template(renderer, tmp_path / "hsts", "haproxy.cfg",
                    patch={"moodle_ha:lb:tls:hsts_max_age": 31536000,
                           "moodle_ha:lb:tls:redirect_http": False})
    frontend = _section(cfg, "frontend web")
    assert ('http-response set-header Strict-Transport-Security "max-age=31536000"'
            " if { ssl_fc }") in frontend
    assert not any("redirect" in line for line in frontend)
    cfg = _template(renderer, tmp_path / "plain", "haproxy.cfg",
                    patch={"moodle_ha:lb:tls:enabled": False})
    frontend = _section(cfg, "frontend web")
    assert "http-request set-header X-Forwarded-Proto http" in frontend
    assert not any("ssl" in line or ":443" in line for line in frontend)
    assert "bind 172.30.77.21:8404" in _section(cfg, "listen stats")
    assert not any(line.startswith("ssl-default") for line in _section(cfg, "global"))


def test_stats_need_auth_and_answer_only_allowed_networks_on_host_ip(renderer, tmp_path):
    cfg = _template(renderer, tmp_path, "haproxy.cfg",
                    patch={"moodle_ha:lb:haproxy:stats_allow": ["10.9.0.0/16"]})
    stats = _section(cfg, "listen stats")
    assert f"bind 172.30.77.21:8404 ssl crt {PEM} alpn h2,http/1.1" in stats
    assert "acl moodle_ha_stats_net src 172.30.77.0/24 10.9.0.0/16" in stats
    assert "http-request deny unless moodle_ha_stats_net" in stats
    # The login is checked against the userlist (a crypt hash), never a password in the file.
    assert "http-request auth realm moodle_ha-stats unless { http_auth(moodle_ha_stats) }" in stats
    assert not any(line.startswith("stats auth") for line in stats)
    users = _section(cfg, "userlist moodle_ha_stats")
    assert len(users) == 1 and users[0].startswith("user admin password $6$")
    assert SECRETS["haproxy_stats_password"] not in cfg
    assert any(line.startswith("stats refresh") for line in stats)


def test_global_section_runs_unprivileged_with_admin_socket(haproxy_cfg):
    glob = _section(haproxy_cfg, "global")
    assert {"user haproxy", "group haproxy", "chroot /var/lib/haproxy", "log /dev/log local0",
            "stats socket /run/haproxy/admin.sock mode 660 level admin"} <= set(glob)
    assert any(line.startswith("maxconn ") for line in glob)
    # Nothing binds the wildcard address.
    assert not re.search(r"bind (\*|0\.0\.0\.0|:::?)", haproxy_cfg)


def test_bad_timeout_value_reaches_the_checked_config(renderer, tmp_path):
    cfg = _template(renderer, tmp_path, "haproxy.cfg",
                    patch={"moodle_ha:lb:haproxy:timeouts:db_client": "eight hours"})
    assert "timeout client eight hours" in _section(cfg, "listen db-writer")


def test_fourth_app_node_appears_in_every_backend(renderer, tmp_path):
    cfg = _template(renderer, tmp_path, "haproxy.cfg", patch=FOURTH_APP_NODE)
    writer = _servers(_section(cfg, "listen db-writer"))
    assert ["moodle4", "172.30.77.14:3306", "check", "backup"] in writer
    assert writer[0][:2] == ["moodle1", "172.30.77.11:3306"] and "backup" not in writer[0]
    assert "moodle4" in [s[0] for s in _servers(_section(cfg, "listen db-readers"))]
    assert ["moodle4", "172.30.77.14:80", "check"] in _servers(_section(cfg, "backend web-farm"))
    assert "arb1" not in cfg  # an arbitrator serves no SQL and no web


def _keepalived(renderer, tmp_path, minion_id, patch=None):
    return _template(renderer, tmp_path, "keepalived.conf", minion_id=minion_id, patch=patch,
                     interface="host0")


def _instance_value(conf, key):
    match = re.search(rf"^\s+{key} (\S+)$", conf, re.MULTILINE)
    return match and match.group(1)


def _peers(conf):
    block = re.search(r"unicast_peer \{([^}]*)\}", conf).group(1)
    return block.split()


def test_keepalived_priority_falls_by_host_name_order(renderer, tmp_path):
    patch = {f"{HOSTS}:lb3": {"ip": "172.30.77.23", "roles": ["lb"]}}
    prios = {host: int(_instance_value(_keepalived(renderer, tmp_path / host, host, patch),
                                       "priority"))
             for host in ("lb1", "lb2", "lb3")}
    assert prios == {"lb1": 150, "lb2": 140, "lb3": 130}


def test_keepalived_unicast_to_the_other_lb_hosts(renderer, tmp_path):
    patch = {f"{HOSTS}:lb3": {"ip": "172.30.77.23", "roles": ["lb"]}}
    conf = _keepalived(renderer, tmp_path, "lb2", patch)
    assert _instance_value(conf, "unicast_src_ip") == "172.30.77.22"
    assert _peers(conf) == ["172.30.77.21", "172.30.77.23"]


def test_keepalived_vip_vrrp3_without_auth_and_no_preemption(renderer, tmp_path):
    conf = _keepalived(renderer, tmp_path, "lb1")
    assert "172.30.77.100/24 dev host0" in conf
    assert _instance_value(conf, "version") == "3"
    assert _instance_value(conf, "advert_int") == "0.2"
    # VRRP version 3 has no authentication (RFC 5798): keepalived would warn and ignore it.
    assert "authentication" not in conf and "auth_pass" not in conf
    assert _instance_value(conf, "state") == "BACKUP"
    assert re.search(r"^\s+nopreempt$", conf, re.MULTILINE)
    assert "vrrp_strict" not in conf
    assert _instance_value(conf, "virtual_router_id") == "77"
    # A weighted check would be ignored under nopreempt: the checks must put the node in FAULT.
    assert "weight -" not in conf
    assert "enable_script_security" in conf
    assert _instance_value(conf, "script_user") == "keepalived_script"
    assert re.search(r"track_script \{\s+moodle_ha_haproxy\s+\}", conf)


def test_keepalived_vrrp2_authenticates_with_the_pillar_secret(renderer, tmp_path):
    conf = _keepalived(renderer, tmp_path, "lb1", {
        "moodle_ha:lb:keepalived:vrrp_version": 2, "moodle_ha:lb:keepalived:advert_int": 1,
        "moodle_ha:secrets:keepalived_auth_pass": "ab:;%@+="})
    assert _instance_value(conf, "version") == "2"
    assert _instance_value(conf, "advert_int") == "1"
    assert "auth_type PASS" in conf
    assert re.search(r"^\s+auth_pass ab:;%@\+=$", conf, re.MULTILINE)


def test_keepalived_weighted_check_with_preemption(renderer, tmp_path):
    conf = _keepalived(renderer, tmp_path, "lb1", {
        "moodle_ha:lb:keepalived:preempt": True, "moodle_ha:lb:keepalived:track_weight": 60})
    assert "nopreempt" not in conf and "weight -60" in conf


def test_weighted_check_without_preemption_rejected(renderer):
    text = renderer.render_error("moodle_ha.lb", minion_id="lb1", grains=LB_GRAINS["lb1"],
                                 patch={"moodle_ha:lb:keepalived:track_weight": 60})
    assert "moodle_ha:lb:keepalived:track_weight: must be 0 with preempt false" in text


def test_keepalived_checks_the_haproxy_service(renderer, tmp_path):
    conf = _keepalived(renderer, tmp_path, "lb1")
    assert 'script "/usr/bin/systemctl is-active --quiet haproxy"' in conf


def test_keepalived_watches_the_file_haproxys_unit_writes(renderer, tmp_path):
    conf = _keepalived(renderer, tmp_path, "lb1")
    block = re.search(r"^track_file moodle_ha_haproxy_down \{([^}]*)\}", conf,
                      re.MULTILINE).group(1)
    assert block.split() == ["file", '"/run/moodle_ha-haproxy.down"', "weight", "0"]
    assert re.search(r"track_file \{\s+moodle_ha_haproxy_down weight 0\s+\}", conf)
    out = renderer.show_sls("moodle_ha.lb", minion_id="lb1", grains=LB_GRAINS["lb1"])
    args = {k: v for item in out["moodle_ha-lb-haproxy-dropin-file-managed"]["file"]
            if isinstance(item, dict) for k, v in item.items()}
    assert args["name"] == "/etc/systemd/system/haproxy.service.d/moodle_ha-keepalived.conf"
    lines = args["contents"].splitlines()
    assert "ExecStopPost=/bin/sh -c 'echo 1 > /run/moodle_ha-haproxy.down'" in lines
    assert "ExecStartPost=/bin/sh -c 'echo 0 > /run/moodle_ha-haproxy.down'" in lines
    # Only a stop or a start writes it: a configuration change reloads HAProxy.
    reload = out["moodle_ha-lb-haproxy-systemd-reloaded"]["cmd"]
    assert {"onchanges": [{"file": "moodle_ha-lb-haproxy-dropin-file-managed"}]} in reload


@pytest.mark.parametrize("fake_status, fake_output, expected", [
    (0, "", 0),
    (143, "", 0),  # keepalived 2.2.7 SIGTERMs itself after a clean parse
    (143, "(f: Line 23) Unknown keyword 'bogus'", 1),
    (5, "Non-existent interface specified in configuration", 5),
])
def test_keepalived_config_test_wrapper_fails_only_on_reported_problems(
        renderer, tmp_path, fake_status, fake_output, expected):
    fake = tmp_path / "keepalived"
    kill = "kill -TERM $$" if fake_status == 143 else f"exit {fake_status}"
    fake.write_text(f"#!/bin/sh\n[ -n \"{fake_output}\" ] && echo \"{fake_output}\" >&2\n{kill}\n")
    fake.chmod(0o755)
    wrapper = _template(renderer, tmp_path, "moodle_ha-keepalived-config-test", binary=str(fake))
    script = tmp_path / "check"
    script.write_text(wrapper)
    proc = subprocess.run(["sh", str(script), "/etc/keepalived/keepalived.conf"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == expected
    if fake_output:
        assert fake_output in proc.stderr

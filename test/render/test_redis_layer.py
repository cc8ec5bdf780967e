"""The redis layer renders for pillar.example with role redis on the three app nodes, on every
release: the package, the drop-ins moving Debian's units to the formula's files, the two
configuration states (the first redis host the primary of a new cluster, every sentinel
asked), the services; HAProxy's endpoint checks each server byte for byte with the pillar's
password; the firewall admits only the load balancers and the redis peers; the orchestration
applies it before the load balancers. Without role redis nothing of it renders."""

import copy
import json

import pytest

from render.renderlib import PLATFORMS, config_section, example_pillar, state_args

PASSWORD = "r3dis#pass\\é$x%{}"
REDIS_IPS = ["172.30.77.11", "172.30.77.12", "172.30.77.13"]
IDS = {
    "moodle_ha-redis-package-installed",
    "moodle_ha-redis-redis-server-dropin-file-managed",
    "moodle_ha-redis-redis-sentinel-dropin-file-managed",
    "moodle_ha-redis-systemd-reloaded",
    "moodle_ha-redis-cache-follow-script-file-managed",
    "moodle_ha-redis-cache-server-configured",
    "moodle_ha-redis-sentinel-configured",
    "moodle_ha-redis-redis-server-restarted",
    "moodle_ha-redis-redis-server-service-running",
    "moodle_ha-redis-redis-sentinel-restarted",
    "moodle_ha-redis-redis-sentinel-service-running",
    "moodle_ha-redis-cache-server-settings-kept",
    "moodle_ha-redis-sentinel-settings-kept",
}


def _pillar():
    pillar = copy.deepcopy(example_pillar())
    m = pillar["moodle_ha"]
    for name in ("moodle1", "moodle2", "moodle3"):
        m["topology"]["hosts"][name]["roles"].append("redis")
    m["secrets"]["redis_password"] = PASSWORD
    m["moodle"]["cache"]["application_store"] = "redis"
    return pillar


def _resp(*args):
    out = f"*{len(args)}\r\n".encode()
    for arg in args:
        data = arg.encode()
        out += b"$%d\r\n%s\r\n" % (len(data), data)
    return out.hex()


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("minion", ["moodle1", "moodle2"])
def test_every_redis_host_starts_from_the_first_as_primary(renderer, minion, platform):
    out = renderer.show_sls("moodle_ha.redis", minion_id=minion, pillar=_pillar(),
                            platform=platform)
    assert IDS <= set(out)
    me = REDIS_IPS[int(minion[-1]) - 1]
    server = state_args(out["moodle_ha-redis-cache-server-configured"])
    # The file before the unit starts on it; the settings once it runs.
    assert server["runtime"] is False
    assert "runtime" not in state_args(out["moodle_ha-redis-cache-server-settings-kept"])
    assert server["name"] == "/etc/redis/moodle_ha-redis.conf"
    assert server["bind"] == [me, "127.0.0.1"]
    assert server["primary"] == [REDIS_IPS[0], 6379]
    assert server["sentinels"] == [[ip, 26379] for ip in REDIS_IPS]
    assert server["password"] == PASSWORD
    assert server["settings"] == {"maxmemory": "256mb", "maxmemory-policy": "allkeys-lru",
                                  "save": "", "appendonly": "no"}
    sentinel = state_args(out["moodle_ha-redis-sentinel-configured"])
    assert sentinel["masters"] == [{
        "name": "moodle_ha", "quorum": 2, "primary": [REDIS_IPS[0], 6379],
        "settings": {"down-after-milliseconds": 3000, "failover-timeout": 10000,
                     "parallel-syncs": 1}}]
    # Without moodle:session:store redis there is no sessions server.
    assert not any("sessions" in sid for sid in out)
    # Only a changed drop-in restarts a unit: settings change at run time.
    restarted = state_args(out["moodle_ha-redis-redis-server-restarted"])
    assert "onchanges" not in restarted and "watch" not in restarted
    assert restarted["unless"] == [
        'test "$(cat /var/lib/moodle_ha/redis/redis-server.dropin-in-force 2>/dev/null)"'
        ' = "$(sha256sum /etc/systemd/system/redis-server.service.d/moodle_ha-redis.conf)"']


def test_the_password_is_in_no_state_but_the_configuration_states(renderer):
    out = renderer.show_sls("moodle_ha.redis", minion_id="moodle1", pillar=_pillar())
    configuring = {f"moodle_ha-redis-{unit}-{step}" for unit in ("cache-server", "sentinel")
                   for step in ("configured", "settings-kept")}
    assert all(state_args(out[sid])["password"] == PASSWORD for sid in configuring)
    holders = {sid for sid, state in out.items() if "r3dis" in json.dumps(state_args(state))}
    assert holders == configuring


def test_a_host_without_role_redis_renders_the_role_guard(renderer):
    out = renderer.show_sls("moodle_ha.redis", minion_id="lb1", pillar=_pillar())
    assert list(out) == ["moodle_ha-redis-role-missing"]


def test_haproxy_endpoint_routes_to_the_primary_checked_with_the_password(renderer, tmp_path):
    text = renderer.template("lb", "haproxy.cfg.jinja", tmp_path, minion_id="lb1",
                             pillar=_pillar())
    section = config_section(text, "listen redis")
    assert "bind 172.30.77.100:6379" in section and "bind 172.30.77.21:6379" in section
    assert f"tcp-check send-binary {_resp('AUTH', PASSWORD)}" in section
    assert "tcp-check expect rstring role:master[[:space:]]+connected_slaves:[1-9]" in section
    assert [line for line in section if line.startswith("server ")] == [
        f"server moodle{n} {ip}:6379 check" for n, ip in enumerate(REDIS_IPS, 1)]
    assert PASSWORD not in text


def test_haproxy_has_no_redis_endpoint_without_redis_hosts(renderer, tmp_path):
    text = renderer.template("lb", "haproxy.cfg.jinja", tmp_path, minion_id="lb1",
                             pillar=example_pillar())
    assert "listen redis" not in text


def test_orchestration_applies_redis_before_the_load_balancers(renderer):
    out = renderer.show_sls("moodle_ha.orch", minion_id="master", roles=[], pillar=_pillar())
    steps = [sid.removeprefix("moodle_ha-orch-") for sid, _ in
             sorted(out.items(), key=lambda kv: kv[1]["salt"][-1]["order"])]
    assert steps.index("redis-applied") == steps.index("lb-applied") - 1
    tgt = next(i["tgt"] for i in out["moodle_ha-orch-redis-applied"]["salt"]
               if isinstance(i, dict) and "tgt" in i)
    assert tgt == "moodle1,moodle2,moodle3"


def test_web_nodes_get_phps_redis_extension_with_the_redis_store(renderer):
    out = renderer.show_sls("moodle_ha.web", minion_id="moodle2", pillar=_pillar())
    assert "php8.4-redis" in state_args(out["moodle_ha-web-package-installed"])["pkgs"]
    plain = renderer.show_sls("moodle_ha.web", minion_id="moodle2")
    assert "php8.4-redis" not in state_args(plain["moodle_ha-web-package-installed"])["pkgs"]


def test_moodle_maps_its_application_caches_to_the_endpoint_on_the_vip(renderer):
    out = renderer.show_sls("moodle_ha.moodle.cache", minion_id="moodle2", pillar=_pillar())
    cache = state_args(out["moodle_ha-moodle-cache-configured"])
    assert cache["stores"]["moodle_ha_redis"] == {
        "plugin": "redis",
        "configuration": {"server": "172.30.77.100:6379", "prefix": "mdl_",
                          "password": PASSWORD}}
    assert cache["modes"] == {"application": ["moodle_ha_redis"]}
    assert cache["local_store"] == "moodle_ha_local"


def test_without_the_redis_store_the_application_caches_stay_on_moodles_default(renderer):
    out = renderer.show_sls("moodle_ha.moodle.cache", minion_id="moodle2")
    cache = state_args(out["moodle_ha-moodle-cache-configured"])
    assert set(cache["stores"]) == {"moodle_ha_local"}
    assert cache["modes"] == {"application": ["default_application"]}


# --- Moodle's sessions in Redis: a second, never evicting server -----------------------------

def _sessions_pillar():
    pillar = _pillar()
    pillar["moodle_ha"]["moodle"]["session"] = {"store": "redis"}
    return pillar


@pytest.mark.parametrize("platform", PLATFORMS)
def test_sessions_get_a_second_never_evicting_server_under_the_same_sentinels(renderer,
                                                                              platform):
    out = renderer.show_sls("moodle_ha.redis", minion_id="moodle2", pillar=_sessions_pillar(),
                            platform=platform)
    cache = state_args(out["moodle_ha-redis-cache-server-configured"])
    sessions = state_args(out["moodle_ha-redis-sessions-server-configured"])
    assert sessions["name"] == "/etc/redis/moodle_ha-redis-sessions.conf"
    assert (sessions["port"], sessions["master_name"]) == (6380, "moodle_ha_sessions")
    assert sessions["primary"] == [REDIS_IPS[0], 6380]
    assert sessions["settings"]["maxmemory-policy"] == "noeviction"
    assert cache["settings"]["maxmemory-policy"] == "allkeys-lru"
    # Two servers in one directory: each its own file for a replica's full sync.
    assert sessions["paths"]["dir"] == cache["paths"]["dir"]
    assert sessions["paths"]["dbfilename"] != cache["paths"]["dbfilename"]
    assert sessions["paths"]["pidfile"] == "/run/redis-sessions/redis-server.pid"
    sentinel = state_args(out["moodle_ha-redis-sentinel-configured"])
    assert [(m["name"], m["primary"]) for m in sentinel["masters"]] == [
        ("moodle_ha", [REDIS_IPS[0], 6379]), ("moodle_ha_sessions", [REDIS_IPS[0], 6380])]
    dropin = "moodle_ha-redis-redis-server@sessions-dropin-file-managed"
    assert state_args(out[dropin])["context"]["config_file"] == sessions["name"]
    follow = state_args(out["moodle_ha-redis-sessions-follow-script-file-managed"])
    assert follow["context"]["master_name"] == "moodle_ha_sessions"
    assert follow["context"]["port"] == 6380
    for step in ("restarted", "service-running"):
        assert f"moodle_ha-redis-redis-server@sessions-{step}" in out
    assert "moodle_ha-redis-sessions-server-settings-kept" in out


def test_haproxy_offers_the_sessions_endpoint_beside_the_cache(renderer, tmp_path):
    text = renderer.template("lb", "haproxy.cfg.jinja", tmp_path, minion_id="lb1",
                             pillar=_sessions_pillar())
    section = config_section(text, "listen redis-sessions")
    assert "bind 172.30.77.100:6380" in section
    assert "tcp-check expect rstring role:master[[:space:]]+connected_slaves:[1-9]" in section
    assert [line for line in section if line.startswith("server ")] == [
        f"server moodle{n} {ip}:6380 check" for n, ip in enumerate(REDIS_IPS, 1)]
    assert "bind 172.30.77.100:6379" in config_section(text, "listen redis")


def test_moodle_keeps_its_sessions_on_the_sessions_endpoint(renderer, tmp_path):
    text = renderer.template("moodle", "config.php.jinja", tmp_path, minion_id="moodle2",
                             pillar=_sessions_pillar())
    # Moodle's class name as PHP literals write it (each backslash escaped).
    assert "$CFG->session_handler_class = '\\\\core\\\\session\\\\redis';" in text
    assert "$CFG->session_redis_host = '172.30.77.100';" in text
    assert "$CFG->session_redis_port = 6380;" in text
    # The password as a PHP single-quoted literal: only \\ and ' escaped.
    assert "$CFG->session_redis_auth = 'r3dis#pass\\\\é$x%{}';" in text
    assert "$CFG->session_redis_prefix = 'mdlsess_';" in text
    assert "session_database_acquire_lock_timeout" not in text
    plain = renderer.template("moodle", "config.php.jinja", tmp_path, minion_id="moodle2",
                              pillar=_pillar())
    assert "$CFG->session_handler_class = '\\\\core\\\\session\\\\database';" in plain
    assert "session_redis" not in plain


def test_web_nodes_get_phps_redis_extension_with_redis_sessions(renderer):
    pillar = _sessions_pillar()
    pillar["moodle_ha"]["moodle"]["cache"]["application_store"] = "file"
    out = renderer.show_sls("moodle_ha.web", minion_id="moodle2", pillar=pillar)
    assert "php8.4-redis" in state_args(out["moodle_ha-web-package-installed"])["pkgs"]

"""Unit tests for _modules/moodle_ha_firewall.py: the accept rules of each host's input chain,
derived from the topology, and the validation of the firewall keys.

The map is built as map.jinja builds it: defaults.yaml, os_family/Debian.yaml and
osfinger/Debian-13.yaml merged (the known keys), the pillar's lookup and the rest of the pillar
over them, then _modules/moodle_ha.py post_map(<map>, <minion id>, <roles grain>, <known>),
which validates it and adds `nodes`. Pillars: pillar.example (five hosts: moodle1..3 galera,
gluster and web; lb1, lb2 lb) and test/lab/topologies/garbd.yaml (moodle1, moodle2 galera;
moodle3 gluster and web only; lb1 lb and garbd).
"""

import ipaddress

import pytest
from maplib import known_tree, patched
from maplib import post_map as maplib_post_map

from render.renderlib import example_pillar, lab_topology_pillar
from saltmodules import load

VALIDATION = load("_modules/moodle_ha.py", "moodle_ha_firewall_validation_unit")
FIREWALL = load("_modules/moodle_ha_firewall.py", "moodle_ha_firewall_unit")

SUBNET = "172.30.77.0/24"
VIP = "172.30.77.100"
APP = {"moodle1": "172.30.77.11", "moodle2": "172.30.77.12", "moodle3": "172.30.77.13"}
LB = {"lb1": "172.30.77.21", "lb2": "172.30.77.22"}
IPS = {**APP, **LB}


KNOWN = known_tree()


def _pillar(topology="example"):
    if topology == "garbd":
        return lab_topology_pillar("garbd")
    return example_pillar()


def _post_map(minion_id, patch=None, topology="example"):
    """post_map's result for the pillar with `patch` ({"a:b": value or DELETE} under
    moodle_ha) applied, with the arguments map.jinja passes (roles grain = pillar roles)."""
    pillar = patched(_pillar(topology)["moodle_ha"], patch)
    return maplib_post_map(VALIDATION, KNOWN, pillar, minion_id)


def _map(minion_id, patch=None, topology="example", chrony=None):
    """The valid map of `minion_id`. The chrony section is set to `chrony` (default: disabled)
    so that the per-role port lists below do not depend on the time layer's defaults."""
    result = _post_map(minion_id, patch, topology)
    assert result["errors"] == []
    mapdata = result["map"]
    mapdata["chrony"] = chrony if chrony is not None else {"enabled": False}
    return mapdata


def _rules(minion_id, patch=None, topology="example", chrony=None):
    return FIREWALL.rules(_map(minion_id, patch, topology, chrony), minion_id)


def _by_port(rules):
    """{(proto, port or port range): rule}; each port appears in one rule only."""
    out = {}
    for rule in rules:
        for port in rule["ports"] or ["-"]:
            key = (rule["proto"], port)
            assert key not in out, f"{key} in two rules"
            out[key] = rule
    return out


def _addresses(sources):
    """The addresses a list of small networks covers (a /31 of two hosts is two addresses)."""
    out = set()
    for source in sources:
        net = ipaddress.ip_network(source)
        assert net.num_addresses <= 16, f"{source} is not a host list"
        out |= {str(a) for a in net}
    return out


def _ips(*names):
    return {IPS[n] for n in names}


# -- the five-host example topology -------------------------------------------------------


@pytest.mark.parametrize("minion", sorted(APP))
def test_app_node_opens_exactly_what_its_roles_serve(minion):
    ports = _by_port(_rules(minion))
    assert set(ports) == {
        ("tcp", "22"), ("tcp", "3306"), ("tcp", "4567"), ("tcp", "4568"), ("tcp", "4444"),
        ("tcp", "9200"), ("tcp", "24007"), ("tcp", "24008"), ("tcp", "49152-60999"),
        ("tcp", "80"), ("tcp", "9100"), ("tcp", "9104"),
    }
    assert all(rule["destinations"] is None for rule in ports.values())


@pytest.mark.parametrize("minion", sorted(APP))
def test_galera_ports_admit_only_the_hosts_that_use_them(minion):
    ports = _by_port(_rules(minion))
    peers = set(APP.values()) - {APP[minion]}
    lbs = set(LB.values()) | {VIP}
    # MariaDB: HAProxy (from the lb's own address or the VIP) and the web nodes.
    assert _addresses(ports["tcp", "3306"]["sources"]) == lbs | peers
    # Group communication: the peers (and arbitrators: none here); IST/SST: the peers only.
    assert _addresses(ports["tcp", "4567"]["sources"]) == peers
    assert ports["tcp", "4568"] is ports["tcp", "4444"]
    assert _addresses(ports["tcp", "4444"]["sources"]) == peers
    # clustercheck: HAProxy's checks and the peers' bootstrap/join decisions.
    assert _addresses(ports["tcp", "9200"]["sources"]) == lbs | peers
    for key in [("tcp", p) for p in ("3306", "4567", "4568", "4444", "9200")]:
        assert SUBNET not in ports[key]["sources"]


@pytest.mark.parametrize("minion", sorted(APP))
def test_gluster_and_apache_admit_only_their_clients(minion):
    ports = _by_port(_rules(minion))
    peers = set(APP.values()) - {APP[minion]}
    for port in ("24007", "24008", "49152-60999"):
        assert _addresses(ports["tcp", port]["sources"]) == peers
    assert ports["tcp", "24007"] is ports["tcp", "24008"]
    assert _addresses(ports["tcp", "80"]["sources"]) == set(LB.values()) | {VIP}


@pytest.mark.parametrize("minion", sorted(LB))
def test_lb_opens_the_site_the_db_endpoints_stats_and_vrrp(minion):
    rules = _rules(minion)
    ports = _by_port(rules)
    assert set(ports) == {("tcp", "22"), ("tcp", "80"), ("tcp", "443"), ("tcp", "3307"),
                          ("tcp", "3308"), ("tcp", "8404"), ("vrrp", "-"), ("tcp", "9100")}
    listen = [VIP, LB[minion]]
    site = ports["tcp", "80"]
    assert site is ports["tcp", "443"]  # HTTPS (lb:tls) and the redirect from HTTP
    assert site["sources"] == ["0.0.0.0/0"] and site["destinations"] == listen
    db = ports["tcp", "3307"]
    assert db is ports["tcp", "3308"]
    assert _addresses(db["sources"]) == set(APP.values()) and db["destinations"] == listen
    assert ports["tcp", "8404"]["sources"] == [SUBNET]
    other = set(LB.values()) - {LB[minion]}
    vrrp = ports["vrrp", "-"]
    assert vrrp["sources"] == sorted(other) and vrrp["ports"] == []
    lines = FIREWALL.rule_lines(_map(minion), minion)
    assert (f"ip saddr 0.0.0.0/0 ip daddr {{ {VIP}, {LB[minion]} }} tcp dport {{ 80, 443 }}"
            ' accept comment "the site on the VIP"') in lines
    plain = _by_port(_rules(minion, {"lb:tls:enabled": False}))
    assert ("tcp", "80") in plain and ("tcp", "443") not in plain
    assert f'ip saddr {other.pop()} ip protocol vrrp accept comment' \
           ' "vrrp from the other load balancers"' in lines


def test_db_allow_adds_networks_to_the_db_endpoints_only():
    ports = _by_port(_rules("lb1", {"firewall:db_allow": ["192.0.2.0/24"]}))
    sources = ports["tcp", "3307"]["sources"]
    assert sources[-1] == "192.0.2.0/24"
    assert _addresses(sources[:-1]) == set(APP.values())
    app = _by_port(_rules("moodle1", {"firewall:db_allow": ["192.0.2.0/24"]}))
    assert not any("192.0.2.0/24" in rule["sources"] for rule in app.values())


def test_web_allow_restricts_the_site():
    ports = _by_port(_rules("lb2", {"firewall:web_allow": ["198.51.100.0/24", "203.0.113.7"]}))
    assert ports["tcp", "80"]["sources"] == ["198.51.100.0/24", "203.0.113.7"]
    assert ports["tcp", "80"]["destinations"] == [VIP, LB["lb2"]]
    empty = _by_port(_rules("lb2", {"firewall:web_allow": []}))
    assert ("tcp", "80") not in empty


def test_stats_allow_inside_the_subnet_is_collapsed_into_it():
    patch = {"lb:haproxy:stats_allow": ["172.30.77.50", "10.0.0.0/8", "172.30.77.0/25"]}
    ports = _by_port(_rules("lb1", patch))
    assert ports["tcp", "8404"]["sources"] == ["10.0.0.0/8", SUBNET]
    line = next(x for x in FIREWALL.rule_lines(_map("lb1", patch), "lb1") if "8404" in x)
    assert line == f'ip saddr {{ 10.0.0.0/8, {SUBNET} }} tcp dport 8404 accept' \
                   ' comment "haproxy stats"'


def test_overlapping_allow_networks_are_collapsed():
    patch = {"firewall:ssh_allow": ["172.30.77.0/25", SUBNET, "172.30.77.21"],
             "firewall:metrics_allow": ["10.1.0.0/16", "10.1.2.3/32", "10.0.0.0/16"]}
    ports = _by_port(_rules("moodle2", patch))
    assert ports["tcp", "22"]["sources"] == [SUBNET]
    # 10.0.0.0/16 and 10.1.0.0/16 are adjacent: one /15.
    assert ports["tcp", "9100"]["sources"] == ["10.0.0.0/15"]
    assert ports["tcp", "9104"]["sources"] == ["10.0.0.0/15"]
    lines = FIREWALL.rule_lines(_map("moodle2", patch), "moodle2")
    assert f'ip saddr {SUBNET} tcp dport 22 accept comment "ssh"' in lines


@pytest.mark.parametrize("minion", sorted(IPS))
def test_ssh_defaults_to_the_subnet_and_closes_with_an_empty_list(minion):
    assert _by_port(_rules(minion))["tcp", "22"]["sources"] == [SUBNET]
    assert ("tcp", "22") not in _by_port(_rules(minion, {"firewall:ssh_allow": []}))
    moved = _by_port(_rules(minion, {"firewall:ssh_port": 2222,
                                     "firewall:ssh_allow": ["192.0.2.10"]}))
    assert moved["tcp", "2222"]["sources"] == ["192.0.2.10"] and ("tcp", "22") not in moved


def test_metrics_allow_defaults_to_the_subnet_and_metrics_off_opens_nothing():
    app = _by_port(_rules("moodle1", {"firewall:metrics_allow": ["192.0.2.5"]}))
    assert app["tcp", "9100"]["sources"] == ["192.0.2.5"]
    assert app["tcp", "9104"]["sources"] == ["192.0.2.5"]
    for minion in ("moodle1", "lb1"):
        rules = _rules(minion, {"metrics:enabled": False})
        assert not [r for r in rules if "exporter" in r["comment"]]
        ports = _by_port(rules)
        assert ("tcp", "9100") not in ports and ("tcp", "9104") not in ports
    # The mysqld exporter only where MariaDB runs.
    assert ("tcp", "9104") not in _by_port(_rules("lb1"))
    closed = _by_port(_rules("moodle1", {"firewall:metrics_allow": []}))
    assert ("tcp", "9100") not in closed and ("tcp", "9104") not in closed


def test_ipv6_networks_get_their_own_ip6_statement():
    patch = {"firewall:ssh_allow": [SUBNET, "2001:db8::/64"],
             "firewall:metrics_allow": ["2001:db8:1::5", "2001:db8:1::/48"]}
    lines = FIREWALL.rule_lines(_map("moodle1", patch), "moodle1")
    assert f'ip saddr {SUBNET} tcp dport 22 accept comment "ssh"' in lines
    assert 'ip6 saddr 2001:db8::/64 tcp dport 22 accept comment "ssh"' in lines
    # 2001:db8:1::5 lies in 2001:db8:1::/48: one element, no IPv4 statement at all.
    assert 'ip6 saddr 2001:db8:1::/48 tcp dport 9100 accept comment "node exporter"' in lines
    assert not [x for x in lines if x.startswith("ip saddr") and "dport 9100" in x]
    # The site and the DB endpoints listen on IPv4 addresses (VIP, host IP): validation
    # refuses an IPv6 source there (it would admit nothing).


@pytest.mark.parametrize("topology", ["example", "garbd"])
def test_no_host_admits_itself_and_every_statement_is_well_formed(topology):
    hosts = _pillar(topology)["moodle_ha"]["topology"]["hosts"]
    for minion, host in hosts.items():
        own = ipaddress.ip_address(host["ip"])
        rules = _rules(minion, topology=topology)
        assert rules
        for rule in rules:
            for source in rule["sources"]:
                net = ipaddress.ip_network(source)
                # Networks of the allow lists (the subnet) hold every host; the host lists
                # derived from the topology never hold this one.
                if net.prefixlen > ipaddress.ip_network(SUBNET).prefixlen:
                    assert own not in net, f"{minion} admits itself: {rule}"
        for line in FIREWALL.rule_lines(_map(minion, topology=topology), minion):
            assert line.startswith(("ip saddr ", "ip6 saddr ")) and " accept comment " in line
            assert "{  }" not in line and "{ }" not in line


# -- the arbitrator topology (garbd.yaml) -------------------------------------------------


def test_garbd_beside_haproxy_admits_the_galera_nodes_on_the_replication_port():
    ports = _by_port(_rules("lb1", topology="garbd"))
    assert set(ports) == {("tcp", "22"), ("tcp", "80"), ("tcp", "443"), ("tcp", "3307"),
                          ("tcp", "3308"), ("tcp", "8404"), ("vrrp", "-"), ("tcp", "9100"),
                          ("tcp", "4567")}
    assert _addresses(ports["tcp", "4567"]["sources"]) == _ips("moodle1", "moodle2")
    assert ports["tcp", "4567"]["destinations"] is None
    assert ports["vrrp", "-"]["sources"] == [LB["lb2"]]
    # The DB endpoints serve every web node, moodle3 (no galera) included.
    assert _addresses(ports["tcp", "3307"]["sources"]) == set(APP.values())


def test_galera_nodes_of_the_garbd_topology_admit_the_arbitrator_on_4567_only():
    ports = _by_port(_rules("moodle1", topology="garbd"))
    lbs = set(LB.values()) | {VIP}
    assert _addresses(ports["tcp", "4567"]["sources"]) == _ips("moodle2", "lb1")
    assert _addresses(ports["tcp", "4444"]["sources"]) == _ips("moodle2")
    assert _addresses(ports["tcp", "4568"]["sources"]) == _ips("moodle2")
    assert _addresses(ports["tcp", "9200"]["sources"]) == lbs | _ips("moodle2")
    # MariaDB from the lbs and every web node (moodle3 has no galera but serves Moodle).
    assert _addresses(ports["tcp", "3306"]["sources"]) == lbs | _ips("moodle2", "moodle3")
    gluster = _addresses(ports["tcp", "49152-60999"]["sources"])
    assert gluster == _ips("moodle2", "moodle3")


def test_web_and_gluster_node_without_galera_opens_no_database_port():
    ports = _by_port(_rules("moodle3", topology="garbd"))
    assert set(ports) == {("tcp", "22"), ("tcp", "24007"), ("tcp", "24008"),
                          ("tcp", "49152-60999"), ("tcp", "80"), ("tcp", "9100")}
    assert _addresses(ports["tcp", "24007"]["sources"]) == _ips("moodle1", "moodle2")


def test_lb_without_garbd_admits_no_replication():
    assert ("tcp", "4567") not in _by_port(_rules("lb2", topology="garbd"))


def test_standalone_arbitrator_host():
    patch = {"topology:hosts:arb1": {"ip": "172.30.77.31", "roles": ["garbd"]},
             "topology:hosts:lb1:roles": ["lb"]}
    ports = _by_port(_rules("arb1", patch, topology="garbd"))
    assert set(ports) == {("tcp", "22"), ("tcp", "4567"), ("tcp", "9100")}
    assert _addresses(ports["tcp", "4567"]["sources"]) == _ips("moodle1", "moodle2")
    galera = _by_port(_rules("moodle2", patch, topology="garbd"))
    assert _addresses(galera["tcp", "4567"]["sources"]) == _ips("moodle1") | {"172.30.77.31"}


# -- chrony: NTP on the cluster's time servers --------------------------------------------


def test_ntp_is_open_on_the_local_time_servers_only():
    chrony = {"enabled": True, "local_servers": None}  # null: the lb hosts
    everyone = set(IPS.values())
    for minion in sorted(IPS):
        ports = _by_port(_rules(minion, chrony=chrony))
        if minion in LB:
            assert _addresses(ports["udp", "123"]["sources"]) == everyone - {IPS[minion]}
        else:
            assert ("udp", "123") not in ports
    named = {"enabled": True, "local_servers": ["moodle2"]}
    assert ("udp", "123") in _by_port(_rules("moodle2", chrony=named))
    assert ("udp", "123") not in _by_port(_rules("lb1", chrony=named))
    lines = FIREWALL.rule_lines(_map("moodle2", chrony=named), "moodle2")
    assert [x for x in lines if "udp" in x] == [
        "ip saddr { 172.30.77.11, 172.30.77.13, 172.30.77.21, 172.30.77.22 } udp dport 123"
        ' accept comment "ntp from the cluster hosts"']
    off = {"enabled": False, "local_servers": ["moodle2"]}
    assert ("udp", "123") not in _by_port(_rules("moodle2", chrony=off))
    assert ("udp", "123") not in _by_port(_rules("lb1", chrony={"enabled": True,
                                                                "local_servers": []}))


# -- validation (_firewall_errors, through post_map as map.jinja calls it) ----------------


def _errors(patch, minion_id="moodle1"):
    errors = _post_map(minion_id, patch)["errors"]
    assert errors, f"{patch} accepted although invalid"
    return "; ".join(errors)


def test_the_example_pillar_is_valid_on_every_host_of_both_topologies():
    for topology in ("example", "garbd"):
        for minion in _pillar(topology)["moodle_ha"]["topology"]["hosts"]:
            assert _post_map(minion, topology=topology)["errors"] == []


@pytest.mark.parametrize("patch, message", [
    ({"firewall:enabled": "yes"}, "moodle_ha:firewall:enabled: 'yes' is not true or false"),
    ({"firewall:enabled": None}, "moodle_ha:firewall:enabled: None is not true or false"),
    ({"firewall:ssh_allow": "172.30.77.0/24"},
     "moodle_ha:firewall:ssh_allow: '172.30.77.0/24' is not a list of networks (or null)"),
    ({"firewall:ssh_allow": ["172.30.77.0/33"]},
     "moodle_ha:firewall:ssh_allow: '172.30.77.0/33' is not an IP address or network"
     " such as 192.0.2.0/24"),
    ({"firewall:metrics_allow": ["prometheus.example"]},
     "moodle_ha:firewall:metrics_allow: 'prometheus.example' is not an IP address or network"),
    ({"firewall:metrics_allow": {"net": "10.0.0.0/8"}},
     "moodle_ha:firewall:metrics_allow: {'net': '10.0.0.0/8'} is not a list of networks"
     " (or null)"),
    ({"firewall:web_allow": None},
     "moodle_ha:firewall:web_allow: None is not a list of networks"),
    ({"firewall:web_allow": "0.0.0.0/0"},
     "moodle_ha:firewall:web_allow: '0.0.0.0/0' is not a list of networks"),
    ({"firewall:db_allow": ["192.0.2.0/24", "admin-laptop"]},
     "moodle_ha:firewall:db_allow: 'admin-laptop' is not an IP address or network"),
    ({"firewall:db_allow": None}, "moodle_ha:firewall:db_allow: None is not a list of networks"),
    ({"firewall:gluster_brick_ports": {"first": 60999, "last": 49152}},
     "moodle_ha:firewall:gluster_brick_ports: first 60999 and last 49152 must be ports with"
     " first <= last (glusterd.vol base-port and max-port)"),
    ({"firewall:gluster_brick_ports": {"first": "49152", "last": 60999}},
     "moodle_ha:firewall:gluster_brick_ports: first '49152' and last 60999 must be ports"),
    ({"firewall:gluster_brick_ports": {"first": 49152, "last": 70000}},
     "moodle_ha:firewall:gluster_brick_ports: first 49152 and last 70000 must be ports"),
    ({"firewall:extra_rules": "tcp dport 5666 accept"},
     "moodle_ha:firewall:extra_rules: 'tcp dport 5666 accept' is not a list of one-line nft"
     " rule statements"),
    ({"firewall:extra_rules": ["tcp dport 5666 accept", "  "]},
     "moodle_ha:firewall:extra_rules: "),
    ({"firewall:extra_rules": ["tcp dport 5666 accept\ntcp dport 1 accept"]},
     "moodle_ha:firewall:extra_rules: "),
    ({"firewall:extra_rules": [5666]}, "moodle_ha:firewall:extra_rules: [5666] is not a list"),
    ({"firewall:ssh_port": 0}, "moodle_ha:firewall:ssh_port: 0 is not a TCP port"),
    ({"firewall:ssh_port": 3306},
     "moodle_ha:firewall:ssh_port: port 3306 is also moodle_ha:galera:port (the firewall"
     " would open it to firewall:ssh_allow)"),
    ({"firewall:ssh_port": 9100},
     "moodle_ha:firewall:ssh_port: port 9100 is also moodle_ha:metrics:node_exporter:port"),
    ({"firewall:web_allow": ["0.0.0.0/0", "::/0"]},
     "moodle_ha:firewall:web_allow: ['0.0.0.0/0', '::/0'] has an IPv6 network, but the VIP"
     " and the lb hosts' addresses are IPv4: it would admit nothing"),
    ({"firewall:db_allow": ["2001:db8::1"]},
     "moodle_ha:firewall:db_allow: ['2001:db8::1'] has an IPv6 network"),
    ({"gluster:auth_allow": []},
     "moodle_ha:gluster:auth_allow: [] is not null or a non-empty list of client addresses"
     " (IP addresses, * wildcards allowed)"),
    ({"gluster:auth_allow": "172.30.77.*"},
     "moodle_ha:gluster:auth_allow: '172.30.77.*' is not null or a non-empty list"),
    ({"gluster:auth_allow": ["172.30.77.11,172.30.77.12"]},
     "moodle_ha:gluster:auth_allow: ['172.30.77.11,172.30.77.12'] is not null"),
    ({"gluster:auth_allow": ["172.30.77.11 172.30.77.12"]},
     "moodle_ha:gluster:auth_allow: "),
    ({"galera:bind_address": "db.example"},
     "moodle_ha:galera:bind_address: 'db.example' is not null or an IP address"),
    ({"galera:bind_address": "172.30.77.0/24"},
     "moodle_ha:galera:bind_address: '172.30.77.0/24' is not null or an IP address"),
])
def test_bad_firewall_keys_are_refused_naming_the_key(patch, message):
    assert message in _errors(patch)


@pytest.mark.parametrize("patch", [
    {"firewall:enabled": False},
    {"firewall:ssh_allow": []},
    {"firewall:ssh_allow": ["192.0.2.10", "2001:db8::/64"]},
    {"firewall:metrics_allow": ["172.30.77.5/24"]},  # host bits set: its network
    {"firewall:web_allow": []},
    {"firewall:db_allow": ["172.30.77.1/32"]},
    {"firewall:gluster_brick_ports": {"first": 49152, "last": 49152}},
    {"firewall:extra_rules": ["ip saddr 192.0.2.10 tcp dport 5666 accept"]},
    {"gluster:auth_allow": ["172.30.77.*", "10.0.0.5"]},
    {"galera:bind_address": "0.0.0.0"},
    {"galera:bind_address": "172.30.77.11"},
])
def test_good_firewall_keys_are_accepted(patch):
    assert _post_map("moodle1", patch)["errors"] == []


def test_an_unknown_firewall_key_names_the_closest_known_one():
    text = _errors({"firewall:ssh_allowed": []})
    assert "moodle_ha:firewall:ssh_allowed" in text and "ssh_allow" in text


# -- role redis on the three app nodes -----------------------------------------------------

REDIS = {f"topology:hosts:{name}:roles": ["galera", "gluster", "web", "redis"] for name in APP}
REDIS["secrets:redis_password"] = "example-redis-password"


@pytest.mark.parametrize("minion", sorted(APP))
def test_redis_host_admits_the_load_balancers_and_its_peers_only(minion):
    ports = _by_port(_rules(minion, REDIS))
    peers = set(APP.values()) - {APP[minion]}
    server = ports["tcp", "6379"]
    assert _addresses(server["sources"]) == peers | set(LB.values()) | {VIP}
    assert _addresses(ports["tcp", "26379"]["sources"]) == peers
    plain = _by_port(_rules(minion))
    assert ("tcp", "6379") not in plain and ("tcp", "26379") not in plain


@pytest.mark.parametrize("minion", sorted(LB))
def test_lb_offers_the_redis_endpoint_to_the_web_nodes_on_the_vip_and_its_own_ip(minion):
    ports = _by_port(_rules(minion, REDIS))
    endpoint = ports["tcp", "6379"]
    assert _addresses(endpoint["sources"]) == set(APP.values())
    assert endpoint["destinations"] == [VIP, LB[minion]]
    assert ("tcp", "26379") not in ports


REDIS_SESSIONS = {**REDIS, "moodle:session:store": "redis"}


@pytest.mark.parametrize("minion", sorted(APP) + sorted(LB))
def test_redis_sessions_server_and_endpoint_are_admitted_like_the_caches(minion):
    # The sessions server (6380) beside the cache's, from the same sources; its endpoint on
    # the load balancers beside the cache's, from the web nodes.
    ports = _by_port(_rules(minion, REDIS_SESSIONS))
    cache = _by_port(_rules(minion, REDIS))
    assert ("tcp", "6380") not in cache
    sources = [_addresses(rule["sources"]) for rule in (ports["tcp", "6379"],
                                                         ports["tcp", "6380"])]
    assert sources[0] == sources[1] == _addresses(cache["tcp", "6379"]["sources"])

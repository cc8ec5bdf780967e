"""The firewall layer renders for every host: the package, the nftables table checked with
`nft -c -f` before it replaces the one in place, the unit, and the service reloaded when the
table changes; with firewall:enabled false only the service stopped and disabled. The table of
each role on each release carries exactly the module's rules (_modules/moodle_ha_firewall.py,
unit-tested in test/unit/test_moodle_ha_firewall.py) and, where `nft` and root are at hand,
passes `nft -c -f`. MariaDB and clustercheck listen on the host's topology IP, and the
dataroot volume admits only the gluster and web hosts.

Each render costs about 1.5 s: every render is done once per test session, shared by the
tests and the xdist workers that need it (a file per render under the session's base temp).
"""

import copy
import fcntl
import hashlib
import ipaddress
import json
import os
import shutil
import subprocess

import pytest
import yaml

from render.renderlib import PLATFORMS, REPO, example_pillar, lab_topology_pillar, merge, state_args
from saltmodules import load

FIREWALL = load("_modules/moodle_ha_firewall.py", "moodle_ha_firewall_render_test")
VALIDATION = load("_modules/moodle_ha.py", "moodle_ha_firewall_render_validation")

IPS = {"moodle1": "172.30.77.11", "moodle2": "172.30.77.12", "moodle3": "172.30.77.13",
       "lb1": "172.30.77.21", "lb2": "172.30.77.22"}
VIP = "172.30.77.100"
IDS = {
    "moodle_ha-firewall-package-installed",
    "moodle_ha-firewall-ruleset-file-managed",
    "moodle_ha-firewall-unit-file-managed",
    "moodle_ha-firewall-systemd-reloaded",
    "moodle_ha-firewall-service-running",
}
NFT = "/usr/sbin/nft"
UNIT = "moodle_ha-firewall.service"
# Base rules of every input chain (in this order, before the derived ones, which alone carry
# a comment): drop by default, loopback, conntrack, ICMP.
BASE = [
    "type filter hook input priority filter; policy drop;",
    'iif "lo" accept',
    "ct state established,related accept",
    "ct state invalid drop",
    # Mid-stream packets of connections opened before the first load (Salt's among them).
    "ct state new tcp flags & (syn | ack) == ack accept",
    "ip protocol icmp icmp type echo-request limit rate 10/second accept",
    "ip6 nexthdr icmpv6 icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert,"
    " nd-router-advert, echo-request } accept",
]
# Allow lists in both families and extra rules: the table must still load.
IPV6_PATCH = {
    "moodle_ha:firewall:ssh_allow": ["172.30.77.0/24", "2001:db8::/64"],
    "moodle_ha:firewall:metrics_allow": ["192.0.2.0/24", "2001:db8:1::5"],
    "moodle_ha:firewall:extra_rules": ["ip saddr 192.0.2.10 tcp dport 5666 accept",
                                       "ip6 saddr 2001:db8::10 udp dport 161 accept"],
}


def _garbd_pillar():
    return lab_topology_pillar("garbd")


# -- shared renders -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def shared(tmp_path_factory):
    """A directory all xdist workers of this session see (the base temp's parent under
    xdist, as pytest-xdist documents), or this process's own."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        path = tmp_path_factory.getbasetemp().parent / "firewall-renders"
        path.mkdir(exist_ok=True)
        return path
    return tmp_path_factory.mktemp("firewall-renders")


@pytest.fixture(scope="session")
def render(renderer, shared):
    """render(kind, sls or template path, minion, platform, pillar, patch) -> the states
    (kind "sls") or the text (kind "template"), rendered once per session."""

    def _render(kind, what, minion, platform="Debian-13", pillar=None, patch=None):
        spec = json.dumps([kind, what, minion, platform, pillar, patch], sort_keys=True)
        key = hashlib.sha256(spec.encode()).hexdigest()[:16]
        result = shared / f"{key}.json"
        with open(shared / f"{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not result.exists():
                if kind == "sls":
                    out = renderer.show_sls(what, minion_id=minion, platform=platform,
                                            pillar=pillar, patch=patch)
                else:
                    dest = shared / f"{key}.out"
                    layer = what.split("/")[1]
                    code, out = renderer.call(
                        "cp.get_template", f"salt://{what}", str(dest),
                        f"tpldir=moodle_ha/{layer}", minion_id=minion, pillar=pillar,
                        platform=platform, patch=patch)
                    assert code == 0 and dest.exists(), f"{what} did not render: {out}"
                    out = dest.read_text()
                tmp = result.with_suffix(".tmp")
                tmp.write_text(json.dumps(out))
                tmp.replace(result)
        return json.loads(result.read_text())

    return _render


def _table(render, minion, platform="Debian-13", pillar=None, patch=None):
    return render("template", "moodle_ha/firewall/files/moodle_ha.nft.jinja", minion,
                  platform, pillar, patch)


def _fun(state):
    name, args = next((k, v) for k, v in state.items() if not k.startswith("__"))
    return f"{name}.{next(a for a in args if isinstance(a, str))}"


# -- the map the template hands the module, built in-process ------------------------------


def _expected_lines(minion, platform, pillar=None, patch=None):
    """rule_lines() of the map map.jinja builds for `minion` on `platform`."""
    known = {}
    for name in ("defaults", "os_family/Debian", f"osfinger/{platform}"):
        path = REPO / "moodle_ha" / "parameters" / f"{name}.yaml"
        merge(known, yaml.safe_load(path.read_text())["values"])
    pillar = copy.deepcopy(pillar or example_pillar())
    for path, value in (patch or {}).items():
        keys = path.split(":")
        node = pillar
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    config = {k: v for k, v in pillar["moodle_ha"].items() if k != "lookup"}
    data = merge(merge(copy.deepcopy(known), pillar["moodle_ha"].get("lookup") or {}), config)
    roles = pillar["moodle_ha"]["topology"]["hosts"][minion]["roles"]
    result = VALIDATION.post_map(data, minion, roles, copy.deepcopy(known))
    assert result["errors"] == []
    return FIREWALL.rule_lines(result["map"], minion)


def _chain(text):
    """The statements of the input chain (stripped, no comments or blank lines)."""
    lines = text.splitlines()
    start = lines.index("\tchain input {")
    body = []
    for line in lines[start + 1:]:
        if line == "\t}":
            return body
        if line.strip() and not line.strip().startswith("#"):
            body.append(line.strip())
    raise AssertionError("chain input is not closed")


def _derived(chain):
    """The chain's derived rules (the ones with a comment), after checking that the base
    rules come first, in order."""
    derived = [x for x in chain if ' comment "' in x]
    assert derived and chain[-len(derived):] == derived, "derived rules are not last"
    base = chain[:-len(derived)]
    assert [x for x in base if x in BASE] == BASE, f"base rules missing or reordered: {base}"
    return derived


def _nft_check(text, tmp_path):
    """nft -c -f: nft parses the table and the kernel checks it without committing it."""
    nft = shutil.which("nft") or (NFT if os.path.exists(NFT) else None)
    if nft is None:
        pytest.skip("nft is not installed (test/install-parsers.sh installs nftables as root)")
    if os.geteuid() != 0:
        pytest.skip("nft -c needs root (CAP_NET_ADMIN) to ask the kernel")
    path = tmp_path / "moodle_ha.nft"
    path.write_text(text)
    proc = subprocess.run([nft, "-c", "-f", str(path)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, f"nft -c -f refused the table:\n{proc.stderr}\n{text}"


# -- the SLS ------------------------------------------------------------------------------


@pytest.mark.parametrize("minion, platform", [("moodle1", "Debian-13"), ("lb1", "Debian-12")])
def test_table_is_checked_before_it_replaces_the_loaded_one(render, minion, platform):
    out = render("sls", "moodle_ha.firewall", minion, platform)
    assert set(out) - {"__extend__"} == IDS
    pkg = out["moodle_ha-firewall-package-installed"]
    assert _fun(pkg) == "pkg.installed" and state_args(pkg)["pkgs"] == ["nftables"]
    ruleset = state_args(out["moodle_ha-firewall-ruleset-file-managed"])
    assert ruleset["name"] == "/etc/moodle_ha/firewall.nft"
    assert ruleset["source"][-1] == "salt://moodle_ha/firewall/files/moodle_ha.nft.jinja"
    assert ruleset["check_cmd"] == f"{NFT} -c -f"
    assert (ruleset["user"], ruleset["group"], ruleset["mode"]) == ("root", "root", "0600")
    assert ruleset["require"] == [{"pkg": "moodle_ha-firewall-package-installed"}]
    unit = state_args(out["moodle_ha-firewall-unit-file-managed"])
    assert unit["name"] == f"/etc/systemd/system/{UNIT}" and unit["mode"] == "0644"
    reloaded = out["moodle_ha-firewall-systemd-reloaded"]
    assert state_args(reloaded)["onchanges"] == [{"file": "moodle_ha-firewall-unit-file-managed"}]
    service = out["moodle_ha-firewall-service-running"]
    assert _fun(service) == "service.running"
    args = state_args(service)
    assert args["name"] == UNIT and args["enable"] is True
    # A changed table is loaded with a reload (nft -f: one transaction), never a stop/start
    # that would leave the host open in between.
    assert args["reload"] is True
    assert args["watch"] == [{"file": "moodle_ha-firewall-ruleset-file-managed"}]
    assert args["require"] == [{"cmd": "moodle_ha-firewall-systemd-reloaded"}]


def test_disabled_firewall_only_stops_the_service(render):
    out = render("sls", "moodle_ha.firewall", "moodle2",
                 patch={"moodle_ha:firewall:enabled": False})
    assert set(out) - {"__extend__"} == {"moodle_ha-firewall-service-dead"}
    dead = out["moodle_ha-firewall-service-dead"]
    assert _fun(dead) == "service.dead"
    args = state_args(dead)
    assert (args["name"], args["enable"]) == (UNIT, False)


def test_unit_loads_the_table_before_the_network_and_removes_it_on_stop(render):
    text = render("template", "moodle_ha/firewall/files/moodle_ha-firewall.service.jinja",
                  "lb2")
    lines = [x for x in text.splitlines() if x and not x.startswith("#")]
    for line in ("DefaultDependencies=no", "Before=network-pre.target shutdown.target",
                 "Wants=network-pre.target", "Type=oneshot", "RemainAfterExit=yes",
                 f"ExecStart={NFT} -f /etc/moodle_ha/firewall.nft",
                 f"ExecReload={NFT} -f /etc/moodle_ha/firewall.nft",
                 f"ExecStop={NFT} delete table inet moodle_ha", "WantedBy=sysinit.target"):
        assert line in lines


# -- the tables ---------------------------------------------------------------------------

ROLE_TABLES = [(platform, minion) for platform in sorted(PLATFORMS)
               for minion in ("moodle1", "lb1")]


@pytest.mark.parametrize("platform, minion", ROLE_TABLES)
def test_table_of_each_role_holds_exactly_the_derived_rules(render, platform, minion):
    text = _table(render, minion, platform)
    lines = text.splitlines()
    assert lines[0] == f"#!{NFT} -f"
    # Create, delete, create with the rules: one transaction whatever was loaded before.
    tables = [x for x in lines if "table inet moodle_ha" in x]
    assert tables == ["table inet moodle_ha", "delete table inet moodle_ha",
                      "table inet moodle_ha {"]
    chain = _chain(text)
    assert _derived(chain) == _expected_lines(minion, platform)
    assert not [x for x in chain if "{  }" in x or "{ }" in x]


def test_table_of_an_app_node_names_its_clients(render):
    chain = _chain(_table(render, "moodle1"))
    peers = "172.30.77.12/31"  # moodle2 and moodle3
    lbs = "172.30.77.21, 172.30.77.22, 172.30.77.100"
    for line in (
        f'ip saddr {{ {peers}, {lbs} }} tcp dport 3306 accept'
        ' comment "mariadb from the load balancers and the web nodes"',
        f'ip saddr {peers} tcp dport {{ 4568, 4444 }} accept'
        ' comment "galera IST and SST from the peers"',
        f'ip saddr {{ {peers}, {lbs} }} tcp dport 9200 accept'
        ' comment "clustercheck from the load balancers and the galera peers"',
        f'ip saddr {peers} tcp dport 49152-60999 accept'
        ' comment "gluster bricks from the gluster peers and the dataroot clients"',
        f'ip saddr {{ {lbs} }} tcp dport 80 accept comment "apache from the load balancers"',
    ):
        assert line in chain
    assert not [x for x in chain if "0.0.0.0/0" in x or "udp" in x]


def test_table_of_a_load_balancer_names_its_clients(render):
    chain = _chain(_table(render, "lb1", "Debian-12"))
    for line in (
        f'ip saddr 0.0.0.0/0 ip daddr {{ {VIP}, 172.30.77.21 }} tcp dport {{ 80, 443 }} accept'
        ' comment "the site on the VIP"',
        f'ip saddr {{ 172.30.77.11, 172.30.77.12/31 }} ip daddr {{ {VIP}, 172.30.77.21 }}'
        ' tcp dport { 3307, 3308 } accept comment "database endpoints from the web nodes"',
        'ip saddr 172.30.77.22 ip protocol vrrp accept'
        ' comment "vrrp from the other load balancers"',
    ):
        assert line in chain
    assert not [x for x in chain if "3306" in x or "4567" in x or "9200" in x]


@pytest.mark.parametrize("platform, minion", ROLE_TABLES)
def test_table_of_each_role_loads(render, tmp_path, platform, minion):
    _nft_check(_table(render, minion, platform), tmp_path)


def test_table_of_the_arbitrator_beside_haproxy(render, tmp_path):
    pillar = _garbd_pillar()
    text = _table(render, "lb1", pillar=pillar)
    chain = _chain(text)
    assert _derived(chain) == _expected_lines("lb1", "Debian-13", pillar)
    assert ('ip saddr { 172.30.77.11, 172.30.77.12 } tcp dport 4567 accept'
            ' comment "galera group communication from the galera nodes"') in chain
    assert "(roles: lb, garbd)" in text
    _nft_check(text, tmp_path)


def test_table_with_ipv6_allow_lists_and_extra_rules(render, tmp_path):
    text = _table(render, "moodle1", "Debian-12", patch=IPV6_PATCH)
    chain = _chain(text)
    assert 'ip6 saddr 2001:db8::/64 tcp dport 22 accept comment "ssh"' in chain
    assert 'ip6 saddr 2001:db8:1::5 tcp dport 9104 accept comment "mysqld exporter"' in chain
    assert 'ip saddr 192.0.2.0/24 tcp dport 9100 accept comment "node exporter"' in chain
    # firewall:extra_rules come last, as given.
    extra = IPV6_PATCH["moodle_ha:firewall:extra_rules"]
    assert chain[-2:] == extra
    assert _derived(chain[:-2]) == _expected_lines("moodle1", "Debian-12", patch=IPV6_PATCH)
    _nft_check(text, tmp_path)


# -- listeners on the host's topology IP, and the volume's clients ------------------------


def test_mariadb_binds_the_host_ip(render):
    cnf = render("template", "moodle_ha/galera/files/60-galera.cnf.jinja", "moodle2")
    assert [x for x in cnf.splitlines() if x.startswith("bind-address")] == [
        f"bind-address = {IPS['moodle2']}"]


def test_clustercheck_listens_on_the_host_ip_only(render):
    unit = render("template", "moodle_ha/galera/files/moodle_ha-clustercheck.service.jinja",
                  "moodle3", "Debian-12")
    start = next(x for x in unit.splitlines() if x.startswith("ExecStart="))
    listen = next(w for w in start.split() if w.startswith("TCP-LISTEN:"))
    assert listen.split(",")[:2] == ["TCP-LISTEN:9200", f"bind={IPS['moodle3']}"]


def test_volume_admits_only_the_gluster_and_web_hosts(render):
    out = render("sls", "moodle_ha.gluster.volume", "moodle1")
    options = state_args(out["moodle_ha-gluster-volume-options-set"])["options"]
    app = [IPS[n] for n in ("moodle1", "moodle2", "moodle3")]
    assert options["auth.allow"] == ",".join(["127.0.0.1", *app])
    assert options["network.ping-timeout"] == "2"
    for address in options["auth.allow"].split(","):
        ipaddress.ip_address(address)


def test_volume_auth_allow_from_pillar_replaces_the_derived_list(render):
    patch = {"moodle_ha:gluster:auth_allow": ["172.30.77.*", "192.0.2.10"]}
    out = render("sls", "moodle_ha.gluster.volume", "moodle1", patch=patch)
    options = state_args(out["moodle_ha-gluster-volume-options-set"])["options"]
    assert options["auth.allow"] == "172.30.77.*,192.0.2.10"

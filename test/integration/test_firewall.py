"""The per-host firewall seen from outside: the lab host is in the cluster subnet but no member
of the topology, so the cluster's internal ports must not answer it, while the members that
use them still connect (the rest of the suite's failovers run with the firewall on too)."""

from __future__ import annotations

import pytest

from mhalab import testkit

pytestmark = pytest.mark.lab

# Internal ports of a galera + gluster host that only members may reach: listening ones
# (checked with ss, so a silent port is the firewall and not a missing service) and the
# state-transfer ports, which listen only during a transfer (a SYN to them must get no
# answer at all, not the reset of a closed port).
LISTENING = {3306: "mariadb", 4567: "galera replication", 9200: "clustercheck",
             24007: "glusterd"}
TRANSFER = {4568: "galera IST", 4444: "galera SST"}

_CONNECT = r"""
import socket, sys
s = socket.socket()
s.settimeout(3)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("open")
except OSError as exc:
    print("closed", exc)
"""


def _hosts(topology, role):
    return sorted(h for h, spec in topology["hosts"].items() if role in spec["roles"])


def _listening(host):
    """TCP ports HOST listens on, with their local addresses: {port: {addr, ...}}."""
    out = testkit.host_exec(host, ["ss", "-Hltn"]).stdout
    ports = {}
    for line in out.splitlines():
        local = line.split()[3]
        addr, _, port = local.rpartition(":")
        ports.setdefault(int(port), set()).add(addr.strip("[]"))
    return ports


def _brick_ports(host, ip):
    """Ports of the bricks on HOST (address IP), from `gluster volume status --xml`."""
    import xml.etree.ElementTree as ET

    out = testkit.host_exec(host, ["gluster", "volume", "status", "all", "detail", "--xml"]).stdout
    ports = set()
    for node in ET.fromstring(out).iter("node"):
        port = node.findtext("port") or ""
        if node.findtext("hostname") in (ip, host) and port.isdigit() and int(port) > 0:
            ports.add(int(port))
    return sorted(ports)


def _from(host, ip, port):
    proc = testkit.host_exec(host, ["python3", "-c", _CONNECT, ip, str(port)])
    return proc.stdout.strip()


def test_every_host_runs_the_table(deployed, topology):
    for host in sorted(topology["hosts"]):
        proc = testkit.host_exec(host, ["nft", "list", "chain", "inet", "moodle_ha", "input"])
        assert proc.returncode == 0, f"{host}: {proc.stderr[-300:]}"
        assert "policy drop" in proc.stdout, host


def test_internal_ports_refuse_a_non_member_of_the_subnet(deployed, topology):
    """The lab host (in the subnet, no member of the topology) gets no answer from any of
    the members' internal ports: its SYNs are dropped."""
    for host in _hosts(topology, "galera"):
        ip = topology["hosts"][host]["ip"]
        listening = _listening(host)
        bricks = {p: "gluster brick" for p in _brick_ports(host, ip)}
        assert bricks, f"{host}: no brick port in gluster volume status"
        for port, what in sorted({**LISTENING, **bricks}.items()):
            assert port in listening, f"{host} does not listen on {port} ({what})"
        for port, what in sorted({**LISTENING, **bricks, **TRANSFER}.items()):
            got = testkit.tcp_probe(ip, port)
            assert got == "filtered", f"{host}:{port} ({what}) is {got} from the lab host"
    # Control: a port of the same host that the subnet may reach answers.
    first = _hosts(topology, "galera")[0]
    assert testkit.tcp_probe(topology["hosts"][first]["ip"], 9100) == "open"


def test_mariadb_and_clustercheck_listen_on_the_topology_ip_only(deployed, topology):
    for host in _hosts(topology, "galera"):
        ip = topology["hosts"][host]["ip"]
        listening = _listening(host)
        assert listening[3306] == {ip}, f"{host}: 3306 bound on {listening[3306]}"
        assert listening[9200] == {ip}, f"{host}: 9200 bound on {listening[9200]}"


def test_load_balancers_reach_mariadb_and_clustercheck(deployed, topology, clustercheck_http):
    for lb in _hosts(topology, "lb"):
        for host in _hosts(topology, "galera"):
            ip = topology["hosts"][host]["ip"]
            assert _from(lb, ip, 3306) == "open", f"{lb} -> {host}:3306"
    for host in _hosts(topology, "galera"):
        status, body = clustercheck_http(host)
        assert status == 200, f"{host} clustercheck from an lb: {status} {body[:200]}"


def test_the_site_and_the_db_endpoints_stay_reachable(deployed, topology, vip_http):
    status, body = vip_http("/")
    assert status == 200, body[:300]
    # firewall:db_allow admits the lab host (the operator's machine) to the DB endpoints.
    assert testkit.tcp_open(topology["vip"], 3307)


def test_gluster_admits_only_the_gluster_and_web_hosts(deployed, topology):
    first = _hosts(topology, "gluster")[0]
    volume = testkit.pillar().get("gluster", {}).get("volume", "moodledata")
    out = testkit.host_exec(first, ["gluster", "volume", "get", volume, "auth.allow",
                                    "--xml"]).stdout
    import xml.etree.ElementTree as ET

    value = ET.fromstring(out).find(".//Opt/Value").text
    members = {topology["hosts"][h]["ip"] for h in _hosts(topology, "gluster")
               + _hosts(topology, "web")}
    assert set(value.split(",")) == members | {"127.0.0.1"}, value

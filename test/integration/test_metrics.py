"""
Lab: the Prometheus endpoints of moodle_ha.metrics answer from outside the hosts on each
host's cluster IP with real metrics (node, mysqld with the Galera status, HAProxy), and
nothing else of the hosts' listens on their ports (not 127.0.0.1, not the VIP).
"""

import re

import pytest

from mhalab import testkit

pytestmark = pytest.mark.lab

_SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def _samples(text):
    """{(name, labels): value} of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        match = _SAMPLE_RE.match(line)
        if match:
            out[(match.group(1), match.group(2) or "")] = float(match.group(3))
    return out


def _value(samples, name, labels=""):
    assert (name, labels) in samples, f"no sample {name}{labels}"
    return samples[(name, labels)]


@pytest.fixture(scope="module")
def ports():
    pillar = testkit.pillar()
    metrics = pillar.get("metrics") or {}
    return {
        "node": (metrics.get("node_exporter") or {}).get("port", 9100),
        "mysqld": (metrics.get("mysqld_exporter") or {}).get("port", 9104),
        "stats": (pillar.get("lb") or {}).get("haproxy", {}).get("stats_port", 8404),
        "path": (metrics.get("haproxy") or {}).get("path", "/metrics"),
    }


def _hosts(topology, role=None):
    return sorted(name for name, spec in topology["hosts"].items()
                  if role is None or role in spec["roles"])


def _scrape(node_http, host, port, path="/metrics"):
    status, body = node_http(host, port, path)
    assert status == 200, f"{host}:{port}{path} answered {status}: {body[:300]}"
    return _samples(body)


def test_node_exporter_answers_on_every_host_ip(deployed, topology, node_http, ports):
    for host in _hosts(topology):
        samples = _scrape(node_http, host, ports["node"])
        assert any(name == "node_cpu_seconds_total" for name, _ in samples), host
        assert any(name == "node_filesystem_avail_bytes" for name, _ in samples), host


def _settled(node_http, host, port, path, ready, limit=120):
    """The samples once ready(samples) holds (an earlier test may have just healed a fault)."""
    waited = testkit.until(lambda: (s := _scrape(node_http, host, port, path)) and ready(s)
                           and s, limit, interval=2)
    return waited.value if waited else _scrape(node_http, host, port, path)


def test_mysqld_exporter_sees_every_galera_node_synced(deployed, topology, node_http, ports):
    galera = _hosts(topology, "galera")
    for host in galera:
        samples = _settled(node_http, host, ports["mysqld"], "/metrics", lambda s: s.get(
            ("mysql_global_status_wsrep_cluster_size", "")) == len(galera))
        assert _value(samples, "mysql_up") == 1, f"{host}: the exporter cannot log in"
        assert _value(samples, "mysql_global_status_wsrep_cluster_size") == len(galera)
        assert _value(samples, "mysql_global_status_wsrep_local_state") == 4  # Synced
        assert _value(samples, "mysql_global_status_wsrep_cluster_status") == 1  # Primary
        # Every default collector succeeds: the account has the privileges they need.
        failed = [labels for (name, labels), value in samples.items()
                  if name == "mysql_exporter_collector_success" and value != 1]
        assert failed == [], f"{host}: collectors failed {failed}"


def test_haproxy_exporter_answers_on_the_stats_listener_without_auth(deployed, topology,
                                                                     node_http, ports):
    galera = _hosts(topology, "galera")
    def readers_up(samples):
        return all(samples.get(("haproxy_server_status",
                                f'{{proxy="db-readers",server="{node}",state="UP"}}'))
                   for node in galera)

    for host in _hosts(topology, "lb"):
        samples = _settled(node_http, host, ports["stats"], ports["path"], readers_up)
        for proxy in ("db-writer", "db-readers", "web-farm"):
            assert _value(samples, "haproxy_backend_status",
                          f'{{proxy="{proxy}",state="UP"}}') == 1, f"{host} {proxy}"
        up = [node for node in galera if samples.get(
            ("haproxy_server_status", f'{{proxy="db-readers",server="{node}",state="UP"}}'))]
        assert up == galera, f"{host}: readers up {up}"
        # The stats page itself still asks for the password.
        status, _ = node_http(host, ports["stats"], "/")
        assert status == 401


def _listeners(host_exec, host, port):
    proc = host_exec(host, ["ss", "-Hltn", f"sport = :{port}"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return sorted({line.split()[3] for line in proc.stdout.splitlines() if line.strip()})


def test_endpoints_listen_on_the_host_ip_only(deployed, topology, host_exec, node_http,
                                              ports):
    for host in _hosts(topology):
        spec = topology["hosts"][host]
        wanted = [("node", ports["node"])]
        if "galera" in spec["roles"]:
            wanted.append(("mysqld", ports["mysqld"]))
        if "lb" in spec["roles"]:
            wanted.append(("stats", ports["stats"]))
        for what, port in wanted:
            assert _listeners(host_exec, host, port) == [f"{spec['ip']}:{port}"], (
                f"{host} {what}")
            loop = host_exec(host, ["curl", "-s", "-o", "/dev/null", "-m", "2",
                                    f"http://127.0.0.1:{port}/metrics"])
            assert loop.returncode != 0, f"{host}: {what} answers on 127.0.0.1:{port}"
    # The VIP carries the DB and web listeners only.
    with pytest.raises(OSError):
        testkit.http_get(f"http://{topology['vip']}:{ports['node']}/metrics", timeout=2)

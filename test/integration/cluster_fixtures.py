"""Fixtures for the deployed cluster: one orchestrate run (and a re-run) per test session."""

from __future__ import annotations

import pytest

from mhalab import testkit


@pytest.fixture(scope="session")
def deployed(lab):
    run = testkit.orchestrate()
    print(f"\ncold orchestrate: {run.seconds:.0f} s, {len(run.changed)} changes")
    if run.failed:
        pytest.fail("orchestrate failed:\n" + "\n".join(run.failed[:20]))
    return run


@pytest.fixture(scope="session")
def redeployed(deployed):
    run = testkit.orchestrate()
    print(f"\nno-op orchestrate: {run.seconds:.0f} s, {len(run.changed)} changes")
    return run


@pytest.fixture(scope="session")
def lab_salt(lab):
    """lab_salt(target, fun, *args): what FUN returned on the one minion TARGET."""
    return testkit.salt_value


@pytest.fixture(scope="session")
def topology(lab):
    return testkit.topology()


@pytest.fixture(scope="session")
def secrets(lab):
    """The lab's secrets (str). PyMySQL encodes a str password as latin-1: pass it .encode()d."""
    return testkit.secrets()


@pytest.fixture(scope="session")
def vip_http(topology):
    """(status, body) of PATH on the site through the VIP (https:// with lb:tls:enabled,
    verified against the lab's CA; redirects followed)."""
    def get(path):
        return testkit.http_get(testkit.site_url(path), host_header=topology["vip"])
    return get


@pytest.fixture(scope="session")
def node_http(topology):
    """(status, body) of http://HOST:PORT/PATH; the stats listener (lb:haproxy:stats_port)
    over https:// with lb:tls:enabled."""
    lb = testkit.pillar().get("lb", {})
    stats_port = int(lb.get("haproxy", {}).get("stats_port", 8404))
    tls = lb.get("tls", {}).get("enabled", True)

    def get(host, port, path):
        stats = tls and int(port) == stats_port
        return testkit.http_get(
            f"{'https' if stats else 'http'}://{topology['hosts'][host]['ip']}:{port}{path}",
            check_hostname=not stats)
    return get


@pytest.fixture(scope="session")
def clustercheck_http(topology):
    """(status, body) of HOST's clustercheck asked from the first load balancer: the
    firewall admits clustercheck from the load balancers and the galera peers only."""
    lb = sorted(h for h, spec in topology["hosts"].items() if "lb" in spec["roles"])[0]
    port = testkit.pillar().get("galera", {}).get("clustercheck", {}).get("port", 9200)

    def get(host, path="/"):
        return testkit.http_get_from(lb, f"http://{topology['hosts'][host]['ip']}:{port}{path}")
    return get

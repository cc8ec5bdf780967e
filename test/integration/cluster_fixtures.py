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
    def get(path, port=80):
        return testkit.http_get(f"http://{topology['vip']}:{port}{path}",
                                host_header=topology["vip"])
    return get


@pytest.fixture(scope="session")
def node_http(topology):
    def get(host, port, path):
        return testkit.http_get(f"http://{topology['hosts'][host]['ip']}:{port}{path}")
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

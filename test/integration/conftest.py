"""
Session fixtures for the lab suite (marker `lab`).

`lab` brings the five-host lab up once per session and takes it down at the end, even when
tests fail. MOODLE_HA_LAB_RELEASE picks the hosts' Debian release (default trixie);
MOODLE_HA_LAB_REUSE=1 uses a lab that is already up (and leaves it up: it is not this
session's); MOODLE_HA_LAB_KEEP=1 leaves a lab this session brought up running.
Under CI (CI=true) a lab left running by anyone else on the machine is replaced.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Fixtures of the deployed cluster live beside this file (this makes them visible to pytest).
from cluster_fixtures import (  # noqa: F401
    clustercheck_http,
    deployed,
    lab_salt,
    node_http,
    redeployed,
    secrets,
    topology,
    vip_http,
)
from mhalab import paths, testkit


def pytest_collection_modifyitems(items):
    """Tests that add or remove lab hosts (marker lab_topology_changing) run last, so every
    other test of the session sees the topology it was written for."""
    items.sort(key=lambda item: item.get_closest_marker("lab_topology_changing") is not None)


class Lab:
    """A running lab: its topology, its state file and the lab.py verbs."""

    def __init__(self):
        self.topology = testkit.topology()
        self.hosts = self.topology["hosts"]

    @property
    def state(self) -> dict:
        return testkit.state()

    def run(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        proc = testkit.lab_run(*args, timeout=timeout)
        assert proc.returncode == 0, f"lab.py {' '.join(args)}:\n{proc.stdout}{proc.stderr}"
        return proc

    def nspawn_pid(self, host: str) -> int | None:
        return self.state.get("hosts", {}).get(host, {}).get("pid")

    def container_pids(self, host: str) -> list[int]:
        return testkit.container_pids(host)


@pytest.fixture(scope="session")
def lab():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    reuse = os.environ.get("MOODLE_HA_LAB_REUSE") == "1"
    keep = os.environ.get("MOODLE_HA_LAB_KEEP") == "1"
    if reuse and testkit.is_up():
        yield Lab()
        return
    if testkit.is_up():
        pytest.fail(
            "a lab is already up: set MOODLE_HA_LAB_REUSE=1 to test it, or `lab.py down` first"
        )
    try:
        # CI owns the whole machine: a lab left running by an earlier session is stale there.
        replace = ["--replace"] if os.environ.get("CI") == "true" else []
        proc = testkit.lab_run("up", "--release", paths.release(), *replace, timeout=1800)
        sys.stdout.write(proc.stdout)
        if proc.returncode != 0:
            pytest.fail(f"lab.py up failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        yield Lab()
    finally:
        if not keep:
            down = testkit.lab_run("down", timeout=600)
            if down.returncode != 0:
                sys.stderr.write(f"lab.py down failed:\n{down.stdout}{down.stderr}")


@pytest.fixture(scope="session")
def salt(lab):
    """salt(target, fun, *args, timeout=60): the parsed --out=json of salt on the lab master."""

    def call(target: str, fun: str, *args: str, timeout: int = 60) -> dict:
        return testkit.salt_json(target, fun, *args, timeout=timeout)

    return call


@pytest.fixture(scope="session")
def host_exec(lab):
    """host_exec(host, cmd): run cmd (list or shell string) inside a lab host."""
    return testkit.host_exec

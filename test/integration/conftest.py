"""
Session fixtures for the lab suite (marker `lab`).

`lab` brings the five-host lab up once per session and takes it down at the end, even when
tests fail. MOODLE_HA_LAB_REUSE=1 uses a lab that is already up (and leaves it up: it is not
this session's); MOODLE_HA_LAB_KEEP=1 leaves a lab this session brought up running.
Under CI (CI=true) a lab left running by anyone else on the machine is replaced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAB_PY = REPO / "test" / "lab" / "lab.py"
sys.path.insert(0, str(LAB_PY.parent))
# Fixtures of the deployed cluster live beside this file (this makes them visible to pytest).
import lab as labtool  # noqa: E402
from cluster_fixtures import (  # noqa: E402,F401
    deployed,
    lab_salt,
    node_http,
    redeployed,
    topology,
    vip_http,
)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "lab: needs the five-host lab (test/lab/lab.py up); run as root"
    )


def lab_cmd(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run a lab.py verb; capture its output."""
    return subprocess.run(
        [sys.executable, str(LAB_PY), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


class Lab:
    """A running lab: its topology, its state file and the lab.py verbs."""

    def __init__(self):
        self.topology = labtool.topology()
        self.hosts = self.topology["hosts"]

    @property
    def state(self) -> dict:
        return labtool.load_state()

    def run(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        proc = lab_cmd(*args, timeout=timeout)
        assert proc.returncode == 0, f"lab.py {' '.join(args)}:\n{proc.stdout}{proc.stderr}"
        return proc

    def nspawn_pid(self, host: str) -> int | None:
        return self.state.get("hosts", {}).get(host, {}).get("pid")

    def container_pids(self, host: str) -> list[int]:
        """Processes still in the host's cgroups (its nspawn and everything inside)."""
        pids: set[int] = set()
        for cg in labtool.cgroup_dirs(host):
            pids.update(p for p in labtool.cgroup_pids(cg) if labtool.pid_alive(p))
        return sorted(pids)


def _lab_is_up() -> bool:
    state = labtool.load_state()
    return bool(state.get("complete")) and labtool.lab_running(state)


@pytest.fixture(scope="session")
def lab():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    reuse = os.environ.get("MOODLE_HA_LAB_REUSE") == "1"
    keep = os.environ.get("MOODLE_HA_LAB_KEEP") == "1"
    if reuse and _lab_is_up():
        yield Lab()
        return
    if _lab_is_up():
        pytest.fail(
            "a lab is already up: set MOODLE_HA_LAB_REUSE=1 to test it, or `lab.py down` first"
        )
    try:
        # CI owns the whole machine: a lab left running by an earlier session is stale there.
        replace = ["--replace"] if os.environ.get("CI") == "true" else []
        proc = lab_cmd("up", *replace, timeout=1800)
        sys.stdout.write(proc.stdout)
        if proc.returncode != 0:
            pytest.fail(f"lab.py up failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        yield Lab()
    finally:
        if not keep:
            down = lab_cmd("down", timeout=600)
            if down.returncode != 0:
                sys.stderr.write(f"lab.py down failed:\n{down.stdout}{down.stderr}")


@pytest.fixture(scope="session")
def salt(lab):
    """salt(target, fun, *args, timeout=60): the parsed --out=json of salt on the lab master."""

    def call(target: str, fun: str, *args: str, timeout: int = 60) -> dict:
        proc = lab_cmd(
            "salt",
            target,
            fun,
            *args,
            "--out=json",
            "--static",
            f"-t{timeout}",
            timeout=timeout + 120,
        )
        try:
            return json.loads(proc.stdout or "{}")
        except json.JSONDecodeError:
            raise AssertionError(
                f"salt {target} {fun} gave no JSON:\n{proc.stdout}{proc.stderr}"
            ) from None

    return call


@pytest.fixture(scope="session")
def host_exec(lab):
    """host_exec(host, cmd): run cmd (list or shell string) inside a lab host."""

    def run(host: str, cmd, timeout: float = 120) -> subprocess.CompletedProcess:
        argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        return lab_cmd("exec", host, *argv, timeout=timeout)

    return run

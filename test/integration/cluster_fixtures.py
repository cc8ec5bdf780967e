"""Fixtures for the deployed cluster: one orchestrate run (and a re-run) per test session."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAB = [sys.executable, str(REPO / "test" / "lab" / "lab.py")]
sys.path.insert(0, str(REPO / "test" / "lab"))
import results  # noqa: E402


def lab_run(*args, timeout=3600):
    return subprocess.run([*LAB, *args], capture_output=True, text=True, timeout=timeout,
                          check=False, stdin=subprocess.DEVNULL)


def salt_json(target, fun, *args, timeout=300):
    proc = lab_run("salt", target, fun, *args, "--out=json", "--static", f"-t{timeout}",
                   timeout=timeout + 60)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(
            f"salt {target} {fun} gave no JSON: {proc.stdout}{proc.stderr}") from None


@dataclass
class Run:
    seconds: float
    output: dict = field(default_factory=dict)

    @property
    def failed(self):
        return results.failed(self.output)

    @property
    def changed(self):
        return results.changed(self.output)


def orchestrate() -> Run:
    sync = lab_run("salt-run", "saltutil.sync_all", timeout=300)
    assert sync.returncode == 0, sync.stdout + sync.stderr
    start = time.monotonic()
    proc = lab_run("salt-run", "state.orchestrate", "moodle_ha.orch", "--out=json",
                   timeout=3600)
    seconds = time.monotonic() - start
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"orchestrate gave no JSON ({proc.returncode}):\n"
                             f"{proc.stdout[-5000:]}\n{proc.stderr[-5000:]}") from None
    return Run(seconds, out)


@pytest.fixture(scope="session")
def deployed(lab):
    run = orchestrate()
    print(f"\ncold orchestrate: {run.seconds:.0f} s, {len(run.changed)} changes")
    if run.failed:
        pytest.fail("orchestrate failed:\n" + "\n".join(run.failed[:20]))
    return run


@pytest.fixture(scope="session")
def redeployed(deployed):
    run = orchestrate()
    print(f"\nno-op orchestrate: {run.seconds:.0f} s, {len(run.changed)} changes")
    return run


@pytest.fixture(scope="session")
def lab_salt(lab):
    """Call an execution function on one minion; return its value."""
    def call(target, fun, *args, timeout=300):
        out = salt_json(target, fun, *args, timeout=timeout)
        assert target in out, f"{target} did not answer {fun}: {out}"
        return out[target]
    return call


def http_get(url, host_header=None, timeout=5):
    req = urllib.request.Request(url)
    if host_header:
        req.add_header("Host", host_header)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


@pytest.fixture(scope="session")
def topology():
    import yaml
    return yaml.safe_load((REPO / "pillar.example").read_text())["moodle_ha"]["topology"]


@pytest.fixture(scope="session")
def vip_http(topology):
    def get(path, port=80):
        return http_get(f"http://{topology['vip']}:{port}{path}", host_header=topology["vip"])
    return get


@pytest.fixture(scope="session")
def node_http(topology):
    def get(host, port, path):
        return http_get(f"http://{topology['hosts'][host]['ip']}:{port}{path}")
    return get

"""Unit tests for test/bench/failover.py's figure arithmetic (the probes need the lab)."""

import importlib.util

import pytest

from render.renderlib import REPO


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_failover",
                                                  REPO / "test" / "bench" / "failover.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def requests(*rows):
    """(start, seconds, ok) -> the client's (start, end, ok) records."""
    return [(start, start + took, ok) for start, took, ok in rows]


def test_a_fault_nobody_noticed_has_no_failure_and_is_steady_at_once(bench):
    log = requests(*[(10 + 0.1 * i, 0.05, True) for i in range(60)])
    total, failed, stall, steady = bench.stall_figures(log, fault_at=11.0)
    assert (total, failed) == (50, 0)
    assert stall == pytest.approx(0.1)
    assert steady == 0.0


def test_a_stall_counts_from_the_fault_to_the_next_success(bench):
    # Fault at 11.0; one request hangs 4 s and fails, one fails fast, then successes.
    log = requests((10.9, 0.05, True), (11.0, 4.0, False), (15.0, 0.1, False),
                   *[(15.2 + 0.1 * i, 0.05, True) for i in range(40)])
    total, failed, stall, steady = bench.stall_figures(log, fault_at=11.0)
    assert failed == 2 and total == 42
    assert stall == pytest.approx(15.25 - 11.0)
    assert steady == pytest.approx(4.2)


def test_no_steady_run_after_the_fault_is_none(bench):
    log = requests(*[(11 + i, 0.5, i % 2 == 0) for i in range(10)])
    assert bench.stall_figures(log, fault_at=11.0)[3] is None

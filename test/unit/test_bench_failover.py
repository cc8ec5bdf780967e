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
    assert steady == pytest.approx(0.05)  # from the first answer after the fault


def test_a_stall_counts_from_the_fault_to_the_next_success(bench):
    # Fault at 11.0; one request hangs 4 s and fails, one fails fast, then successes.
    log = requests((10.9, 0.05, True), (11.0, 4.0, False), (15.0, 0.1, False),
                   *[(15.2 + 0.1 * i, 0.05, True) for i in range(40)])
    total, failed, stall, steady = bench.stall_figures(log, fault_at=11.0)
    assert failed == 2 and total == 42
    assert stall == pytest.approx(15.25 - 11.0)
    assert steady == pytest.approx(15.25 - 11.0)


def test_no_steady_run_after_the_fault_is_none(bench):
    log = requests(*[(11 + i, 0.5, i % 2 == 0) for i in range(10)])
    assert bench.stall_figures(log, fault_at=11.0)[3] is None


def test_with_several_clients_the_site_is_dark_only_while_none_of_them_succeeds(bench):
    # Client A's request in flight on the killed host hangs until its 5 s timeout; client B
    # waits 0.8 s for its retry on another node, then succeeds every 0.1 s.
    client_a = requests((10.95, 5.0, False), *[(15.95 + 0.1 * i, 0.05, True) for i in range(30)])
    client_b = requests((10.98, 0.02, True), (11.05, 0.8, True),
                        *[(11.9 + 0.1 * i, 0.05, True) for i in range(60)])
    total, failed, stall, steady = bench.stall_figures(client_a + client_b, fault_at=11.0)
    assert failed == 1
    assert stall == pytest.approx(11.85 - 11.0)
    # B's answers ended 3 s in a row before A's request timed out: steady from the fault on.
    assert steady == 0.0


def test_requests_that_waited_out_the_stall_do_not_make_it_steady_at_once(bench):
    # Four clients' requests start just before the fault, all wait 2.6 s on the cut host's
    # brick and then succeed; answers every 0.1 s after that.
    log = []
    for c in range(4):
        log += requests((10.9 + 0.02 * c, 2.7, True),
                        *[(13.7 + 0.1 * i + 0.02 * c, 0.05, True) for i in range(40)])
    total, failed, stall, steady = bench.stall_figures(log, fault_at=11.0)
    assert failed == 0
    assert stall == pytest.approx(13.6 - 11.0)
    assert steady == pytest.approx(13.6 - 11.0)

"""
The bench's table (test/bench/report.py) and the converge rows bench.py makes of a recorded
no-op orchestration (test/data/orch/noop-orchestrate.json, the runner's JSON of a lab run).
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))

import bench  # noqa: E402
from report import Report, value_text  # noqa: E402

from mhalab.testkit import Run  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "orch" / "noop-orchestrate.json"


def test_table_prints_each_figure_with_value_unit_and_method_and_na_for_missing():
    report = Report()
    report.add("vip_kill_s", "VIP holder: kill", 0.912, "s", "lb1 -> lb2", "TCP probe")
    report.missing("cold_s", "cold converge", "run with --cold")
    lines = report.table().splitlines()
    assert lines[0] == "| figure | value | seen | method |"
    assert lines[2] == "| VIP holder: kill | 0.91 s | lb1 -> lb2 | TCP probe |"
    assert lines[3] == "| cold converge | n/a | run with --cold |  |"


def test_a_figure_measured_again_replaces_its_row_in_place_of_order():
    report = Report()
    report.add("a", "first", 1.0)
    report.add("b", "second", 2.0)
    report.add("a", "first", None, detail="round 2 failed")
    assert [r["key"] for r in report.rows] == ["b", "a"]
    assert report.rows[1]["value"] is None


def test_values_keep_two_decimals_below_ten_and_one_above():
    assert value_text({"value": 2.345, "unit": "s"}) == "2.35 s"
    assert value_text({"value": 95.26, "unit": "s"}) == "95.3 s"
    assert value_text({"value": 3, "unit": "of 360"}) == "3 of 360"


def test_json_carries_rows_and_the_machine(tmp_path):
    report = Report()
    report.add("noop_s", "no-op re-run", 86.8, "s", "0 changed")
    out = tmp_path / "bench.json"
    report.write(out, date="2026-12-07", machine={"cores": 2})
    data = json.loads(out.read_text())
    assert data["machine"] == {"cores": 2}
    assert data["figures"][0]["value"] == 86.8
    again = Report()
    again.extend(data["figures"])
    assert again.rows == report.rows


def test_converge_row_of_a_recorded_noop_names_the_slowest_steps():
    run = Run(94.2, json.loads(DATA.read_text()))
    report = Report()
    bench.converge(report, "noop_s", "no-op re-run", run)
    row = report.rows[0]
    assert row["value"] == 94.2
    assert row["detail"].startswith("0 changed, 0 failed states; slowest steps:"
                                     " modules-synced 12 s, hosts-applied 11 s,")
    assert "moodle_ha.orch" in row["method"]

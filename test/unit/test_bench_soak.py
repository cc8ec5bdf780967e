"""
The soak probe's arithmetic (test/bench/soak.py) on counters recorded in a lab run
(test/data/bench/soak-sst.debian13-lab.json: 90 s of load with a full state transfer to
moodle3 inside it) and on hand-made changes of the same shape.
"""

import copy
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))

import soak  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "bench" / "soak-sst.debian13-lab.json"


@pytest.fixture
def counters():
    return json.loads(DATA.read_text())["counters"]


def test_a_state_transfer_is_two_view_changes_per_node_and_two_downs_per_balancer(counters):
    d = soak.delta(counters["before"], counters["after"])
    assert d["views"] == {"moodle1": 2, "moodle2": 2, "moodle3": 2}
    assert d["disconnects"] == {"moodle1": 0, "moodle2": 0, "moodle3": 0}
    # The joiner and its donor leave the writer pool while they copy; nothing else went down.
    assert d["downs"] == {"lb1:db-writer/moodle2": 1, "lb1:db-writer/moodle3": 1,
                          "lb2:db-writer/moodle2": 1, "lb2:db-writer/moodle3": 1}
    # ... which is what a state transfer explains: no false alarm.
    assert soak.false_alarms(d, sst=True) == {"views": 0, "disconnects": 0, "downs": 0,
                                              "total": 0}
    # Without one, the same counts are six view changes and four downs nothing explains.
    assert soak.false_alarms(d, sst=False)["total"] == 10


def test_disconnects_and_downs_count_only_what_happened_in_the_window(counters):
    after = copy.deepcopy(counters["before"])
    after["disconnects"]["moodle2"] += 3
    after["chkdown"]["lb2"]["web-farm/moodle1"] += 1
    after["chkdown"]["lb1"]["redis-cache/moodle9"] = 1  # a server that came in the window
    d = soak.delta(counters["before"], after)
    assert d["views"] == {"moodle1": 0, "moodle2": 0, "moodle3": 0}
    assert sum(d["disconnects"].values()) == 3
    assert d["downs"] == {"lb2:web-farm/moodle1": 1, "lb1:redis-cache/moodle9": 1}
    # A web node down is not explained by a state transfer.
    assert soak.false_alarms(d, sst=True) == {"views": 0, "disconnects": 3, "downs": 2,
                                              "total": 5}


def test_a_node_that_did_not_answer_has_no_view_count(counters):
    after = copy.deepcopy(counters["after"])
    after["conf_id"]["moodle3"] = None
    assert soak.delta(counters["before"], after)["views"]["moodle3"] is None

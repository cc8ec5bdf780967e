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


# The dataroot mount's log on moodle3 (gluster 11.1), recorded right after the writer probe
# had killed moodle1 and then moodle2: three disconnects logged as they happened, and a
# summary of two held-back ones (moodle1's brick, 02:02:51 to 02:03:01) that gluster wrote
# later, after a soak had started at 02:03:33 and counted it as a disconnect of its own.
KILLS_LOG = (DATA.parent / "gluster-client-kills.debian13-lab.log").read_text()


@pytest.mark.parametrize(("since", "events"), [
    ("2026-12-08 02:03:33", 0),  # the soak's window: both kills were before it
    ("2026-12-08 02:02:00", 5),  # three lines and the two repeats
    ("2026-12-08 02:03:00", 4),  # the summary's last repeat (02:03:01) only
    ("2026-12-08 02:03:10", 2),  # 02:03:12 and 02:03:17
])
def test_disconnects_are_counted_by_their_own_time(since, events):
    assert soak.disconnect_events(KILLS_LOG, soak._utc(since)) == events


def test_a_line_without_a_date_or_of_another_kind_is_not_a_disconnect():
    text = ("disconnected from client (no date)\n"
            "[2026-12-08 02:03:12.917159 +0000] C [rpc-clnt-ping.c:146:rpc_clnt_ping_timer_expired]"
            " 0-moodledata-client-1: server 172.30.77.12:24007 has not responded in the last 2"
            " seconds, disconnecting.\n")
    assert soak.disconnect_events(text, 0) == 0

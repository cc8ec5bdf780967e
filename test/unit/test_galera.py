"""Unit tests for _modules/galera.py and _states/galera.py.

Parsers are fed with outputs recorded from MariaDB 10.11 / Galera 4 in the lab
(test/data/galera/; the file names say which host and situation they come from). The
state's plan and the bootstrap decision are pure functions and are tested case by case; the
state runs on the real module functions with the server, systemctl and the mine replaced by
fakes.
"""

import sys

import pytest
from salt.exceptions import CommandExecutionError

from render.renderlib import REPO
from saltmodules import load

DATA = REPO / "test" / "data" / "galera"
UUID = "5e3cb1b4-cb1c-11f0-8a3e-0b6a2d0b2f57"
OTHER_UUID = "9a1f0c22-0000-11f0-9999-111111111111"
ZERO = "00000000-0000-0000-0000-000000000000"
NODES = ["moodle1", "moodle2", "moodle3"]
NODE_IPS = [{"name": n, "ip": f"172.30.77.1{i + 1}"} for i, n in enumerate(NODES)]


galera = load("_modules/galera.py", "galera_module_under_test")
galera_state = load("_states/galera.py", "galera_state_under_test")


def data(stem):
    """The one recorded file named ``<stem>.<provenance>.<ext>``."""
    found = sorted(DATA.glob(f"{stem}.*"))
    assert len(found) == 1, f"expected one recorded file for {stem}, found {found}"
    return found[0].read_text()


def pos(seqno, uuid=UUID, safe=False, **extra):
    rec = {"time": 0, "running": False, "primary": False, "synced": False, "uuid": uuid,
           "seqno": seqno, "safe_to_bootstrap": safe, "source": "grastate"}
    rec.update(extra)
    return rec


def fresh():
    return pos(None, uuid=None, source="none")


def down(*peers):
    return {p: {"primary": False, "port_open": False} for p in peers}


def prim():
    """A peer whose clustercheck says Synced in a Primary component."""
    return {"primary": True, "port_open": True, "state": galera.STATE_SYNCED}


def decide(me, positions, live=None, bootstrap_node="moodle1", force=None):
    peers = [n for n in NODES if n != me]
    return galera.bootstrap_decision(
        me, NODES, bootstrap_node, positions, live if live is not None else down(*peers), force)


# --------------------------------------------------------------------------- parsers


def test_grastate_after_clean_shutdown_of_last_node_has_seqno_and_safe_flag():
    gra = galera.parse_grastate(data("grastate-clean-shutdown-last-node"))
    assert gra["version"] == "2.1"
    assert len(gra["uuid"]) == 36 and gra["uuid"] != ZERO
    assert gra["seqno"] >= 0
    assert gra["safe_to_bootstrap"] is True


def test_grastate_after_crash_has_no_seqno_and_is_not_safe():
    gra = galera.parse_grastate(data("grastate-crashed"))
    assert gra["seqno"] == -1
    assert gra["safe_to_bootstrap"] is False
    assert gra["uuid"] != ZERO


def test_grastate_without_safe_flag_reports_none():
    gra = galera.parse_grastate("# GALERA saved state\nversion: 2.1\nuuid: x\nseqno: 3\n")
    assert gra == {"version": "2.1", "uuid": "x", "seqno": 3, "safe_to_bootstrap": None}


def test_show_status_rows_parse_to_a_dict_of_strings():
    st = galera.parse_rows(data("show-status-wsrep-synced"))
    assert st["wsrep_cluster_status"] == "Primary"
    assert st["wsrep_local_state"] == "4"
    assert st["wsrep_local_state_comment"] == "Synced"
    assert st["wsrep_cluster_size"] == "3"
    assert st["wsrep_ready"] == "ON"
    # values with spaces and empty values survive
    assert "wsrep_provider_name" in st


def test_recovered_position_is_read_from_a_real_wsrep_recover_log():
    found = galera.parse_recovered_position(data("wsrep-recover-after-kill"))
    assert found is not None
    assert len(found["uuid"]) == 36 and found["seqno"] >= 0


def test_recovered_position_takes_the_last_line_and_ignores_gtid_suffix():
    text = (
        "2025-11-25 10:00:00 0 [Note] WSREP: Recovered position: "
        f"{ZERO}:-1\n"
        "2025-11-25 10:00:01 0 [Note] WSREP: Recovered position: "
        f"{UUID}:42,0-1-17\n"
    )
    assert galera.parse_recovered_position(text) == {"uuid": UUID, "seqno": 42}


def test_recovered_position_absent_returns_none():
    assert galera.parse_recovered_position("[ERROR] Aborting\n") is None


def test_clustercheck_answer_synced_is_200_with_primary_status():
    answer = galera.parse_clustercheck(data("clustercheck-200-synced"))
    assert answer["code"] == 200
    assert answer["fields"]["wsrep_cluster_status"] == "Primary"
    assert answer["fields"]["wsrep_local_state"] == str(galera.STATE_SYNCED)


def test_clustercheck_answer_desynced_is_503_but_still_primary():
    answer = galera.parse_clustercheck(data("clustercheck-503-desynced"))
    assert answer["code"] == 503
    assert answer["fields"]["wsrep_cluster_status"] == "Primary"
    assert answer["fields"]["wsrep_local_state"] == str(galera.STATE_DONOR)


def test_clustercheck_answer_mysqld_down():
    answer = galera.parse_clustercheck(data("clustercheck-503-mysqld-down"))
    assert answer["code"] == 503
    assert answer["fields"] == {"mysqld": "down"}


def test_clustercheck_garbage_has_no_code():
    assert galera.parse_clustercheck(b"SSH-2.0-OpenSSH\r\n")["code"] is None


# --------------------------------------------------------------------------- decision


def test_brand_new_cluster_bootstraps_the_designated_node():
    positions = {n: fresh() for n in NODES}
    assert decide("moodle1", positions)["action"] == "bootstrap"


def test_brand_new_cluster_other_nodes_wait_for_the_designated_node():
    positions = {n: fresh() for n in NODES}
    result = decide("moodle3", positions, bootstrap_node="moodle2")
    assert result["action"] == "wait" and result["node"] == "moodle2"


def test_brand_new_cluster_uuid_zero_counts_as_no_data():
    positions = {n: pos(-1, uuid=ZERO) for n in NODES}
    assert decide("moodle1", positions)["action"] == "bootstrap"


def test_live_primary_component_means_join_never_bootstrap():
    positions = {"moodle1": pos(100), "moodle2": None, "moodle3": None}
    live = {"moodle2": prim(), "moodle3": down("moodle3")["moodle3"]}
    result = decide("moodle1", positions, live)
    assert result["action"] == "join" and result["node"] == "moodle2"


def test_live_primary_component_wins_over_force_bootstrap_node():
    live = {"moodle2": prim(), "moodle3": down("moodle3")["moodle3"]}
    result = decide("moodle1", {n: None for n in NODES}, live, force="moodle1")
    assert result["action"] == "join"


def test_donor_peer_is_still_a_primary_component_to_join():
    # clustercheck says 503 (donor) but its body says Primary: join, do not bootstrap.
    live = {"moodle2": prim(), "moodle3": down("moodle3")["moodle3"]}
    assert decide("moodle1", {n: fresh() for n in NODES}, live)["action"] == "join"


def test_node_already_primary_does_nothing():
    positions = {n: pos(5) for n in NODES}
    positions["moodle2"] = pos(5, running=True, primary=True, source="status")
    assert decide("moodle2", positions)["action"] == "none"


def test_full_outage_bootstraps_the_highest_seqno_not_the_designated_node():
    positions = {"moodle1": pos(10), "moodle2": pos(12), "moodle3": pos(11)}
    assert decide("moodle2", positions)["action"] == "bootstrap"
    result = decide("moodle1", positions)
    assert result["action"] == "wait" and result["node"] == "moodle2"
    assert "12" in result["reason"]


def test_full_outage_tie_goes_to_the_designated_node():
    positions = {"moodle1": pos(12), "moodle2": pos(12), "moodle3": pos(11)}
    assert decide("moodle1", positions)["action"] == "bootstrap"
    assert decide("moodle2", positions)["node"] == "moodle1"


def test_full_outage_tie_without_the_designated_node_goes_to_the_first_name():
    positions = {"moodle1": pos(7), "moodle2": pos(12), "moodle3": pos(12)}
    assert decide("moodle2", positions)["action"] == "bootstrap"
    assert decide("moodle3", positions)["node"] == "moodle2"


def test_safe_to_bootstrap_mark_breaks_a_tie_before_the_designated_node():
    positions = {"moodle1": pos(12), "moodle2": pos(12), "moodle3": pos(12, safe=True)}
    assert decide("moodle3", positions)["action"] == "bootstrap"
    assert decide("moodle1", positions)["node"] == "moodle3"


def test_safe_to_bootstrap_mark_never_beats_a_higher_seqno():
    positions = {"moodle1": pos(20), "moodle2": pos(12, safe=True), "moodle3": pos(11)}
    assert decide("moodle2", positions)["node"] == "moodle1"


def test_fresh_designated_node_never_bootstraps_over_nodes_with_data():
    positions = {"moodle1": fresh(), "moodle2": pos(3), "moodle3": pos(4)}
    result = decide("moodle1", positions)
    assert result["action"] == "wait" and result["node"] == "moodle3"


def test_unknown_position_refuses_and_names_the_nodes():
    positions = {"moodle1": pos(12), "moodle2": None, "moodle3": pos(3)}
    result = decide("moodle1", positions)
    assert result["action"] == "refuse"
    assert "moodle2" in result["reason"] and "moodle3" not in result["reason"].split("of ")[1]


def test_unknown_positions_refuse_even_for_a_brand_new_looking_node():
    positions = {"moodle1": fresh(), "moodle2": None, "moodle3": None}
    assert decide("moodle1", positions)["action"] == "refuse"


def test_force_bootstrap_node_overrides_unknown_positions():
    positions = {"moodle1": pos(12), "moodle2": None, "moodle3": None}
    assert decide("moodle2", positions, force="moodle2")["action"] == "bootstrap"
    result = decide("moodle1", positions, force="moodle2")
    assert result["action"] == "wait" and result["node"] == "moodle2"


def test_force_bootstrap_node_must_be_a_galera_node():
    assert decide("moodle1", {n: None for n in NODES}, force="lb1")["action"] == "refuse"


def test_different_cluster_histories_refuse():
    positions = {"moodle1": pos(12), "moodle2": pos(30, uuid=OTHER_UUID), "moodle3": pos(3)}
    result = decide("moodle2", positions)
    assert result["action"] == "refuse" and OTHER_UUID in result["reason"]


def test_chosen_node_refuses_while_a_peer_runs_galera_with_unreadable_state():
    positions = {"moodle1": pos(12), "moodle2": pos(11), "moodle3": pos(10)}
    live = {"moodle2": {"primary": None, "port_open": True}, "moodle3": down("moodle3")["moodle3"]}
    result = decide("moodle1", positions, live)
    assert result["action"] == "refuse" and "moodle2" in result["reason"]


def test_running_non_primary_peer_does_not_block_the_chosen_node():
    positions = {"moodle1": pos(12), "moodle2": pos(11, running=True, source="status"),
                 "moodle3": pos(10)}
    live = {"moodle2": {"primary": False, "port_open": True}, "moodle3": down("moodle3")["moodle3"]}
    assert decide("moodle1", positions, live)["action"] == "bootstrap"


def test_not_chosen_node_waits_even_when_its_peer_state_is_unreadable():
    positions = {"moodle1": pos(12), "moodle2": pos(11), "moodle3": pos(10)}
    live = {"moodle1": {"primary": None, "port_open": True}, "moodle3": down("moodle3")["moodle3"]}
    result = decide("moodle2", positions, live)
    assert result["action"] == "wait" and result["node"] == "moodle1"


# --------------------------------------------------------------------------- plan


def stopped():
    return {"running": False, "reachable": False, "wsrep_on": None, "cluster_status": None,
            "local_state": None, "local_state_comment": None, "cluster_size": None}


def synced(size=3):
    return {"running": True, "reachable": True, "wsrep_on": True, "cluster_status": "Primary",
            "local_state": galera.STATE_SYNCED, "local_state_comment": "Synced",
            "cluster_size": size}


def standalone():
    """The package's first start: a server without wsrep."""
    return dict(synced(), wsrep_on=False, cluster_status="Disconnected", local_state=0)


def non_primary():
    return dict(synced(), cluster_status="non-Primary", local_state=0,
                local_state_comment="Initialized")


def hung():
    """Running, not answering: starting, in a state transfer, or waiting for a Primary view."""
    return dict(stopped(), running=True)


def plan(local, live=None, positions=None, me="moodle1", force=None):
    return galera.member_plan(me, NODES, "moodle1", local, live, positions, force)


def with_primary_peer():
    return {"moodle2": prim(), "moodle3": down("moodle3")["moodle3"]}


def test_plan_synced_member_has_nothing_to_do_and_needs_no_peer():
    result = plan(synced())
    assert result["action"] == "synced" and result["stop"] is None
    assert "Primary and Synced (cluster size 3)" in result["reason"]


def test_plan_donor_in_the_primary_component_waits_for_synced():
    donor = dict(synced(), local_state=galera.STATE_DONOR, local_state_comment="Donor/Desynced")
    result = plan(donor)
    assert result["action"] == "wait_synced" and "Donor/Desynced" in result["reason"]


def test_plan_not_primary_asks_to_probe_the_peers_first():
    for local in (stopped(), standalone(), non_primary(), hung()):
        assert plan(local)["action"] == "probe"


def test_plan_starting_server_with_a_primary_peer_finishes_joining():
    result = plan(hung(), with_primary_peer())
    assert result["action"] == "finish_join" and result["stop"] is None


def test_plan_stopped_node_with_a_primary_peer_joins_without_positions():
    result = plan(stopped(), with_primary_peer())
    assert result == {"action": "join", "node": "moodle2", "stop": None,
                      "reason": "a Primary component exists (moodle2): join it"}


def test_plan_standalone_server_is_stopped_then_joins_a_primary_peer():
    result = plan(standalone(), with_primary_peer())
    assert result["action"] == "join"
    assert result["stop"] == "standalone server started by the package"


def test_plan_non_primary_server_with_a_primary_peer_joins_without_a_stop():
    # The join restarts it.
    result = plan(non_primary(), with_primary_peer())
    assert result["action"] == "join" and result["stop"] is None


def test_plan_without_a_primary_anywhere_gathers_the_positions():
    result = plan(stopped(), down("moodle2", "moodle3"))
    assert result["action"] == "gather" and result["stop"] is None


def test_plan_standalone_server_is_stopped_before_the_positions_are_gathered():
    result = plan(standalone(), down("moodle2", "moodle3"))
    assert result["action"] == "gather"
    assert result["stop"] == "standalone server started by the package"


def test_plan_server_outside_any_primary_component_is_stopped_before_gathering():
    for local in (non_primary(), hung()):
        result = plan(local, down("moodle2", "moodle3"))
        assert result["action"] == "gather"
        assert result["stop"] == "server outside any Primary component"


def test_plan_with_positions_bootstraps_the_most_advanced_node():
    positions = {"moodle1": pos(12), "moodle2": pos(11), "moodle3": pos(10)}
    result = plan(stopped(), down("moodle2", "moodle3"), positions)
    assert result["action"] == "bootstrap" and result["node"] == "moodle1"
    assert result["reason"] == "highest seqno 12" and result["stop"] is None


def test_plan_with_positions_waits_for_the_chosen_node_then_joins():
    positions = {"moodle1": pos(12), "moodle2": pos(11), "moodle3": pos(10)}
    result = plan(stopped(), down("moodle1", "moodle3"), positions, me="moodle2")
    assert result["action"] == "wait" and result["node"] == "moodle1"


def test_plan_with_an_unknown_position_refuses():
    positions = {"moodle1": pos(12), "moodle2": None, "moodle3": pos(10)}
    result = plan(stopped(), down("moodle2", "moodle3"), positions)
    assert result["action"] == "refuse" and "moodle2" in result["reason"]


def test_plan_with_positions_follows_a_forced_bootstrap_node():
    positions = {"moodle1": pos(12), "moodle2": None, "moodle3": None}
    result = plan(stopped(), down("moodle1", "moodle3"), positions, me="moodle2",
                  force="moodle2")
    assert result["action"] == "bootstrap"


def test_plan_with_positions_joins_a_component_that_appeared_while_gathering():
    positions = {"moodle1": pos(12), "moodle2": pos(11), "moodle3": pos(10)}
    result = plan(stopped(), with_primary_peer(), positions)
    assert result["action"] == "join" and result["node"] == "moodle2"


def test_plan_with_positions_leaves_the_local_server_to_the_actions():
    # The server was stopped (if need be) before the positions were gathered: whatever it
    # shows now, the positions decide; a bootstrap stops a running server again.
    positions = {"moodle1": pos(12), "moodle2": pos(11), "moodle3": pos(10)}
    for local in (synced(1), non_primary(), hung()):
        result = plan(local, down("moodle2", "moodle3"), positions)
        assert result["action"] == "bootstrap" and result["stop"] is None


def test_plan_own_position_primary_means_nothing_to_do():
    positions = {n: pos(5) for n in NODES}
    positions["moodle1"] = pos(5, running=True, primary=True, source="status")
    assert plan(stopped(), down("moodle2", "moodle3"), positions)["action"] == "none"


# --------------------------------------------------------------------------- module


@pytest.fixture
def mod(monkeypatch):
    monkeypatch.setattr(galera, "__salt__", {}, raising=False)
    monkeypatch.setattr(galera, "__context__", {}, raising=False)
    monkeypatch.setattr(galera, "__opts__", {}, raising=False)
    return galera


def test_set_safe_to_bootstrap_marks_the_file_and_keeps_the_rest(mod, tmp_path):
    path = tmp_path / "grastate.dat"
    path.write_text(data("grastate-crashed"))
    assert mod.set_safe_to_bootstrap(str(path)) is True
    gra = mod.parse_grastate(path.read_text())
    assert gra["safe_to_bootstrap"] is True
    assert gra["uuid"] == mod.parse_grastate(data("grastate-crashed"))["uuid"]
    assert mod.set_safe_to_bootstrap(str(path)) is False


def test_recover_position_refuses_while_a_server_runs(mod, monkeypatch):
    monkeypatch.setattr(mod, "_server_pids", lambda: [1234])
    with pytest.raises(CommandExecutionError, match="running"):
        mod.recover_position()


def test_recover_position_parses_the_server_log_and_runs_as_mysql(mod, monkeypatch):
    monkeypatch.setattr(mod, "_server_pids", lambda: [])
    monkeypatch.setattr(mod, "_first_existing", lambda paths: paths[0])
    calls = []

    def run_all(cmd, python_shell=None, **kwargs):
        calls.append(cmd)
        assert python_shell is False
        return {"retcode": 0, "stdout": "", "stderr": data("wsrep-recover-after-kill")}

    mod.__salt__["cmd.run_all"] = run_all
    found = mod.recover_position()
    assert found == mod.parse_recovered_position(data("wsrep-recover-after-kill"))
    assert "--wsrep-recover" in calls[0] and "--user=mysql" in calls[0]


def test_recover_position_without_a_position_raises_with_the_log_tail(mod, monkeypatch):
    monkeypatch.setattr(mod, "_server_pids", lambda: [])
    monkeypatch.setattr(mod, "_first_existing", lambda paths: paths[0])
    mod.__salt__["cmd.run_all"] = lambda cmd, **kw: {
        "retcode": 1, "stdout": "", "stderr": "[ERROR] InnoDB: cannot lock ibdata1\n"}
    with pytest.raises(CommandExecutionError, match="ibdata1"):
        mod.recover_position()


def test_position_of_a_crashed_node_comes_from_recovery(mod, monkeypatch):
    monkeypatch.setattr(mod, "local_state", lambda socket_path: {"running": False})
    monkeypatch.setattr(mod, "grastate",
                        lambda datadir: mod.parse_grastate(data("grastate-crashed")))
    monkeypatch.setattr(mod, "recover_position", lambda user: {"uuid": UUID, "seqno": 77})
    rec = mod.position()
    assert rec["source"] == "recovery" and rec["seqno"] == 77 and rec["running"] is False
    assert mod.position(use_cached=True) == rec
    monkeypatch.setattr(mod.time, "time", lambda: rec["time"] + 30)
    again = mod.position(use_cached=True, stamp=True)
    assert again["time"] == rec["time"] + 30 and again["seqno"] == 77


def test_position_of_a_cleanly_stopped_node_comes_from_grastate(mod, monkeypatch):
    monkeypatch.setattr(mod, "local_state", lambda socket_path: {"running": False})
    gra = mod.parse_grastate(data("grastate-clean-shutdown-last-node"))
    monkeypatch.setattr(mod, "grastate", lambda datadir: gra)
    monkeypatch.setattr(mod, "recover_position", lambda user: pytest.fail("no recovery needed"))
    rec = mod.position()
    assert rec["source"] == "grastate" and rec["seqno"] == gra["seqno"]
    assert rec["safe_to_bootstrap"] is True


def test_position_of_a_running_member_comes_from_its_status(mod, monkeypatch):
    monkeypatch.setattr(mod, "_server_pids", lambda: [42])
    monkeypatch.setattr(mod, "grastate", lambda datadir: None)
    rows = data("show-status-wsrep-synced")

    def query(sql, socket_path=None, timeout=10):
        if "VARIABLES" in sql:
            return [["wsrep_on", "ON"], ["read_only", "OFF"]]
        return [line.split("\t") for line in rows.splitlines() if line]

    monkeypatch.setattr(mod, "query", query)
    rec = mod.position()
    st = mod.parse_rows(rows)
    assert rec["source"] == "status" and rec["primary"] and rec["synced"]
    assert rec["seqno"] == int(st["wsrep_last_committed"])
    assert rec["uuid"] == st["wsrep_local_state_uuid"]


def test_grastate_is_read_from_the_datadir_it_is_given(mod, tmp_path):
    (tmp_path / "grastate.dat").write_text(data("grastate-crashed"))
    assert mod.grastate(datadir=str(tmp_path))["seqno"] == -1
    assert mod.set_safe_to_bootstrap(datadir=str(tmp_path)) is True
    assert mod.grastate(str(tmp_path / "grastate.dat"))["safe_to_bootstrap"] is True


def test_query_connects_over_the_socket_it_is_given(mod, monkeypatch):
    monkeypatch.setattr(mod, "_first_existing", lambda paths: paths[0])
    calls = []

    def run_all(cmd, python_shell=None, **kwargs):
        calls.append(cmd)
        return {"retcode": 0, "stdout": "ON\n", "stderr": ""}

    mod.__salt__["cmd.run_all"] = run_all
    assert mod.query("SELECT @@wsrep_on", socket_path="/run/other.sock") == [["ON"]]
    assert mod.query("SELECT 1", socket_path=None) == [["ON"]]
    assert calls[0][calls[0].index("-S") + 1] == "/run/other.sock"
    assert calls[1][calls[1].index("-S") + 1] == mod.SOCKET


def test_position_passes_socket_datadir_and_user_down(mod, monkeypatch):
    seen = {}
    monkeypatch.setattr(mod, "local_state",
                        lambda socket_path: seen.update(socket=socket_path) or {"running": False})
    monkeypatch.setattr(mod, "grastate", lambda datadir: seen.update(datadir=datadir)
                        or mod.parse_grastate(data("grastate-crashed")))
    monkeypatch.setattr(mod, "recover_position",
                        lambda user: seen.update(user=user) or {"uuid": UUID, "seqno": 3})
    mod.position(socket_path="/run/x.sock", datadir="/srv/db", user="dbuser")
    assert seen == {"socket": "/run/x.sock", "datadir": "/srv/db", "user": "dbuser"}


# --------------------------------------------------------------------------- state


class Fake:
    """The node as the state sees it: local server, peers, mine, commands."""

    def __init__(self, local, live=None, mine=None, own=None):
        self.local = [local] if isinstance(local, dict) else list(local)
        self.live = live or down("moodle2", "moodle3")
        self.mine = mine or {}
        self.own = own or fresh()
        self.commands = []
        self.sent = []
        self.innodb_open = True
        # (function, keyword arguments) of every call that locates the local server
        self.server_calls = []

    def salt(self):
        def called(fun, **kwargs):
            self.server_calls.append((fun, kwargs))

        def local_state(socket_path):
            called("local_state", socket_path=socket_path)
            return self.local.pop(0) if len(self.local) > 1 else self.local[0]

        def position(use_cached=False, recover=True, **server):
            called("position", **server)
            return self.own

        def send(*args, **kwargs):
            called("mine.send", **{k: v for k, v in kwargs.items()
                                   if k in ("socket_path", "datadir", "user")})
            self.sent.append((args, kwargs))

        def innodb_open(datadir):
            called("innodb_open", datadir=datadir)
            return self.innodb_open

        def grastate(datadir):
            called("grastate", datadir=datadir)
            return galera.parse_grastate(data("grastate-crashed"))

        def set_safe_to_bootstrap(datadir):
            called("set_safe_to_bootstrap", datadir=datadir)
            self.commands.append(["mark-safe"])

        def run_all(cmd, python_shell=None, **kwargs):
            assert python_shell is False
            self.commands.append(cmd)
            return {"retcode": 0, "stdout": "", "stderr": ""}

        return {
            "galera.local_state": local_state,
            "galera.position": position,
            "galera.peer_live": lambda ip, cc, repl: self.live[
                {"172.30.77.11": "moodle1", "172.30.77.12": "moodle2",
                 "172.30.77.13": "moodle3"}[ip]],
            "galera.member_plan": galera.member_plan,
            "galera.synced": galera.synced,
            "galera.busy_peers": galera.busy_peers,
            "galera.innodb_open": innodb_open,
            "galera.is_running": lambda: False,
            "galera.grastate": grastate,
            "galera.set_safe_to_bootstrap": set_safe_to_bootstrap,
            "mine.get": lambda tgt, fun, tgt_type=None: dict(self.mine),
            "mine.send": send,
            "cmd.run_all": run_all,
        }


def run_state(fake, monkeypatch, name="moodle1", test=False, **kwargs):
    monkeypatch.setattr(galera_state, "__salt__", fake.salt(), raising=False)
    monkeypatch.setattr(galera_state, "__opts__", {"test": test}, raising=False)
    monkeypatch.setattr(galera_state, "POLL", 0)
    monkeypatch.setattr(galera_state, "JOIN_STAGGER", 0)
    monkeypatch.setattr(galera_state.time, "time", lambda: 1000.0)
    return galera_state.cluster_member(name, NODE_IPS, "moodle1", timeout=1, peer_wait=0,
                                       **kwargs)


def recent(rec):
    rec = dict(rec)
    rec["time"] = 990
    return rec


def test_state_on_a_synced_member_changes_nothing(monkeypatch):
    fake = Fake(synced())
    ret = run_state(fake, monkeypatch)
    assert ret["result"] is True and ret["changes"] == {}
    assert fake.commands == [] and fake.sent == []


def test_state_joins_when_a_peer_is_primary(monkeypatch):
    fake = Fake([stopped(), synced()],
                live={"moodle2": prim(),
                      "moodle3": {"primary": False, "port_open": False}})
    ret = run_state(fake, monkeypatch)
    assert ret["result"] is True and ret["changes"]
    assert ["systemctl", "start", "mariadb"] in fake.commands
    assert ["galera_new_cluster"] not in fake.commands


def test_state_bootstraps_the_chosen_node_after_marking_it_safe(monkeypatch):
    fake = Fake([stopped(), stopped(), synced(1)], own=pos(12),
                mine={"moodle2": recent(pos(11)), "moodle3": recent(pos(10))})
    ret = run_state(fake, monkeypatch)
    assert ret["result"] is True, ret["comment"]
    assert fake.commands.index(["mark-safe"]) < fake.commands.index(["galera_new_cluster"])
    assert fake.sent, "the node publishes its position to the mine"


def test_state_refuses_with_unknown_peer_positions_and_touches_nothing(monkeypatch):
    fake = Fake(stopped(), own=pos(12), mine={"moodle2": recent(pos(11))})
    ret = run_state(fake, monkeypatch)
    assert ret["result"] is False and "moodle3" in ret["comment"]
    assert fake.commands == []


def test_state_treats_stale_mine_positions_as_unknown(monkeypatch):
    old = pos(11)
    old["time"] = 1  # older than position_max_age
    fake = Fake(stopped(), own=pos(12), mine={"moodle2": old, "moodle3": recent(pos(10))})
    ret = run_state(fake, monkeypatch)
    assert ret["result"] is False and "moodle2" in ret["comment"]


def test_state_test_mode_reports_the_bootstrap_without_doing_it(monkeypatch):
    fake = Fake(stopped(), own=pos(12),
                mine={"moodle2": recent(pos(11)), "moodle3": recent(pos(10))})
    ret = run_state(fake, monkeypatch, test=True)
    assert ret["result"] is None and "bootstrap" in ret["comment"]
    assert fake.commands == [] and fake.sent == []


def test_state_stops_the_standalone_server_from_the_package_first(monkeypatch):
    fake = Fake([standalone(), stopped(), synced(1)],
                mine={"moodle2": recent(fresh()), "moodle3": recent(fresh())})
    ret = run_state(fake, monkeypatch)
    assert ret["result"] is True, ret["comment"]
    assert fake.commands[0] == ["systemctl", "stop", "mariadb"]
    assert ["galera_new_cluster"] in fake.commands
    assert ret["changes"]["stopped"] == {
        "old": "standalone server started by the package", "new": "stopped"}


def test_state_not_chosen_node_waits_for_the_primary_then_joins(monkeypatch):
    fake = Fake([stopped(), synced()], own=pos(10),
                mine={"moodle1": recent(pos(12)), "moodle3": recent(pos(11))})
    probes = iter([False, False, False, True])

    def peer_live(ip, cc, repl):
        if ip == "172.30.77.11":
            up = next(probes, True)
            return {"primary": up, "port_open": True, "state": 4 if up else None}
        return {"primary": False, "port_open": False}

    salt = fake.salt()
    salt["galera.peer_live"] = peer_live
    monkeypatch.setattr(fake, "salt", lambda: salt)
    ret = run_state(fake, monkeypatch, name="moodle2")
    assert ret["result"] is True, ret["comment"]
    assert ["systemctl", "start", "mariadb"] in fake.commands
    assert ["galera_new_cluster"] not in fake.commands
    # it kept its position fresh in the mine while it waited
    assert len(fake.sent) >= 3


def test_state_running_non_primary_chosen_node_is_stopped_then_bootstrapped(monkeypatch):
    fake = Fake([non_primary(), synced(1)], own=pos(12, running=True, source="status"),
                mine={"moodle2": recent(pos(11)), "moodle3": recent(pos(10))})
    ret = run_state(fake, monkeypatch)
    assert ret["result"] is True, ret["comment"]
    stop = fake.commands.index(["systemctl", "stop", "mariadb"])
    assert stop < fake.commands.index(["galera_new_cluster"])


def test_state_locates_the_server_with_the_socket_datadir_and_user_it_is_given(monkeypatch):
    fake = Fake([hung(), stopped(), synced(1)], own=pos(12),
                mine={"moodle2": recent(pos(11)), "moodle3": recent(pos(10))})
    fake.innodb_open = False
    server = {"socket_path": "/run/test/mysqld.sock", "datadir": "/srv/db", "user": "dbuser"}
    ret = run_state(fake, monkeypatch, **server)
    assert ret["result"] is True, ret["comment"]
    assert {fun for fun, _ in fake.server_calls} == {
        "local_state", "position", "mine.send", "innodb_open", "grastate",
        "set_safe_to_bootstrap"}
    for fun, kwargs in fake.server_calls:
        assert kwargs, fun
        for key, value in kwargs.items():
            assert value == server[key], (fun, key, value)


def test_state_test_mode_reports_the_stop_without_doing_it(monkeypatch):
    fake = Fake(standalone(), mine={"moodle2": recent(fresh()), "moodle3": recent(fresh())})
    ret = run_state(fake, monkeypatch, test=True)
    assert ret["result"] is None
    assert ret["changes"] == {"galera": {"stop": "standalone server started by the package"}}
    assert fake.commands == [] and fake.sent == []


def test_state_waits_for_synced_when_already_in_the_primary_component(monkeypatch):
    joining = dict(synced(), local_state=1, local_state_comment="Joining")
    fake = Fake([joining, synced()])
    ret = run_state(fake, monkeypatch)
    assert ret["result"] is True and ret["comment"] == "moodle1 reached Synced (size 3)"
    assert fake.commands == [] and fake.sent == []


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))

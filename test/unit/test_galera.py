"""Unit tests for _modules/galera.py and _states/galera.py.

Parsers are fed with outputs recorded from MariaDB 10.11 / Galera 4 in the lab
(test/data/galera/; the file names say which host and situation they come from). The
state's plan and the bootstrap decision are pure functions and are tested case by case; the
state runs on the real module functions with the server, systemctl and the mine replaced by
fakes.
"""

import sys
import time

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


def _recorded_query(rows):
    """galera.query stand-in for a running server: wsrep on, writable, SHOW STATUS ``rows``."""

    def query(sql, socket_path=None, timeout=10):
        if "VARIABLES" in sql:
            return [["wsrep_on", "ON"], ["read_only", "OFF"]]
        return [line.split("\t") for line in rows.splitlines() if line]

    return query


def pos(seqno, uuid=UUID, safe=False, **extra):
    rec = {"time": 0, "running": False, "primary": False, "synced": False, "uuid": uuid,
           "seqno": seqno, "safe_to_bootstrap": safe, "source": "grastate"}
    rec.update(extra)
    return rec


def fresh():
    return pos(None, uuid=None, source="none")


def down(*peers):
    """Peers whose clustercheck answers "mysqld: down" (the host is up, MariaDB is not)."""
    return {p: {"primary": False, "port_open": False} for p in peers}


def gone(*peers):
    """Peers where nothing answers at all: neither clustercheck nor the replication port."""
    return {p: {"primary": None, "port_open": False, "code": None, "login_refused": False}
            for p in peers}


def refusing():
    """A Galera peer whose clustercheck cannot log in to its server (wrong credentials)."""
    return {"primary": None, "port_open": True, "code": 503, "state": None,
            "login_refused": True}


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


def test_live_primary_component_wins_over_force_bootstrap():
    live = {"moodle2": prim(), "moodle3": down("moodle3")["moodle3"]}
    result = decide("moodle1", {n: None for n in NODES}, live,
                    force={"node": "moodle1", "seqno": 12})
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


def test_force_bootstrap_overrides_unknown_positions_when_no_peer_is_reachable():
    positions = {"moodle1": pos(12), "moodle2": None, "moodle3": None}
    result = decide("moodle1", positions, gone("moodle2", "moodle3"),
                    force={"node": "moodle1", "seqno": 12})
    assert result["action"] == "bootstrap" and result["node"] == "moodle1"
    # it prints the positions it overrode
    assert "overriding the positions" in result["reason"]
    assert f"moodle1={UUID}:12" in result["reason"] and "moodle2=unknown" in result["reason"]


def test_force_bootstrap_with_the_uuid_must_match_it_too():
    positions = {"moodle1": pos(12), "moodle2": None, "moodle3": None}
    live = gone("moodle2", "moodle3")
    ok = decide("moodle1", positions, live, force={"node": "moodle1", "seqno": 12, "uuid": UUID})
    assert ok["action"] == "bootstrap"
    other = decide("moodle1", positions, live,
                   force={"node": "moodle1", "seqno": 12, "uuid": OTHER_UUID})
    assert other["action"] == "refuse" and "does not match" in other["reason"]


def test_force_bootstrap_is_refused_while_any_peer_answers_even_not_primary():
    positions = {"moodle1": pos(12), "moodle2": None, "moodle3": None}
    live = {"moodle2": dict(down("moodle2")["moodle2"], code=503),
            "moodle3": {"primary": None, "port_open": True, "code": None}}
    result = decide("moodle1", positions, live, force={"node": "moodle1", "seqno": 12})
    assert result["action"] == "refuse"
    assert "moodle2 (clustercheck answers)" in result["reason"]
    assert "moodle3 (replication port open)" in result["reason"]


def test_stale_force_bootstrap_is_refused_with_the_value_it_would_need_now():
    # Left in pillar from an earlier outage: the node has committed since.
    positions = {"moodle1": pos(15), "moodle2": None, "moodle3": None}
    result = decide("moodle1", positions, gone("moodle2", "moodle3"),
                    force={"node": "moodle1", "seqno": 12})
    assert result["action"] == "refuse"
    assert "does not match this outage" in result["reason"]
    assert f"moodle1 is now at {UUID}:15" in result["reason"]
    assert "galera:force_bootstrap: {node: moodle1, seqno: 15}" in result["reason"]


def test_old_style_force_bootstrap_node_name_is_refused_with_the_new_form():
    positions = {"moodle1": pos(12), "moodle2": None, "moodle3": None}
    result = decide("moodle1", positions, gone("moodle2", "moodle3"), force="moodle1")
    assert result["action"] == "refuse" and "bare node name" in result["reason"]
    assert "galera:force_bootstrap: {node: moodle1, seqno: 12}" in result["reason"]


def test_force_bootstrap_naming_another_node_is_not_honoured_here():
    positions = {"moodle1": None, "moodle2": pos(12), "moodle3": None}
    result = decide("moodle2", positions, gone("moodle1", "moodle3"),
                    force={"node": "moodle1", "seqno": 12})
    assert result["action"] == "refuse" and "apply the state on moodle1" in result["reason"]


def test_force_bootstrap_must_name_a_galera_node_and_an_integer_seqno():
    live = gone("moodle2", "moodle3")
    bad_node = decide("moodle1", {n: None for n in NODES}, live,
                      force={"node": "lb1", "seqno": 1})
    assert bad_node["action"] == "refuse" and "not a galera node" in bad_node["reason"]
    for seqno in ("12", True, None):
        bad = decide("moodle1", {"moodle1": pos(12), "moodle2": None, "moodle3": None}, live,
                     force={"node": "moodle1", "seqno": seqno})
        assert bad["action"] == "refuse" and "integer seqno" in bad["reason"]


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
    return dict(stopped(), running=True, innodb_open=False)


def slow():
    """Running with InnoDB open but not answering in time: e.g. the last node under a DDL."""
    return dict(stopped(), running=True, innodb_open=True,
                error="galera: query failed: ERROR 2013 (HY000): Lost connection to server")


def plan(local, live=None, positions=None, me="moodle1", force=None, schemas=None):
    return galera.member_plan(me, NODES, "moodle1", local, live, positions, force, schemas)


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
    result = plan(non_primary(), down("moodle2", "moodle3"))
    assert result["action"] == "gather"
    assert result["stop"] == (
        "server outside any Primary component (wsrep_cluster_status non-Primary)")
    result = plan(hung(), down("moodle2", "moodle3"))
    assert result["action"] == "gather"
    assert result["stop"] == (
        "server waiting for a Primary view (not answering, InnoDB not open)")


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


def test_plan_with_positions_follows_a_forced_bootstrap():
    positions = {"moodle1": None, "moodle2": pos(12), "moodle3": None}
    result = plan(stopped(), gone("moodle1", "moodle3"), positions, me="moodle2",
                  force={"node": "moodle2", "seqno": 12})
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
    monkeypatch.setattr(mod, "query", _recorded_query(rows))
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
        # what galera.non_galera_schemas finds in the datadir
        self.schemas = []
        # what galera.clear_bad_gvwstate moved aside, if anything
        self.gvwstate = None
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

        def non_galera_schemas(datadir):
            called("non_galera_schemas", datadir=datadir)
            return list(self.schemas)

        def clear_bad_gvwstate(datadir):
            called("clear_bad_gvwstate", datadir=datadir)
            self.commands.append(["clear-bad-gvwstate"])
            return self.gvwstate

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
            "galera.non_galera_schemas": non_galera_schemas,
            "galera.clear_bad_gvwstate": clear_bad_gvwstate,
            "galera.decision_ready": galera.decision_ready,
            "galera.describe_positions": galera.describe_positions,
            "galera.outside_primary": galera.outside_primary,
            "galera.login_refused_peers": galera.login_refused_peers,
            "galera.has_data": galera.has_data,
            "mine.get": lambda tgt, fun, tgt_type=None: dict(self.mine),
            "mine.send": send,
            "cmd.run_all": run_all,
        }


def run_state(fake, monkeypatch, name="moodle1", test=False, regroup_wait=0, **kwargs):
    monkeypatch.setattr(galera_state, "__salt__", fake.salt(), raising=False)
    monkeypatch.setattr(galera_state, "__opts__", {"test": test}, raising=False)
    monkeypatch.setattr(galera_state, "POLL", 0)
    monkeypatch.setattr(galera_state, "JOIN_STAGGER", 0)
    monkeypatch.setattr(galera_state, "REGROUP_WAIT", regroup_wait)
    monkeypatch.setattr(galera_state.time, "time", lambda: 1000.0)
    kwargs = {"timeout": 1, "peer_wait": 0, **kwargs}
    return galera_state.cluster_member(name, NODE_IPS, "moodle1", **kwargs)


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


def _only_moodle1_answers(fake, monkeypatch, answer):
    """galera.peer_live of FAKE: moodle1 gives answer() at each probe, the other peers are down."""
    def peer_live(ip, cc, repl):
        if ip == "172.30.77.11":
            return answer()
        return {"primary": False, "port_open": False}

    salt = fake.salt()
    salt["galera.peer_live"] = peer_live
    monkeypatch.setattr(fake, "salt", lambda: salt)


def test_state_not_chosen_node_waits_for_the_primary_then_joins(monkeypatch):
    fake = Fake([stopped(), synced()], own=pos(10),
                mine={"moodle1": recent(pos(12)), "moodle3": recent(pos(11))})
    probes = iter([False, False, False, True])

    def moodle1():
        up = next(probes, True)
        return {"primary": up, "port_open": True, "state": 4 if up else None}

    _only_moodle1_answers(fake, monkeypatch, moodle1)
    ret = run_state(fake, monkeypatch, name="moodle2")
    assert ret["result"] is True, ret["comment"]
    assert ["systemctl", "start", "mariadb"] in fake.commands
    assert ["galera_new_cluster"] not in fake.commands
    # it kept its position fresh in the mine while it waited
    assert len(fake.sent) >= 3


def test_state_running_non_primary_chosen_node_is_stopped_then_bootstrapped(monkeypatch):
    fake = Fake([non_primary(), stopped(), synced(1)], own=pos(12, running=True, source="status"),
                mine={"moodle2": recent(pos(11)), "moodle3": recent(pos(10))})
    ret = run_state(fake, monkeypatch)
    assert ret["result"] is True, ret["comment"]
    stop = fake.commands.index(["systemctl", "stop", "mariadb"])
    assert stop < fake.commands.index(["galera_new_cluster"])


def test_state_gives_a_member_left_non_primary_time_to_regroup(monkeypatch):
    # Every member non-Primary after a view installation timed out (lab, scale-in under
    # load): Galera re-forms the Primary component itself; nothing is stopped meanwhile.
    fake = Fake([non_primary(), non_primary(), non_primary(), synced()],
                live={"moodle2": {"primary": False, "port_open": True},
                      "moodle3": {"primary": False, "port_open": True}},
                own=pos(12, running=True, source="status"),
                mine={"moodle2": recent(pos(11)), "moodle3": recent(pos(10))})
    ret = run_state(fake, monkeypatch, regroup_wait=30)
    assert ret["result"] is True and "Primary and Synced" in ret["comment"], ret["comment"]
    assert fake.commands == [] and ret["changes"] == {}


def test_state_joins_a_primary_peer_that_appears_while_regrouping(monkeypatch):
    fake = Fake([non_primary(), non_primary(), synced()],
                live={"moodle2": {"primary": False, "port_open": True},
                      "moodle3": {"primary": False, "port_open": True}})
    calls = []
    salt = fake.salt()
    peer_live = salt["galera.peer_live"]

    def live_after_one_round(ip, *args):
        calls.append(ip)
        return prim() if len(calls) > 2 else peer_live(ip, *args)

    salt["galera.peer_live"] = live_after_one_round
    monkeypatch.setattr(fake, "salt", lambda: salt)
    ret = run_state(fake, monkeypatch, regroup_wait=30)
    assert ret["result"] is True, ret["comment"]
    assert ["systemctl", "restart", "mariadb"] in fake.commands
    assert ["galera_new_cluster"] not in fake.commands


def test_state_regroup_wait_is_not_taken_by_a_server_waiting_after_an_outage(monkeypatch):
    # Not answering, InnoDB closed (autostart after a power loss): no Primary component to
    # regroup into; the positions decide at once.
    fake = Fake([hung(), stopped(), synced(1)], own=pos(12),
                mine={"moodle2": recent(pos(11)), "moodle3": recent(pos(10))})
    fake.innodb_open = False
    ret = run_state(fake, monkeypatch, regroup_wait=3600)
    assert ret["result"] is True, ret["comment"]
    assert ["galera_new_cluster"] in fake.commands


def test_state_locates_the_server_with_the_socket_datadir_and_user_it_is_given(monkeypatch):
    fake = Fake([hung(), stopped(), synced(1)], own=pos(12),
                mine={"moodle2": recent(pos(11)), "moodle3": recent(pos(10))})
    fake.innodb_open = False
    server = {"socket_path": "/run/test/mysqld.sock", "datadir": "/srv/db", "user": "dbuser"}
    ret = run_state(fake, monkeypatch, **server)
    assert ret["result"] is True, ret["comment"]
    assert {fun for fun, _ in fake.server_calls} == {
        "local_state", "position", "mine.send", "innodb_open", "grastate",
        "set_safe_to_bootstrap", "non_galera_schemas", "clear_bad_gvwstate"}
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



# --------------------------------------------------------------------------- existing database
#
# A MariaDB installed and used before the formula: no grastate.dat (or the zero uuid) and user
# schemas in the datadir. A join replaces the datadir by SST; the formula must not do that.


def make_datadir(root, grastate_text=None):
    """A datadir as mariadb-install-db leaves it, plus two user schemas and server dirs."""
    for schema, files in {
        "mysql": ["db.opt", "user.frm", "innodb_table_stats.ibd"],
        "performance_schema": ["db.opt"],
        "sys": ["db.opt", "sys_config.frm"],
        "test": ["db.opt"],
        "shop@002ddata": ["orders.frm", "orders.ibd"],  # the schema `shop-data`
        "legacy_app": ["db.opt"],
        "#innodb_temp": ["temp_1.ibt"],
        "#innodb_redo": ["ib_redo1"],
        "#mysql50#old-name": ["db.opt"],
        "lost+found": [],
        "not_a_schema": ["notes.txt"],
    }.items():
        (root / schema).mkdir()
        for name in files:
            (root / schema / name).write_text("")
    for name in ("ibdata1", "ib_logfile0", "aria_log.00000001"):
        (root / name).write_text("")
    if grastate_text is not None:
        (root / "grastate.dat").write_text(grastate_text)
    return root


def test_user_schemas_are_found_in_the_datadir_without_a_server(mod, tmp_path):
    make_datadir(tmp_path)
    assert mod.schemas_in_datadir(str(tmp_path)) == ["legacy_app", "shop-data"]


def test_a_datadir_without_galera_state_holds_a_non_galera_database(mod, tmp_path):
    make_datadir(tmp_path)
    assert mod.non_galera_schemas(str(tmp_path)) == ["legacy_app", "shop-data"]
    zero = data("grastate-crashed").replace(
        mod.parse_grastate(data("grastate-crashed"))["uuid"], ZERO)
    (tmp_path / "grastate.dat").write_text(zero)
    assert mod.non_galera_schemas(str(tmp_path)) == ["legacy_app", "shop-data"]


def test_a_datadir_with_cluster_history_is_a_galera_member_whatever_its_schemas(mod, tmp_path):
    make_datadir(tmp_path, data("grastate-crashed"))
    assert mod.non_galera_schemas(str(tmp_path)) == []


def test_a_member_set_aside_for_a_confirmed_restore_is_not_a_foreign_database(mod, tmp_path):
    # moodle_ha_backup.prepare_rejoin renamed grastate.dat: the node must rejoin by SST.
    make_datadir(tmp_path)
    (tmp_path / "grastate.dat.before-restore-20261202T015838Z-20261202T015901Z").write_text(
        data("grastate-crashed"))
    assert mod.non_galera_schemas(str(tmp_path)) == []


def test_a_fresh_package_datadir_has_no_user_schema(mod, tmp_path):
    for schema in ("mysql", "performance_schema", "sys"):
        (tmp_path / schema).mkdir()
        (tmp_path / schema / "db.opt").write_text("")
    assert mod.non_galera_schemas(str(tmp_path)) == []
    assert mod.non_galera_schemas(str(tmp_path / "missing")) == []


def test_plan_refuses_to_join_over_existing_schemas_and_names_them():
    result = plan(standalone(), with_primary_peer(), schemas=["legacy_app", "shop-data"])
    assert result["action"] == "refuse" and result["stop"] is None
    assert "legacy_app, shop-data" in result["reason"]
    assert "galera:discard_existing_schemas: true" in result["reason"]


def test_plan_refuses_before_any_stop_when_another_node_would_bootstrap():
    result = plan(standalone(), down("moodle1", "moodle3"), me="moodle2", schemas=["legacy_app"])
    assert result["action"] == "refuse" and result["stop"] is None


def test_plan_designated_node_with_existing_schemas_may_bootstrap_keeping_them():
    # A bootstrap keeps the datadir: the existing database becomes the cluster's.
    result = plan(standalone(), down("moodle2", "moodle3"), schemas=["legacy_app"])
    assert result["action"] == "gather"
    positions = {n: fresh() for n in NODES}
    final = plan(stopped(), down("moodle2", "moodle3"), positions, schemas=["legacy_app"])
    assert final["action"] == "bootstrap"


def test_plan_after_gathering_never_waits_to_join_over_existing_schemas():
    positions = {"moodle1": fresh(), "moodle2": pos(3), "moodle3": pos(4)}
    result = plan(stopped(), down("moodle2", "moodle3"), positions, schemas=["legacy_app"])
    assert result["action"] == "refuse" and "legacy_app" in result["reason"]


def test_state_refuses_to_join_over_existing_schemas_and_touches_nothing(monkeypatch):
    fake = Fake(standalone(), live={"moodle2": prim(), "moodle3": down("moodle3")["moodle3"]})
    fake.schemas = ["legacy_app"]
    ret = run_state(fake, monkeypatch)
    assert ret["result"] is False
    assert ret["comment"].startswith("Refusing: moodle1's datadir holds a database")
    assert "legacy_app" in ret["comment"]
    assert fake.commands == [] and ret["changes"] == {}


def test_state_discards_existing_schemas_when_the_pillar_allows_it(monkeypatch):
    fake = Fake([standalone(), stopped(), synced()],
                live={"moodle2": prim(), "moodle3": down("moodle3")["moodle3"]})
    fake.schemas = ["legacy_app"]
    ret = run_state(fake, monkeypatch, discard_existing_schemas=True)
    assert ret["result"] is True, ret["comment"]
    assert ["systemctl", "start", "mariadb"] in fake.commands
    assert "non_galera_schemas" not in {fun for fun, _ in fake.server_calls}


# --------------------------------------------------------------------------- force_bootstrap


def test_state_fails_at_once_on_the_retired_force_bootstrap_node(monkeypatch):
    fake = Fake(synced())
    ret = run_state(fake, monkeypatch, force_bootstrap_node="moodle1")
    assert ret["result"] is False
    assert "galera:force_bootstrap_node is no longer honoured" in ret["comment"]
    assert "galera:force_bootstrap: {node:" in ret["comment"]
    assert fake.commands == [] and fake.server_calls == []


def test_state_forced_bootstrap_prints_what_it_overrode_and_says_to_remove_it(monkeypatch):
    fake = Fake([stopped(), stopped(), synced(1)], own=pos(12), live=gone("moodle2", "moodle3"))
    ret = run_state(fake, monkeypatch, force_bootstrap={"node": "moodle1", "seqno": 12})
    assert ret["result"] is True, ret["comment"]
    assert ["galera_new_cluster"] in fake.commands
    assert "moodle2=unknown" in ret["comment"] and f"moodle1={UUID}:12" in ret["comment"]
    assert "Remove galera:force_bootstrap from the pillar now" in ret["comment"]


def test_state_refuses_a_stale_force_bootstrap_and_touches_nothing(monkeypatch):
    fake = Fake(stopped(), own=pos(15), live=gone("moodle2", "moodle3"))
    ret = run_state(fake, monkeypatch, force_bootstrap={"node": "moodle1", "seqno": 12})
    assert ret["result"] is False and "does not match this outage" in ret["comment"]
    assert fake.commands == []


def test_decision_ready_when_all_known_or_a_short_cut_applies():
    ready = galera.decision_ready
    assert ready("moodle1", NODES, {n: pos(3) for n in NODES}, {})
    assert not ready("moodle1", NODES, {"moodle1": pos(3), "moodle2": None, "moodle3": None}, {})
    force = {"node": "moodle1", "seqno": 3}
    assert ready("moodle1", NODES, {"moodle1": pos(3), "moodle2": None, "moodle3": None},
                 gone("moodle2", "moodle3"), force)
    assert not ready("moodle1", NODES, {"moodle1": pos(3), "moodle2": None, "moodle3": None},
                     down("moodle2", "moodle3"), force)


# --------------------------------------------------------------------------- never stop a slow node


def test_plan_never_stops_a_server_that_cannot_be_queried_with_innodb_open():
    result = plan(slow(), down("moodle2", "moodle3"))
    assert result["action"] == "unreachable" and result["stop"] is None
    assert "Lost connection" in result["reason"] and "not stopped" in result["reason"]


def test_outside_primary_needs_a_proof():
    assert galera.outside_primary(stopped()) is None
    assert galera.outside_primary(synced()) is None
    assert galera.outside_primary(slow()) is None
    assert galera.outside_primary(dict(slow(), innodb_open=None)) is None
    assert galera.outside_primary(dict(synced(), cluster_status=None)) is None
    assert galera.outside_primary(non_primary()).startswith("server outside")
    assert galera.outside_primary(standalone()) == "standalone server started by the package"
    assert galera.outside_primary(hung()).startswith("server waiting for a Primary view")


def test_state_fails_without_stopping_a_slow_last_node(monkeypatch):
    monkeypatch.setattr(galera_state, "LOCAL_WAIT", 0)
    fake = Fake(slow(), own=pos(12),
                mine={"moodle2": recent(pos(11)), "moodle3": recent(pos(10))})
    ret = run_state(fake, monkeypatch)
    assert ret["result"] is False
    assert "cannot be queried" in ret["comment"] and "it is not stopped" in ret["comment"]
    assert "journalctl -u mariadb" in ret["comment"]
    assert fake.commands == [] and ret["changes"] == {}


def test_state_asks_a_slow_server_again_and_goes_on_once_it_answers(monkeypatch):
    monkeypatch.setattr(galera_state, "LOCAL_WAIT", 30)
    fake = Fake([slow(), slow(), synced()])
    ret = run_state(fake, monkeypatch)
    assert ret["result"] is True and "Primary and Synced" in ret["comment"]
    assert fake.commands == []


def test_state_test_mode_reports_a_slow_server_without_waiting(monkeypatch):
    fake = Fake(slow())
    ret = run_state(fake, monkeypatch, test=True)
    assert ret["result"] is None and "would ask it again" in ret["comment"]


# --------------------------------------------------------------------------- recovery edge cases
#
# Outputs that could not be recorded here are named *.from-source.*: their text comes from
# MariaDB server sources (sql/handler.cc ha_recover() and xarecover_handlerton() for "Found N
# prepared transactions!", sql/log.cc TC_LOG::using_heuristic_recover() for the rollback run)
# around the start of the recorded wsrep-recover-after-kill log; gvwstate.dat in the format of
# codership/galera gcomm/src/view.cpp (ViewState::write_stream). The pattern for prepared
# transactions is the one of ClusterLabs resource-agents heartbeat/galera(.in).


def test_prepared_transactions_are_read_from_a_failed_recovery_log():
    assert galera.parse_prepared_xa(data("wsrep-recover-prepared-xa")) == 1
    assert galera.parse_recovered_position(data("wsrep-recover-prepared-xa")) is None
    assert galera.parse_prepared_xa(data("wsrep-recover-after-kill")) is None


def recovery_runs(mod, outputs):
    calls = []

    def run_all(cmd, python_shell=None, **kwargs):
        assert python_shell is False
        calls.append(cmd)
        return {"retcode": 1 if "Aborting" in outputs[len(calls) - 1] else 0,
                "stdout": "", "stderr": outputs[len(calls) - 1]}

    mod.__salt__["cmd.run_all"] = run_all
    return calls


def test_recover_position_rolls_back_prepared_transactions_then_recovers_again(mod, monkeypatch):
    monkeypatch.setattr(mod, "_server_pids", lambda: [])
    monkeypatch.setattr(mod, "_first_existing", lambda paths: paths[0])
    calls = recovery_runs(mod, [data("wsrep-recover-prepared-xa"),
                                data("wsrep-recover-tc-heuristic-rollback"),
                                data("wsrep-recover-after-kill")])
    found = mod.recover_position()
    expected = mod.parse_recovered_position(data("wsrep-recover-after-kill"))
    assert found == dict(expected, rolled_back=1)
    assert len(calls) == 3
    assert "--tc-heuristic-recover=rollback" in calls[1] and "--wsrep-recover" in calls[1]
    assert "--tc-heuristic-recover=rollback" not in calls[0] + calls[2]


def test_recover_position_fails_clearly_when_the_rollback_does_not_help(mod, monkeypatch):
    monkeypatch.setattr(mod, "_server_pids", lambda: [])
    monkeypatch.setattr(mod, "_first_existing", lambda paths: paths[0])
    recovery_runs(mod, [data("wsrep-recover-prepared-xa"),
                        data("wsrep-recover-tc-heuristic-rollback"),
                        data("wsrep-recover-prepared-xa")])
    with pytest.raises(CommandExecutionError, match="after rolling back 1 prepared"):
        mod.recover_position()


def test_recover_position_without_prepared_transactions_never_rolls_back(mod, monkeypatch):
    monkeypatch.setattr(mod, "_server_pids", lambda: [])
    monkeypatch.setattr(mod, "_first_existing", lambda paths: paths[0])
    calls = recovery_runs(mod, [data("wsrep-recover-after-kill")])
    assert "rolled_back" not in mod.recover_position()
    assert len(calls) == 1


def test_bootstrap_tie_passes_over_a_node_whose_transactions_were_rolled_back():
    positions = {"moodle1": pos(12, source="recovery", rolled_back=1),
                 "moodle2": pos(12, source="recovery"), "moodle3": pos(11)}
    result = decide("moodle1", positions)
    assert result["action"] == "wait" and result["node"] == "moodle2"
    assert "moodle1 passed over" in result["reason"]


def test_gvwstate_problems_are_told_from_a_good_saved_view():
    assert galera.gvwstate_problem(data("gvwstate-primary")) is None
    assert galera.gvwstate_problem(data("gvwstate-empty")) == "empty"
    assert galera.gvwstate_problem(data("gvwstate-truncated")) == (
        "no complete #vwbeg ... #vwend view")
    assert galera.gvwstate_problem("garbage\n") == "no my_uuid line first"


def test_an_empty_gvwstate_is_moved_aside_and_a_good_one_kept(mod, monkeypatch, tmp_path):
    monkeypatch.setattr(mod, "_server_pids", lambda: [])
    path = tmp_path / "gvwstate.dat"
    path.write_text(data("gvwstate-primary"))
    assert mod.clear_bad_gvwstate(str(tmp_path)) is None and path.exists()
    path.write_text(data("gvwstate-empty"))
    moved = mod.clear_bad_gvwstate(str(tmp_path))
    assert moved["problem"] == "empty" and not path.exists()
    assert (tmp_path / moved["moved_to"].rsplit("/", 1)[1]).exists()
    assert mod.clear_bad_gvwstate(str(tmp_path)) is None


def test_gvwstate_is_left_alone_while_a_server_runs(mod, monkeypatch, tmp_path):
    monkeypatch.setattr(mod, "_server_pids", lambda: [42])
    (tmp_path / "gvwstate.dat").write_text(data("gvwstate-truncated"))
    assert mod.clear_bad_gvwstate(str(tmp_path)) is None
    assert (tmp_path / "gvwstate.dat").exists()


def test_state_moves_a_bad_gvwstate_aside_before_starting(monkeypatch):
    fake = Fake([stopped(), synced()],
                live={"moodle2": prim(), "moodle3": down("moodle3")["moodle3"]})
    fake.gvwstate = {"path": "/var/lib/mysql/gvwstate.dat", "problem": "empty",
                     "moved_to": "/var/lib/mysql/gvwstate.dat.invalid-1000"}
    ret = run_state(fake, monkeypatch)
    assert ret["result"] is True, ret["comment"]
    assert fake.commands.index(["clear-bad-gvwstate"]) < fake.commands.index(
        ["systemctl", "start", "mariadb"])
    assert ret["changes"]["gvwstate"]["new"] == "moved to /var/lib/mysql/gvwstate.dat.invalid-1000"


def test_only_node_marked_safe_bootstraps_without_waiting_for_unknown_positions():
    gra = galera.parse_grastate(data("grastate-clean-shutdown-last-node"))
    last = pos(gra["seqno"], uuid=gra["uuid"], safe=gra["safe_to_bootstrap"])
    positions = {"moodle1": None, "moodle2": last, "moodle3": None}
    result = decide("moodle2", positions)
    assert result["action"] == "bootstrap"
    assert "only node marked safe_to_bootstrap" in result["reason"]
    assert "not waiting for moodle1, moodle3" in result["reason"]
    # a node that knows the marked node's record waits for it instead of for everybody
    positions["moodle3"] = pos(gra["seqno"] - 2, uuid=gra["uuid"])
    waiting = decide("moodle3", positions)
    assert waiting["action"] == "wait" and waiting["node"] == "moodle2"
    assert galera.decision_ready("moodle3", NODES, positions, {})


def test_safe_mark_short_cut_needs_exactly_one_mark_and_nobody_ahead():
    two = {"moodle1": pos(9, safe=True), "moodle2": pos(9, safe=True), "moodle3": None}
    assert decide("moodle1", two)["action"] == "refuse"
    ahead = {"moodle1": pos(9, safe=True), "moodle2": pos(11), "moodle3": None}
    assert decide("moodle1", ahead)["action"] == "refuse"
    other = {"moodle1": pos(9, safe=True), "moodle2": pos(3, uuid=OTHER_UUID), "moodle3": None}
    assert decide("moodle1", other)["action"] == "refuse"
    # a crashed node keeps no trustworthy mark (its seqno came from recovery)
    crashed = {"moodle1": pos(9, safe=True, source="recovery"), "moodle2": None,
               "moodle3": None}
    assert decide("moodle1", crashed)["action"] == "refuse"


def test_safe_mark_short_cut_never_beats_a_primary_peer():
    positions = {"moodle1": pos(9, safe=True), "moodle2": None, "moodle3": None}
    live = {"moodle2": prim(), "moodle3": down("moodle3")["moodle3"]}
    assert decide("moodle1", positions, live)["action"] == "join"


def test_state_marked_node_bootstraps_without_the_other_positions(monkeypatch):
    fake = Fake([stopped(), stopped(), synced(1)], own=pos(9, safe=True),
                live=down("moodle1", "moodle3"))
    t0 = time.monotonic()
    ret = run_state(fake, monkeypatch, name="moodle2", peer_wait=30)
    assert ret["result"] is True, ret["comment"]
    assert time.monotonic() - t0 < 10, "it did not wait for the other positions"
    assert ["galera_new_cluster"] in fake.commands


# --------------------------------------------------------------------------- clustercheck login


def test_clustercheck_answer_login_refused_is_recognised():
    answer = galera.parse_clustercheck(data("clustercheck-503-login-refused"))
    assert answer["code"] == 503 and answer["login_refused"] is True
    assert answer["fields"] == {"clustercheck": "login refused"}
    for stem in ("clustercheck-200-synced", "clustercheck-503-desynced",
                 "clustercheck-503-mysqld-down"):
        assert galera.parse_clustercheck(data(stem))["login_refused"] is False


@pytest.fixture(scope="module")
def clustercheck_script(tmp_path_factory):
    from render.renderlib import Renderer

    root = tmp_path_factory.mktemp("clustercheck")
    dest = root / "moodle_ha-clustercheck"
    code, out = Renderer(root / "render").call(
        "cp.get_template", "salt://moodle_ha/galera/files/clustercheck.jinja", str(dest),
        "tpldir=moodle_ha/galera", minion_id="moodle1")
    assert code == 0 and dest.exists(), out
    return dest


def run_clustercheck(script, tmp_path, client_stderr):
    """Run the rendered script with a mariadb client that fails with this message."""
    import os
    import subprocess

    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    client = bindir / "mariadb"
    (bindir / "message").write_text(client_stderr + "\n")
    client.write_text(f"#!/bin/sh\ncat {bindir / 'message'} >&2\nexit 1\n")
    client.chmod(0o755)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")
    proc = subprocess.run(["bash", str(script)], input=b"GET / HTTP/1.0\r\n\r\n",
                          capture_output=True, env=env, timeout=30, check=False)
    return proc.stdout


# The client's lines for a refused login ("ERROR %d (%s): %s", client/mysql.cc; texts of
# sql/share/errmsg-utf8.txt).
REFUSED_LOGINS = [
    "ERROR 1045 (28000): Access denied for user 'clustercheck'@'localhost' (using password: YES)",
    "ERROR 1698 (28000): Access denied for user 'clustercheck'@'localhost'",
    "ERROR 4151 (HY000): Access denied, this account is locked",
    "ERROR 1862 (HY000): Your password has expired. To log in you must change it using a client"
    " that supports expired passwords",
]


@pytest.mark.parametrize("message", REFUSED_LOGINS)
def test_clustercheck_script_answers_login_refused_without_the_server_text(
        clustercheck_script, tmp_path, message):
    out = run_clustercheck(clustercheck_script, tmp_path, message)
    assert out == (DATA / "clustercheck-503-login-refused.from-source.http").read_bytes()
    assert b"Access denied" not in out and b"clustercheck'@" not in out


def test_clustercheck_script_still_tells_a_stopped_server(clustercheck_script, tmp_path):
    out = run_clustercheck(clustercheck_script, tmp_path,
                           "ERROR 2002 (HY000): Can't connect to local server through socket"
                           " '/run/mysqld/mysqld.sock' (2)")
    answer = galera.parse_clustercheck(out)
    assert answer["fields"] == {"mysqld": "down"} and answer["login_refused"] is False


def test_peer_live_reports_a_refused_clustercheck_login(mod, monkeypatch):
    monkeypatch.setattr(mod, "clustercheck", lambda host, port: mod.parse_clustercheck(
        data("clustercheck-503-login-refused")))
    monkeypatch.setattr(mod, "port_open", lambda host, port: True)
    live = mod.peer_live("172.30.77.11")
    assert live["login_refused"] is True and live["primary"] is None and live["code"] == 503
    assert mod.login_refused_peers({"moodle1": live}) == ["moodle1"]
    # a standalone server (no Galera yet) has no clustercheck account: not counted
    assert mod.login_refused_peers({"moodle1": dict(live, port_open=False)}) == []


def test_bootstrap_refusal_names_refused_clustercheck_credentials():
    positions = {"moodle1": pos(12), "moodle2": pos(11), "moodle3": pos(10)}
    live = {"moodle2": refusing(), "moodle3": down("moodle3")["moodle3"]}
    result = decide("moodle1", positions, live)
    assert result["action"] == "refuse"
    assert "clustercheck of moodle2 cannot log in" in result["reason"]
    assert "secrets:clustercheck_password" in result["reason"]


def test_state_joiner_fails_at_once_when_the_bootstrapped_peer_refuses_its_login(monkeypatch):
    fake = Fake(stopped(), own=pos(10), live={"moodle1": refusing(),
                                              "moodle3": down("moodle3")["moodle3"]},
                mine={"moodle1": recent(pos(12)), "moodle3": recent(pos(11))})
    sleeps = []
    monkeypatch.setattr(galera_state.time, "sleep", sleeps.append)
    ret = run_state(fake, monkeypatch, name="moodle2", timeout=300)
    assert ret["result"] is False
    assert "the clustercheck of moodle1 cannot log in" in ret["comment"]
    assert "secrets:clustercheck_password" in ret["comment"]
    assert "no peer reached a Primary component" not in ret["comment"]
    assert sleeps == [], "it failed on the first probe"
    assert ["systemctl", "start", "mariadb"] not in fake.commands


def test_state_brand_new_joiner_waits_out_the_bootstrap_nodes_account_creation(monkeypatch):
    # The bootstrap node creates the clustercheck account right after it bootstrapped.
    fake = Fake([stopped(), synced()], own=fresh(),
                mine={"moodle1": recent(fresh()), "moodle3": recent(fresh())})
    answers = iter([refusing(), refusing(), refusing()])

    _only_moodle1_answers(fake, monkeypatch, lambda: next(answers, prim()))
    ret = run_state(fake, monkeypatch, name="moodle2")
    assert ret["result"] is True, ret["comment"]
    assert ["systemctl", "start", "mariadb"] in fake.commands


def test_state_brand_new_joiner_fails_once_the_refusal_outlasts_the_grace(monkeypatch):
    monkeypatch.setattr(galera_state, "LOGIN_GRACE", 0.05)
    fake = Fake(stopped(), own=fresh(), live={"moodle1": refusing(),
                                              "moodle3": down("moodle3")["moodle3"]},
                mine={"moodle1": recent(fresh()), "moodle3": recent(fresh())})
    ret = run_state(fake, monkeypatch, name="moodle2", timeout=300)
    assert ret["result"] is False and "cannot log in" in ret["comment"]

if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))


# --------------------------------------------------------------------------- scale-in


@pytest.mark.parametrize("local, action, reason", [
    (stopped(), "none", "the server is not running"),
    (hung(), "refuse", "cannot be queried"),
    (non_primary(), "stop", "server outside any Primary component"),
    (synced(5), "stop", "Synced member of a Primary component of 5: 4 stay"),
    (synced(2), "refuse", "wsrep_cluster_size is 2: leaving would leave fewer than 2 members"),
    (dict(synced(5), local_state=galera.STATE_DONOR, local_state_comment="Donor/Desynced"),
     "wait", "the node is Donor/Desynced, not Synced"),
])
def test_leave_plan(local, action, reason):
    plan = galera.leave_plan(local)
    assert plan["action"] == action
    assert reason in plan["reason"]


class Leaving:
    """The node of a member_left call: its local states in turn, systemctl, the unit."""

    def __init__(self, *locals_, enabled=True, running_after=False):
        self.locals = list(locals_)
        self.enabled = enabled
        self.running_after = running_after
        self.commands = []

    def salt(self):
        def local_state(**kwargs):
            return self.locals.pop(0) if len(self.locals) > 1 else self.locals[0]

        def run_all(cmd, python_shell=None, **kwargs):
            assert python_shell is False
            self.commands.append(cmd)
            return {"retcode": 0, "stdout": "", "stderr": ""}

        return {"galera.local_state": local_state, "galera.leave_plan": galera.leave_plan,
                "galera.is_running": lambda: self.running_after,
                "service.enabled": lambda name: self.enabled,
                "service.disable": lambda name: self.commands.append(["disable", name]),
                "cmd.run_all": run_all}


@pytest.fixture
def leaving(monkeypatch):
    def build(node, test=False):
        monkeypatch.setattr(galera_state, "__salt__", node.salt(), raising=False)
        monkeypatch.setattr(galera_state, "__opts__", {"test": test}, raising=False)
        monkeypatch.setattr(galera_state.time, "sleep", lambda s: None)
        return galera_state
    return build


def test_member_left_stops_a_synced_member_and_disables_it(leaving):
    node = Leaving(synced(5))
    ret = leaving(node).member_left("moodle4")
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == {"left": "Synced member of a Primary component of 5: 4 stay",
                              "enabled": {"old": True, "new": False}}
    assert node.commands == [["systemctl", "stop", "mariadb"], ["disable", "mariadb"]]


def test_member_left_is_a_noop_once_stopped_and_disabled(leaving):
    node = Leaving(stopped(), enabled=False)
    ret = leaving(node).member_left("moodle4")
    assert ret["result"] is True and ret["changes"] == {}
    assert node.commands == []


def test_member_left_refuses_when_too_few_members_would_stay(leaving):
    node = Leaving(synced(2))
    ret = leaving(node).member_left("moodle4")
    assert ret["result"] is False
    assert ret["comment"] == ("moodle4 does not leave the cluster: wsrep_cluster_size is 2:"
                              " leaving would leave fewer than 2 members")
    assert node.commands == []


def test_member_left_waits_for_a_donor_to_be_synced(leaving, monkeypatch):
    donor = dict(synced(5), local_state=galera.STATE_DONOR, local_state_comment="Donor/Desynced")
    node = Leaving(donor, donor, synced(5))
    ret = leaving(node).member_left("moodle4", timeout=60)
    assert ret["result"] is True, ret["comment"]
    assert ["systemctl", "stop", "mariadb"] in node.commands


def test_member_left_gives_up_on_a_node_that_stays_a_donor(leaving, monkeypatch):
    donor = dict(synced(5), local_state=galera.STATE_DONOR, local_state_comment="Donor/Desynced")
    clock = iter(range(0, 10_000, 10))
    monkeypatch.setattr(galera_state.time, "monotonic", lambda: next(clock))
    node = Leaving(donor)
    ret = leaving(node).member_left("moodle4", timeout=30)
    assert ret["result"] is False
    assert ret["comment"] == ("moodle4 does not leave the cluster after 30 s: the node is"
                              " Donor/Desynced, not Synced")
    assert node.commands == []


def test_member_left_in_test_mode_changes_nothing(leaving):
    node = Leaving(synced(5))
    ret = leaving(node, test=True).member_left("moodle4")
    assert ret["result"] is None and "left" in ret["changes"]
    assert node.commands == []


def test_member_left_fails_when_the_server_outlives_the_stop(leaving):
    node = Leaving(synced(5), running_after=True)
    ret = leaving(node).member_left("moodle4")
    assert ret["result"] is False and "still runs after systemctl stop" in ret["comment"]


# --------------------------------------------------------------------------- view settled


def test_local_state_reads_the_view_counter_from_the_recorded_status(mod, monkeypatch):
    monkeypatch.setattr(mod, "_server_pids", lambda: [42])
    rows = data("show-status-wsrep-synced")
    monkeypatch.setattr(mod, "query", _recorded_query(rows))
    st = mod.local_state()
    assert st["conf_id"] == int(mod.parse_rows(rows)["wsrep_cluster_conf_id"]) == 3
    assert mod.synced(st)


class Clock:
    """time.monotonic and time.sleep of a state under test: sleeping advances the clock."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def settle_run(monkeypatch, views, test=False, **kwargs):
    """view_settled over a sequence of local states (the last one repeats), one per poll."""
    clock = Clock()
    states = list(views)
    monkeypatch.setattr(galera_state, "__salt__", {
        "galera.local_state": lambda **kw: states.pop(0) if len(states) > 1 else states[0],
        "galera.synced": galera.synced,
    }, raising=False)
    monkeypatch.setattr(galera_state, "__opts__", {"test": test}, raising=False)
    monkeypatch.setattr(galera_state.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(galera_state.time, "sleep", clock.sleep)
    return galera_state.view_settled("moodle1", **kwargs), clock


def test_view_settled_waits_until_the_view_stops_changing(monkeypatch):
    views = [dict(synced(5), conf_id=7), dict(synced(4), conf_id=8), dict(synced(4), conf_id=8),
             dict(synced(4), conf_id=9), dict(synced(4), conf_id=9)]
    ret, clock = settle_run(monkeypatch, views, settle=10, timeout=120)
    assert ret["result"] is True and ret["changes"] == {}, ret["comment"]
    assert "view 9 unchanged" in ret["comment"]
    # the last change was seen at the 4th poll (6 s): 10 s steady after that
    assert clock.now == 6 + 10


def test_view_settled_does_not_count_time_outside_a_primary_component(monkeypatch):
    views = [dict(synced(4), conf_id=8), non_primary(), dict(synced(3), conf_id=8)]
    ret, clock = settle_run(monkeypatch, views, settle=4, timeout=60)
    assert ret["result"] is True
    assert clock.now == 4 + 4, "the steady time restarts after the non-Primary poll"


def test_view_settled_fails_naming_the_state_it_saw(monkeypatch):
    ret, clock = settle_run(monkeypatch, [non_primary()], settle=10, timeout=30)
    assert ret["result"] is False
    assert "no view unchanged for 10 s within 30 s" in ret["comment"]
    assert "non-Primary" in ret["comment"]


def test_view_settled_test_mode_reports_without_waiting(monkeypatch):
    ret, clock = settle_run(monkeypatch, [dict(synced(3), conf_id=4)], test=True)
    assert ret["result"] is True and clock.now == 0
    assert "would wait" in ret["comment"]

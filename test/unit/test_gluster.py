"""Unit tests for _modules/gluster.py and _states/gluster.py.

The gluster CLI is replaced by FakeCli, which answers each ``gluster --mode=script --xml ...``
command with answers recorded from gluster 10.3 in the lab (test/data/gluster/, the file names
say which host and situation they come from); gluster 11.1 (Debian 13) answers under
test/data/gluster/gluster11.1/ are checked to parse to the same shapes. The states run on the
real module functions, so every state test also goes through the XML parsers.
"""


import pytest
import yaml
from salt.exceptions import CommandExecutionError

from render.renderlib import REPO
from saltmodules import load

DATA = REPO / "test" / "data" / "gluster"
BRICK = "/srv/gluster/moodledata"
IPS = ["172.30.77.11", "172.30.77.12", "172.30.77.13"]
BRICKS = [f"{ip}:{BRICK}" for ip in IPS]


def xml(stem):
    """The one recorded answer named ``<stem>.<gluster version>-<where recorded>.xml|txt``."""
    found = sorted(DATA.glob(f"{stem}.*"))
    assert len(found) == 1, f"expected one recorded answer for {stem}, found {found}"
    return found[0].read_text()


class FakeCli:
    """cmd.run_all stand-in: answers gluster commands from queues of recorded XML.

    ``answers`` maps the words after ``gluster --mode=script [--xml]`` to one answer or a list
    of answers given in turn (the last one repeats). Every command is kept in ``calls``.
    """

    def __init__(self, answers):
        self.answers = {
            key: list(value) if isinstance(value, list) else [value]
            for key, value in answers.items()
        }
        self.calls = []

    def __call__(self, cmd, python_shell=None, ignore_retcode=None, **kwargs):
        assert isinstance(cmd, list), "commands are argument lists"
        assert python_shell is False
        assert cmd[:2] == ["gluster", "--mode=script"]
        words = " ".join(cmd[3:] if cmd[2] == "--xml" else cmd[2:])
        self.calls.append(words)
        if words not in self.answers:
            raise AssertionError(f"unexpected gluster command: {words}")
        queue = self.answers[words]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return {"retcode": 0, "stdout": answer, "stderr": ""}

    def ran(self, prefix):
        return [c for c in self.calls if c.startswith(prefix)]


@pytest.fixture
def mod():
    module = load("_modules/gluster.py", "gluster_module_under_test")
    module.__salt__ = {}
    module.LOCK_RETRY_DELAY = 0
    return module


@pytest.fixture
def clock():
    """A fake clock for the states: sleep() advances monotonic() instead of waiting."""

    class Clock:
        now = 1000.0

        def monotonic(self):
            return self.now

        def sleep(self, seconds):
            self.now += seconds

    return Clock()


@pytest.fixture
def make_state(mod, clock):
    """Build the state module on top of the real execution module driven by a FakeCli."""

    def build(answers, test=False, minion=("moodle1", "172.30.77.11"), resolve=None):
        cli = FakeCli(answers)
        mod.__salt__ = {"cmd.run_all": cli}
        state = load("_states/gluster.py", "gluster_state_under_test")
        functions = {
            f"gluster.{name}": getattr(mod, name)
            for name in dir(mod)
            if not name.startswith("_") and callable(getattr(mod, name))
        }
        functions["network.ip_addrs"] = lambda: [minion[1]]
        functions["network.ip_addrs6"] = lambda: []
        state.__salt__ = functions
        state.__opts__ = {"test": test}
        state.__grains__ = {"id": minion[0], "host": minion[0], "fqdn": minion[0]}
        state.time = clock
        # No real resolver: IPs resolve to themselves, names through ``resolve``.
        state._addresses = resolve or (lambda name: {name} if name[0].isdigit() else set())
        return state, cli

    return build


# ------------------------------------------------------------------------ module: parsers


def test_peer_status_lists_peers_with_connection_and_state(mod):
    peers = mod.parse_peers(mod._parse(xml("peer_status-2peers-in-cluster")))
    assert [p["hostname"] for p in peers] == IPS[1:]
    for peer in peers:
        assert peer["connected"] is True
        assert peer["state"] == mod.PEER_IN_CLUSTER
        assert peer["state_str"] == "Peer in Cluster"
        assert len(peer["uuid"]) == 36


def test_peer_status_of_a_lone_node_is_empty(mod):
    assert mod.parse_peers(mod._parse(xml("peer_status-empty"))) == []


def test_peer_status_shows_a_peer_with_glusterd_down_as_disconnected(mod):
    peers = mod.parse_peers(mod._parse(xml("peer_status-moodle3-disconnected")))
    by_name = {p["hostname"]: p for p in peers}
    assert by_name["172.30.77.13"]["connected"] is False
    assert by_name["172.30.77.13"]["state_str"] == "Peer in Cluster"
    assert by_name["172.30.77.12"]["connected"] is True


def test_the_probing_node_is_known_to_the_others_by_its_resolved_name(mod):
    # moodle1 probed the others by IP; they recorded moodle1 under its /etc/hosts name.
    peers = mod.parse_peers(mod._parse(xml("peer_status-from-moodle2")))
    assert [p["hostname"] for p in peers] == ["moodle1.moodle-ha.internal", "172.30.77.13"]


def test_pool_list_includes_this_node_as_localhost(mod):
    pool = mod.parse_peers(mod._parse(xml("pool_list-3nodes")))
    assert "localhost" in [p["hostname"] for p in pool]
    assert len(pool) == 3
    assert all(p["connected"] for p in pool)


def test_volume_info_gives_status_type_replica_bricks_and_options(mod):
    vols = mod.parse_volume_info(mod._parse(xml("volume_info-moodledata-started")))
    vol = vols["moodledata"]
    assert vol["status"] == "Started"
    assert vol["type"] == "Replicate"
    assert vol["replica"] == 3
    assert vol["bricks"] == BRICKS
    assert vol["options"]["network.ping-timeout"] == "2"
    assert vol["options"]["auth.allow"] == "127.0.0.1,172.30.77.11,172.30.77.12,172.30.77.13"
    assert vol["transport"] == "tcp"


def test_volume_info_with_no_volume_is_empty(mod):
    assert mod.parse_volume_info(mod._parse(xml("volume_info-none"))) == {}


def test_volume_info_of_an_absent_volume_is_empty_not_an_error(mod):
    mod.__salt__ = {"cmd.run_all": FakeCli({"volume info": xml("volume_info-none")})}
    assert mod.volume_info("moodledata") == {}


def test_gluster_error_raises_with_its_error_string(mod):
    with pytest.raises(CommandExecutionError, match="Volume moodledata does not exist"):
        mod._parse(xml("volume_status-absent"), ["volume", "status", "moodledata"])


def test_failed_probe_raises_with_the_reason(mod):
    mod.__salt__ = {
        "cmd.run_all": FakeCli({"peer probe 172.30.77.99": xml("peer_probe-unreachable")})
    }
    with pytest.raises(CommandExecutionError, match="Transport endpoint is not connected"):
        mod.peer_probe("172.30.77.99")


def test_non_xml_answer_raises_with_stderr(mod):
    def run_all(cmd, **kwargs):
        return {"retcode": 1, "stdout": "", "stderr": "Connection failed. Is glusterd running?"}

    mod.__salt__ = {"cmd.run_all": run_all}
    with pytest.raises(CommandExecutionError, match="Is glusterd running"):
        mod.peer_status()


def test_lock_collision_is_retried_then_succeeds(mod):
    busy = (
        '<?xml version="1.0"?><cliOutput><opRet>-1</opRet><opErrno>30802</opErrno>'
        "<opErrstr>Another transaction is in progress for moodledata. Please try again after"
        " some time.</opErrstr></cliOutput>"
    )
    cli = FakeCli({"volume set moodledata network.ping-timeout 5": [busy, xml("volume_set-ok")]})
    mod.__salt__ = {"cmd.run_all": cli}
    assert mod.volume_set("moodledata", "network.ping-timeout", 5) is True
    assert len(cli.calls) == 2


def test_volume_status_reports_each_brick_online(mod):
    status = mod.parse_volume_status(mod._parse(xml("volume_status-moodledata-started")))
    bricks = status["moodledata"]["bricks"]
    assert sorted(bricks) == BRICKS
    assert all(b["online"] and b["pid"] for b in bricks.values())


def test_volume_status_shows_a_dead_brick_offline(mod):
    status = mod.parse_volume_status(mod._parse(xml("volume_status-moodledata-brick3-killed")))
    bricks = status["moodledata"]["bricks"]
    assert bricks[BRICKS[2]]["online"] is False
    assert bricks[BRICKS[0]]["online"] is True


def test_heal_info_counts_entries_per_brick(mod):
    heal = mod.parse_heal_info(mod._parse(xml("heal_info-moodledata-brick3-killed")))
    assert sorted(heal) == BRICKS
    assert heal[BRICKS[2]]["entries"] is None
    assert heal[BRICKS[2]]["status"] != "Connected"
    assert heal[BRICKS[0]]["entries"] > 0


def test_heal_info_of_a_healthy_volume_is_all_zero(mod):
    heal = mod.parse_heal_info(mod._parse(xml("heal_info-moodledata-healthy")))
    assert {b["entries"] for b in heal.values()} == {0}
    assert {b["status"] for b in heal.values()} == {"Connected"}


def test_volume_get_all_gives_effective_values_without_the_default_mark(mod):
    opts = mod.parse_volume_get(mod._parse(xml("volume_get-moodledata-all")))
    assert opts["network.ping-timeout"] == "2"
    assert opts["cluster.self-heal-daemon"] == "on"
    assert len(opts) > 300
    defaults = mod.parse_volume_get(mod._parse(xml("volume_get-scratch-defaults")))
    assert defaults["network.ping-timeout"] == "42"


def test_volume_get_keeps_both_values_of_an_option_two_translators_share(mod):
    defaults = mod.parse_volume_get(mod._parse(xml("volume_get-scratch-defaults")))
    assert defaults["performance.cache-size"] == ["32MB", "128MB"]
    assert mod.option_equal(defaults["performance.cache-size"], "128MB") is False


def test_volume_create_builds_the_command_with_replica_and_force(mod):
    cli = FakeCli(
        {
            f"volume create moodledata replica 3 transport tcp {' '.join(BRICKS)} force": xml(
                "volume_create-ok"
            )
        }
    )
    mod.__salt__ = {"cmd.run_all": cli}
    assert mod.volume_create("moodledata", BRICKS, replica=3, force=True) is True


def test_volume_create_with_replica_1_makes_a_distribute_volume(mod):
    cli = FakeCli(
        {f"volume create moodledata transport tcp {BRICKS[0]} force": xml("volume_create-ok")}
    )
    mod.__salt__ = {"cmd.run_all": cli}
    assert mod.volume_create("moodledata", BRICKS[:1], replica=1, force=True) is True


def test_brick_without_absolute_path_is_refused_before_running(mod):
    cli = FakeCli({})
    mod.__salt__ = {"cmd.run_all": cli}
    with pytest.raises(CommandExecutionError, match="HOST:/PATH"):
        mod.add_brick("moodledata", ["172.30.77.14:srv/gluster"], replica=4)
    assert cli.calls == []


@pytest.mark.parametrize(
    ("current", "wanted", "equal"),
    [
        ("on", True, True),
        ("enable", "on", True),
        ("off", "on", False),
        ("5", 5, True),
        ("42", "5", False),
        ("128MB", "128mb", True),
        (None, "on", False),
        (["128MB", "128MB"], "128MB", True),
        (["32MB", "128MB"], "128MB", False),
    ],
)
def test_option_values_compare_by_meaning(mod, current, wanted, equal):
    assert mod.option_equal(current, wanted) is equal


# ------------------------------------------------------------------------ state: peered


def test_peered_skips_this_node(make_state):
    state, cli = make_state({})
    ret = state.peered("172.30.77.11")
    assert ret["result"] is True and ret["changes"] == {}
    assert cli.calls == []


def test_peered_is_a_noop_when_the_peer_is_in_cluster(make_state):
    state, cli = make_state({"peer status": xml("peer_status-2peers-in-cluster")})
    ret = state.peered("172.30.77.12")
    assert ret["result"] is True and ret["changes"] == {}
    assert cli.ran("peer probe") == []


def test_peered_probes_then_waits_until_connected_in_cluster(make_state, clock):
    state, cli = make_state(
        {
            "peer status": [
                xml("peer_status-empty"),
                xml("peer_status-moodle3-disconnected"),
                xml("peer_status-moodle3-disconnected"),
                xml("peer_status-2peers-in-cluster"),
            ],
            "peer probe 172.30.77.13": xml("peer_probe-member-again"),
        }
    )
    start = clock.now
    ret = state.peered("172.30.77.13", timeout=60)
    assert ret["result"] is True, ret["comment"]
    assert cli.ran("peer probe") == ["peer probe 172.30.77.13"]
    assert ret["changes"]["peer"] == {
        "old": "not in the pool",
        "new": "Peer in Cluster (Connected)",
    }
    # It polled past the disconnected answers instead of returning right after the probe.
    assert len(cli.ran("peer status")) == 4
    assert clock.now > start


def test_peered_keeps_probing_while_the_peer_glusterd_is_down(make_state):
    state, cli = make_state(
        {
            "peer status": [
                xml("peer_status-empty"),
                xml("peer_status-empty"),
                xml("peer_status-2peers-in-cluster"),
            ],
            "peer probe 172.30.77.13": [
                xml("peer_probe-unreachable"),
                xml("peer_probe-member-again"),
            ],
        }
    )
    ret = state.peered("172.30.77.13", timeout=60)
    assert ret["result"] is True, ret["comment"]
    assert len(cli.ran("peer probe")) == 2


def test_peered_fails_after_timeout_naming_the_last_state(make_state):
    state, cli = make_state({"peer status": xml("peer_status-moodle3-disconnected")})
    ret = state.peered("172.30.77.13", timeout=10)
    assert ret["result"] is False
    assert "after 10 s" in ret["comment"] and "Disconnected" in ret["comment"]
    # Already in the pool: waiting, never probing again.
    assert cli.ran("peer probe") == []


def test_peered_finds_a_peer_recorded_under_its_host_name(make_state):
    hosts = {"moodle1.moodle-ha.internal": {"172.30.77.11"}}
    state, cli = make_state(
        {"peer status": xml("peer_status-from-moodle2")},
        minion=("moodle2", "172.30.77.12"),
        resolve=lambda name: hosts.get(name, {name}),
    )
    ret = state.peered("172.30.77.11")
    assert ret["result"] is True and ret["changes"] == {}
    assert cli.ran("peer probe") == []


def test_peered_in_test_mode_reports_without_probing(make_state):
    state, cli = make_state({"peer status": xml("peer_status-empty")}, test=True)
    ret = state.peered("172.30.77.13")
    assert ret["result"] is None
    assert ret["changes"]["peer"] == {
        "old": "not in the pool",
        "new": "Peer in Cluster (Connected)",
    }
    assert cli.ran("peer probe") == []


# ------------------------------------------------------------------------ state: volume_present


def test_volume_present_creates_and_starts_an_absent_volume(make_state):
    create = f"volume create moodledata replica 3 transport tcp {' '.join(BRICKS)} force"
    state, cli = make_state(
        {
            "volume info": xml("volume_info-none"),
            create: xml("volume_create-ok"),
            "volume start moodledata": xml("volume_start-ok"),
        }
    )
    ret = state.volume_present("moodledata", BRICKS, replica=3, force=True)
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"]["created"] == {"bricks": BRICKS, "replica": 3}
    assert cli.ran("volume create") == [create]
    assert cli.ran("volume start") == ["volume start moodledata"]


def test_volume_present_changes_nothing_when_the_volume_matches(make_state):
    state, cli = make_state({"volume info": xml("volume_info-moodledata-started")})
    ret = state.volume_present("moodledata", BRICKS, replica=3, force=True)
    assert ret["result"] is True and ret["changes"] == {}
    assert cli.calls == ["volume info"]


def test_volume_present_adds_the_new_node_brick_with_the_new_replica(make_state):
    two = xml("volume_info-scratch-replica2-started")
    vol = "scratch"
    root = "/srv/gluster-scratch/scratch"
    bricks = [f"{ip}:{root}" for ip in IPS]
    add = f"volume add-brick {vol} replica 3 {bricks[2]} force"
    state, cli = make_state(
        {
            "volume info": two,
            add: xml("add_brick-ok"),
            f"volume heal {vol} full": xml("volume_heal_full-ok"),
        }
    )
    ret = state.volume_present(vol, bricks, replica=3, force=True)
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"]["bricks_added"] == [bricks[2]]
    assert ret["changes"]["replica"] == {"old": 2, "new": 3}
    assert cli.ran("volume add-brick") == [add]
    assert cli.ran("volume heal") == [f"volume heal {vol} full"]


def test_volume_present_refuses_when_the_pillar_lists_fewer_bricks(make_state):
    state, cli = make_state({"volume info": xml("volume_info-moodledata-started")})
    ret = state.volume_present("moodledata", BRICKS[:2], replica=2, force=True)
    assert ret["result"] is False
    assert BRICKS[2] in ret["comment"] and "never removed" in ret["comment"]
    assert ret["changes"] == {}
    assert cli.calls == ["volume info"]


def test_volume_present_refuses_to_lower_the_replica_count(make_state):
    state, cli = make_state({"volume info": xml("volume_info-moodledata-started")})
    ret = state.volume_present("moodledata", BRICKS, replica=2)
    assert ret["result"] is False and "never lowered" in ret["comment"]
    assert cli.calls == ["volume info"]


def test_volume_present_in_test_mode_reports_the_creation_only(make_state):
    state, cli = make_state({"volume info": xml("volume_info-none")}, test=True)
    ret = state.volume_present("moodledata", BRICKS, replica=3, force=True)
    assert ret["result"] is None
    assert ret["changes"]["created"]["bricks"] == BRICKS
    assert cli.calls == ["volume info"]


def test_volume_present_in_test_mode_reports_the_add_brick_only(make_state):
    root = "/srv/gluster-scratch/scratch"
    bricks = [f"{ip}:{root}" for ip in IPS]
    state, cli = make_state({"volume info": xml("volume_info-scratch-replica2-started")}, test=True)
    ret = state.volume_present("scratch", bricks, replica=3, force=True)
    assert ret["result"] is None
    assert ret["changes"]["bricks_added"] == [bricks[2]]
    assert cli.calls == ["volume info"]


# ------------------------------------------------------------------------ states: started, options


def test_volume_started_starts_a_created_volume(make_state):
    state, cli = make_state(
        {
            "volume info": xml("volume_info-scratch-created"),
            "volume start scratch": xml("volume_start-ok"),
        }
    )
    ret = state.volume_started("scratch")
    assert ret["result"] is True
    assert ret["changes"]["status"] == {"old": "Created", "new": "Started"}


def test_volume_started_is_a_noop_on_a_started_volume(make_state):
    state, cli = make_state({"volume info": xml("volume_info-moodledata-started")})
    ret = state.volume_started("moodledata")
    assert ret["result"] is True and ret["changes"] == {}


def test_volume_started_fails_for_an_absent_volume(make_state):
    state, _ = make_state({"volume info": xml("volume_info-none")})
    assert state.volume_started("moodledata")["result"] is False


def _options_answers(volume, info, get):
    return {"volume info": xml(info), f"volume get {volume} all": xml(get)}


def test_volume_options_sets_only_the_differing_ones(make_state):
    answers = _options_answers(
        "scratch", "volume_info-scratch-created", "volume_get-scratch-defaults"
    )
    answers["volume set scratch network.ping-timeout 5"] = xml("volume_set-ok")
    answers["volume set scratch performance.cache-size 128MB"] = xml("volume_set-ok")
    state, cli = make_state(answers)
    wanted = {
        "network.ping-timeout": 5,
        "performance.stat-prefetch": "on",
        "performance.cache-size": "128MB",
        "nfs.disable": True,
    }
    ret = state.volume_options("scratch", wanted)
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == {
        "network.ping-timeout": {"old": "42", "new": "5"},
        "performance.cache-size": {"old": ["32MB", "128MB"], "new": "128MB"},
    }
    assert cli.ran("volume set") == [
        "volume set scratch network.ping-timeout 5",
        "volume set scratch performance.cache-size 128MB",
    ]


def test_volume_options_changes_nothing_once_the_formula_defaults_are_applied(make_state):
    state, cli = make_state(
        _options_answers(
            "moodledata", "volume_info-moodledata-started", "volume_get-moodledata-all"
        )
    )
    defaults = yaml.safe_load((REPO / "moodle_ha/parameters/defaults.yaml").read_text())
    wanted = defaults["values"]["gluster"]["options"]
    ret = state.volume_options("moodledata", wanted)
    assert ret["result"] is True and ret["changes"] == {}, ret["changes"]
    assert cli.ran("volume set") == []


def test_volume_options_in_test_mode_reports_without_setting(make_state):
    state, cli = make_state(
        _options_answers("scratch", "volume_info-scratch-created", "volume_get-scratch-defaults"),
        test=True,
    )
    ret = state.volume_options("scratch", {"network.ping-timeout": "5"})
    assert ret["result"] is None
    assert ret["changes"]["network.ping-timeout"] == {"old": "42", "new": "5"}
    assert cli.ran("volume set") == []


def test_volume_options_reports_an_unknown_option_as_failure(make_state):
    answers = _options_answers(
        "moodledata", "volume_info-moodledata-started", "volume_get-moodledata-all"
    )
    answers["volume set moodledata no.such-option 1"] = xml("volume_set-unknown-option")
    state, _ = make_state(answers)
    ret = state.volume_options("moodledata", {"no.such-option": 1})
    assert ret["result"] is False
    assert "no.such-option" in ret["comment"]


# ------------------------------------------------ gluster 11.1 (Debian 13) answers, same shapes

GLUSTER11 = DATA / "gluster11.1"
# (function, args, gluster command, gluster 11.1 recording, gluster 10.3 recording)
SAME_SHAPE = [
    ("peer_status", (), "peer status", "peer_status", "peer_status-2peers-in-cluster"),
    ("pool_list", (), "pool list", "pool_list-3nodes", "pool_list-3nodes"),
    ("volume_info", ("moodledata",), "volume info",
     "volume_info-moodledata-started", "volume_info-moodledata-started"),
    ("volume_status", ("moodledata",), "volume status moodledata",
     "volume_status-moodledata-started", "volume_status-moodledata-started"),
    ("heal_info", ("moodledata",), "volume heal moodledata info",
     "heal_info-moodledata-healthy", "heal_info-moodledata-healthy"),
    ("volume_get", ("moodledata",), "volume get moodledata all",
     "volume_get-moodledata-all", "volume_get-moodledata-all"),
]


def _gluster11(stem):
    found = sorted(GLUSTER11.glob(f"{stem}.gluster11.1-*"))
    assert len(found) == 1, found
    return found[0].read_text()


def _shape(value):
    """Keys and value types, recursively; names of bricks/peers/options collapsed."""
    if isinstance(value, dict):
        shapes = {_shape(v) for v in value.values()}
        if len(value) > 3 and len(shapes) <= 2:  # a mapping by name (bricks, options)
            return ("by-name", tuple(sorted(shapes, key=repr)))
        return tuple(sorted((k, _shape(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", tuple(sorted({_shape(v) for v in value}, key=repr)))
    return type(value).__name__ if value is not None else "none"


@pytest.mark.parametrize("fun,args,words,new,old", SAME_SHAPE, ids=[s[0] for s in SAME_SHAPE])
def test_gluster_11_answers_parse_to_the_same_shape_as_gluster_10(mod, fun, args, words, new,
                                                                  old):
    mod.__salt__ = {"cmd.run_all": FakeCli({words: _gluster11(new)})}
    got11 = getattr(mod, fun)(*args)
    mod.__salt__ = {"cmd.run_all": FakeCli({words: xml(old)})}
    got10 = getattr(mod, fun)(*args)
    assert got11, f"{fun} parsed nothing from gluster 11.1"
    if fun != "volume_get":  # 11.1 knows more options than 10.3; the values are strings
        assert _shape(got11) == _shape(got10)
    else:
        assert all(isinstance(v, str | list) for v in got11.values())


def test_gluster_11_healthy_volume_reads_as_healthy(mod):
    answers = {"volume status moodledata": _gluster11("volume_status-moodledata-started"),
               "volume heal moodledata info": _gluster11("heal_info-moodledata-healthy"),
               "volume heal moodledata info split-brain":
                   _gluster11("heal_info_split_brain-moodledata-healthy"),
               "volume info": _gluster11("volume_info-moodledata-started"),
               "peer status": _gluster11("peer_status")}
    mod.__salt__ = {"cmd.run_all": FakeCli(answers)}
    bricks = mod.volume_status("moodledata")["bricks"]
    assert sorted(bricks) == BRICKS and all(b["online"] for b in bricks.values())
    assert {b["entries"] for b in mod.heal_info("moodledata").values()} == {0}
    assert {b["entries"] for b in mod.heal_info("moodledata", split_brain=True).values()} == {0}
    info = mod.volume_info("moodledata")["moodledata"]
    assert (info["status"], info["type"], info["replica"]) == ("Started", "Replicate", 3)
    assert info["options"]["network.ping-timeout"] == "5"
    assert all(mod.in_cluster(p) for p in mod.peer_status())


def test_gluster_11_failure_answer_raises_with_its_message(mod):
    with pytest.raises(CommandExecutionError, match="Volume does not exist"):
        mod._parse(_gluster11("volume_info-absent"), ["volume", "info", "nosuchvolume"])


# ------------------------------------------------------------------ scale-in: bricks_removed

SCRATCH = "/srv/gluster-scratch/scratch"
SCRATCH_BRICKS = [f"{ip}:{SCRATCH}" for ip in IPS]
REMOVE_THIRD = f"volume remove-brick scratch replica 2 {SCRATCH_BRICKS[2]} force"


def test_remove_brick_force_lowers_the_replica_count(mod):
    cli = FakeCli({REMOVE_THIRD: xml("remove_brick-replica-force-ok")})
    mod.__salt__ = {"cmd.run_all": cli}
    assert mod.remove_brick("scratch", [SCRATCH_BRICKS[2]], replica=2) is True
    assert cli.calls == [REMOVE_THIRD]


def test_remove_brick_start_on_a_replica_reduction_is_refused_by_gluster(mod):
    # Measured on gluster 11.1: a replica reduction moves no data and needs `force`.
    start = REMOVE_THIRD.replace(" force", " start")
    mod.__salt__ = {"cmd.run_all": FakeCli({start: xml("remove_brick-replica-start-refused")})}
    with pytest.raises(CommandExecutionError, match="Migration of data is not needed when"
                       " reducing replica count. Use the 'force' option"):
        mod.remove_brick("scratch", [SCRATCH_BRICKS[2]], replica=2, action="start")


def test_remove_brick_refuses_an_unknown_action_before_running(mod):
    mod.__salt__ = {"cmd.run_all": FakeCli({})}
    with pytest.raises(CommandExecutionError, match="not one of force, start, status, commit"):
        mod.remove_brick("scratch", [SCRATCH_BRICKS[2]], action="commit force")


def test_peer_detach_answers_success(mod):
    cli = FakeCli({"peer detach 172.30.77.14": xml("peer_detach-ok")})
    mod.__salt__ = {"cmd.run_all": cli}
    assert mod.peer_detach("172.30.77.14") == "success"


def test_peer_detach_of_a_peer_holding_bricks_raises_glusters_reason(mod):
    cli = FakeCli({"peer detach 172.30.77.13": xml("peer_detach-peer-with-bricks-refused")})
    mod.__salt__ = {"cmd.run_all": cli}
    with pytest.raises(CommandExecutionError, match="hosts one or more bricks"):
        mod.peer_detach("172.30.77.13")


def _removal(make_state, heal, removed=None, test=False):
    answers = {
        "volume info": [xml("volume_info-scratch-replica3-started"),
                        xml("volume_info-scratch-replica2-after-remove-brick")],
        "volume heal scratch info": heal,
        REMOVE_THIRD: removed or xml("remove_brick-replica-force-ok"),
        "peer status": xml("peer_status-2peers-in-cluster"),
        "peer detach 172.30.77.13": xml("peer_detach-ok"),
    }
    return make_state(answers, test=test)


def test_bricks_removed_waits_for_no_pending_heal_then_removes_and_detaches(make_state,
                                                                            clock):
    pending = xml("heal_info-moodledata-brick3-killed").replace("/srv/gluster/moodledata",
                                                                SCRATCH)
    healthy = xml("heal_info-scratch-replica3-healthy")
    state, cli = _removal(make_state, [pending, pending, healthy])
    ret = state.bricks_removed("scratch", [SCRATCH_BRICKS[2]], detach=["172.30.77.13"],
                               heal_timeout=60, interval=5)
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == {"bricks_removed": [SCRATCH_BRICKS[2]],
                              "replica": {"old": 3, "new": 2},
                              "peers_detached": ["172.30.77.13"]}
    assert cli.ran("volume heal scratch info") == ["volume heal scratch info"] * 3
    assert cli.ran("volume remove-brick") == [REMOVE_THIRD]
    assert cli.ran("peer detach") == ["peer detach 172.30.77.13"]


def test_bricks_removed_fails_naming_the_pending_bricks_and_removes_nothing(make_state, clock):
    pending = xml("heal_info-moodledata-brick3-killed").replace("/srv/gluster/moodledata",
                                                                SCRATCH)
    # The brick that leaves is the one that is down: the remaining two still owe it 4
    # entries each, so the removal waits.
    state, cli = _removal(make_state, pending)
    ret = state.bricks_removed("scratch", [SCRATCH_BRICKS[2]], heal_timeout=30, interval=5)
    assert ret["result"] is False
    assert ret["comment"] == (
        f"Volume scratch: {SCRATCH_BRICKS[2]} not removed after 30 s: {SCRATCH_BRICKS[0]} 4"
        f" entries to heal; {SCRATCH_BRICKS[1]} 4 entries to heal (see gluster volume heal"
        " scratch info)")
    assert cli.ran("volume remove-brick") == []


def test_bricks_removed_refuses_while_a_remaining_brick_is_down(make_state, clock):
    down = xml("heal_info-moodledata-brick3-killed").replace("/srv/gluster/moodledata",
                                                             SCRATCH)
    # Removing the first brick while the third is down would leave one live copy.
    remove_first = f"volume remove-brick scratch replica 2 {SCRATCH_BRICKS[0]} force"
    state, cli = make_state({"volume info": xml("volume_info-scratch-replica3-started"),
                             "volume heal scratch info": down})
    ret = state.bricks_removed("scratch", [SCRATCH_BRICKS[0]], heal_timeout=10, interval=5)
    assert ret["result"] is False
    assert f"{SCRATCH_BRICKS[2]} not connected" in ret["comment"]
    assert remove_first not in cli.calls


def test_bricks_removed_is_a_noop_once_the_brick_is_gone(make_state):
    state, cli = make_state({
        "volume info": xml("volume_info-scratch-replica2-after-remove-brick"),
        "peer status": xml("peer_status-empty")})
    ret = state.bricks_removed("scratch", [SCRATCH_BRICKS[2]], detach=["172.30.77.13"])
    assert ret["result"] is True and ret["changes"] == {}, ret
    assert cli.calls == ["volume info", "peer status"]


def test_bricks_removed_in_test_mode_reports_without_removing(make_state):
    state, cli = _removal(make_state, xml("heal_info-scratch-replica3-healthy"), test=True)
    ret = state.bricks_removed("scratch", [SCRATCH_BRICKS[2]], detach=["172.30.77.13"])
    assert ret["result"] is None
    assert ret["changes"]["replica"] == {"old": 3, "new": 2}
    assert cli.ran("volume remove-brick") == [] and cli.ran("peer detach") == []


def test_bricks_removed_refuses_to_remove_every_brick(make_state):
    state, cli = make_state({"volume info": xml("volume_info-moodledata-started")})
    ret = state.bricks_removed("moodledata", BRICKS)
    assert ret["result"] is False and "would leave no brick" in ret["comment"]
    assert cli.ran("volume remove-brick") == []



# ----------------------------------------------------------- module and state: brick process

VOLFILE_ID = "moodledata.172.30.77.13.srv-gluster-moodledata"
# The argv of moodle3's brick process, as glusterd 11.1 started it in the lab.
BRICK_ARGV = ["/usr/sbin/glusterfsd", "-s", "172.30.77.13", "--volfile-id", VOLFILE_ID, "-p",
              "/var/run/gluster/vols/moodledata/172.30.77.13-srv-gluster-moodledata.pid",
              "-S", "/var/run/gluster/bbb4388d83691b88.socket", "--brick-name", BRICK,
              "-l", "/var/log/glusterfs/bricks/srv-gluster-moodledata.log"]
SHD_ARGV = ["/usr/sbin/glusterfs", "-s", "localhost", "--volfile-id", "shd/moodledata"]


def fake_proc(root, processes):
    for pid, argv in processes.items():
        (root / str(pid)).mkdir(parents=True)
        (root / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (root / "self").mkdir(exist_ok=True)
    return str(root)


def test_brick_pid_finds_the_glusterfsd_of_that_brick_only(mod, tmp_path):
    proc = fake_proc(tmp_path, {2664: BRICK_ARGV, 2700: SHD_ARGV})
    assert mod.brick_pid("moodledata", BRICKS[2], proc=proc) == 2664
    assert mod.brick_pid("moodledata", BRICKS[1], proc=proc) is None
    assert mod.brick_pid("scratch", BRICKS[2], proc=proc) is None


def test_brick_pid_is_none_without_a_brick_process(mod, tmp_path):
    assert mod.brick_pid("moodledata", BRICKS[2], proc=fake_proc(tmp_path, {2700: SHD_ARGV})) \
        is None


def test_brick_pid_refuses_a_brick_without_host_and_absolute_path(mod):
    with pytest.raises(CommandExecutionError, match="not host:/absolute/path"):
        mod.brick_pid("moodledata", "moodledata")


START_FORCE = "volume start moodledata force"


@pytest.fixture
def brick_state(make_state, mod):
    """The state on moodle3 with brick_pid answering from a list of PIDs in turn."""

    def build(pids, answers=None, test=False, ports=(57139,)):
        state, cli = make_state({"volume info": xml("volume_info-moodledata-started"),
                                 START_FORCE: xml("volume_start-force-brick-down"),
                                 **(answers or {})},
                                test=test, minion=("moodle3", "172.30.77.13"))
        queue, port_queue = list(pids), list(ports)
        state.__salt__["gluster.brick_pid"] = (
            lambda name, brick: queue.pop(0) if len(queue) > 1 else queue[0])
        state.__salt__["gluster.brick_port"] = (
            lambda name, brick: port_queue.pop(0) if len(port_queue) > 1 else port_queue[0])
        return state, cli

    return build


def test_brick_running_is_a_noop_while_the_brick_process_runs(brick_state):
    state, cli = brick_state([2664])
    ret = state.brick_running("moodledata", BRICKS[2])
    assert ret["result"] is True and ret["changes"] == {}, ret
    assert ret["comment"] == f"Volume moodledata: brick {BRICKS[2]} runs (pid 2664)"
    assert cli.ran("volume start") == []


def test_brick_running_starts_a_dead_brick_with_start_force_and_waits_for_it(brick_state,
                                                                              clock):
    state, cli = brick_state([None, None, None, 3100])
    ret = state.brick_running("moodledata", BRICKS[2], timeout=30, interval=2)
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == {"started": BRICKS[2]}
    assert ret["comment"] == f"Volume moodledata: brick {BRICKS[2]} is down, now runs (pid 3100)"
    assert cli.ran("volume start") == [START_FORCE]


def test_brick_running_fails_when_the_brick_stays_down(brick_state, clock):
    state, cli = brick_state([None])
    ret = state.brick_running("moodledata", BRICKS[2], timeout=10, interval=2)
    assert ret["result"] is False
    assert ret["comment"].startswith(
        f"Volume moodledata: brick {BRICKS[2]} is down, and 10 s after start force it still"
        " has no process with a port")
    assert cli.ran("volume start") == [START_FORCE]


def test_brick_running_restarts_a_brick_that_glusterd_has_no_port_for(brick_state, clock,
                                                                      monkeypatch):
    # After a power loss of every gluster host: the brick process ran, glusterd's record of
    # it said listen-port=0 (volume status: port N/A), no client could reach it.
    stopped = []
    state, cli = brick_state([2664, 2664, 3100], ports=[0, 57139])
    monkeypatch.setattr(state, "_stop_process", lambda pid, timeout: stopped.append(pid))
    ret = state.brick_running("moodledata", BRICKS[2], timeout=30, interval=2)
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == {"restarted": BRICKS[2]}
    assert stopped == [2664] and cli.ran("volume start") == [START_FORCE]
    assert "runs (pid 2664) but glusterd has no port for it" in ret["comment"]


def test_brick_running_reports_an_unsigned_brick_in_test_mode_and_stops_nothing(
        brick_state, monkeypatch):
    state, cli = brick_state([2664], ports=[0], test=True)
    monkeypatch.setattr(state, "_stop_process", lambda pid, timeout: pytest.fail("stopped"))
    ret = state.brick_running("moodledata", BRICKS[2])
    assert ret["result"] is None and ret["changes"] == {"restarted": BRICKS[2]}
    assert cli.ran("volume start") == []


@pytest.mark.parametrize(("recording", "port"), [("brickinfo-own-signed", 57139),
                                                  ("brickinfo-own-unsigned", 0)])
def test_brick_port_reads_glusterds_record_of_its_own_brick(mod, tmp_path, recording, port):
    bricks = tmp_path / "vols" / "moodledata" / "bricks"
    bricks.mkdir(parents=True)
    (bricks / "172.30.77.13:-srv-gluster-moodledata").write_text(
        (DATA / f"{recording}.gluster-11.1.txt").read_text())
    assert mod.brick_port("moodledata", BRICKS[2], glusterd_dir=str(tmp_path)) == port
    assert mod.brick_port("scratch", BRICKS[2], glusterd_dir=str(tmp_path)) is None


def test_brick_running_in_test_mode_reports_and_starts_nothing(brick_state):
    state, cli = brick_state([None], test=True)
    ret = state.brick_running("moodledata", BRICKS[2])
    assert ret["result"] is None and ret["changes"] == {"started": BRICKS[2]}
    assert cli.ran("volume start") == []


@pytest.mark.parametrize("info, comment", [
    ("volume_info-none", "Volume moodledata does not exist"),
    ("volume_info-scratch-created", None),
])
def test_brick_running_leaves_an_absent_or_unstarted_volume_alone(brick_state, info, comment):
    state, cli = brick_state([None], answers={"volume info": xml(info)})
    name = "moodledata" if comment else "scratch"
    ret = state.brick_running(name, BRICKS[2].replace("moodledata", name))
    assert ret["result"] is True and ret["changes"] == {}, ret
    assert ret["comment"] == (comment or "Volume scratch is Created") + \
        ": no brick process to check"
    assert cli.ran("volume start") == []

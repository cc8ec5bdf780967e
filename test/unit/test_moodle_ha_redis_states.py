"""Unit tests for _states/moodle_ha_redis.py (server_configured, sentinel_configured).

``__salt__`` holds the real execution module's functions (_modules/moodle_ha_redis.py); only
the network is replaced: TCP server threads on 127.0.0.1 play a Redis 8.0.2 server and its
Sentinels, answering with the replies recorded from the real ones (test/data/redis/,
README.md there) or with replies built the same way (checked against the recordings), and
keep every command they receive. ``file.chown`` is a stand-in that keeps its calls.
"""

import inspect
import json
import os
import select
import socket
import stat
import threading

import pytest
from redisrec import (
    LAB_SETTINGS,
    PASSWORD,
    SENTINEL_PASSWORD,
    SENTINEL_SETTINGS,
    lab_paths,
    parsed,
    recorded,
    redis,
)

from saltmodules import load

MASK = "********"


# --- RESP replies as Redis builds them -------------------------------------------------------

def ok():
    return b"+OK\r\n"


def error(message):
    return b"-%s\r\n" % message.encode()


def array(items):
    """An array of bulk strings (None: the null array Sentinel answers for an unknown name)."""
    if items is None:
        return b"*-1\r\n"
    out = [b"*%d\r\n" % len(items)]
    for item in items:
        data = str(item).encode("utf-8")
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def flat(mapping):
    return [part for item in mapping.items() for part in item]


def test_built_replies_are_the_recorded_bytes():
    assert ok() == recorded("auth-ok")
    assert error("ERR No such master with that name") == recorded("sentinel-master-unknown")
    assert array(parsed("config-get-runtime")) == recorded("config-get-runtime")
    assert array(parsed("sentinel-master")) == recorded("sentinel-master")
    assert array(["127.0.0.1", "16379"]) == recorded("sentinel-get-master-addr-by-name")
    assert array(None) == recorded("sentinel-get-master-addr-by-name-unknown")


# --- the fake servers ------------------------------------------------------------------------

def read_exact(stream, size):
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            raise EOFError(f"the client closed after {data!r}")
        data += chunk
    return data


def read_command(stream):
    """One RESP command (an array of bulk strings) as a list of str from an unbuffered
    stream (nothing read ahead); None at EOF."""
    head = stream.readline()
    if not head:
        return None
    assert head[:1] == b"*" and head.endswith(b"\r\n"), head
    args = []
    for _ in range(int(head[1:-2])):
        size = stream.readline()
        assert size[:1] == b"$" and size.endswith(b"\r\n"), size
        data = read_exact(stream, int(size[1:-2]) + 2)
        assert data.endswith(b"\r\n"), data
        args.append(data[:-2].decode("utf-8"))
    return args


class FakeServer:
    """A server on 127.0.0.1 (a random port) taking connections one after another: each
    command gets ``answer(args, session)``'s bytes. Keeps every command (``received``, as
    lists of str), how many connections it accepted, what it sent, and whether a client sent
    more before it had answered AUTH."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.received, self.sent = [], b""
        self.connections = 0
        self.early_after_auth = False
        self.error = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @property
    def addr(self):
        return ["127.0.0.1", self.port]

    def serve(self):
        try:
            while not self.stopping.is_set():
                try:
                    conn, _ = self.listener.accept()
                except TimeoutError:
                    continue
                self.connections += 1
                with conn, conn.makefile("rb", buffering=0) as stream:
                    conn.settimeout(5)
                    session = {}
                    while (args := read_command(stream)) is not None:
                        self.received.append(args)
                        if args[0].upper() == "AUTH":
                            ready, _, _ = select.select([conn], [], [], 0.1)
                            self.early_after_auth |= bool(ready)
                        reply = self.answer(args, session)
                        self.sent += reply
                        conn.sendall(reply)
        except Exception as exc:  # reported by stop()
            self.error = exc
        finally:
            self.listener.close()

    def stop(self):
        self.stopping.set()
        self.thread.join(5)
        assert not self.thread.is_alive(), "the server thread did not end"
        assert self.error is None, repr(self.error)


class FakeRedis(FakeServer):
    """A Redis server: password auth, CONFIG GET / SET / REWRITE on ``config`` (the
    recorded server's settings, in the order Redis 8.0.2 answered them)."""

    def __init__(self, **changed):
        self.config = redis.pairs(parsed("config-get-runtime"))
        self.config.update(changed)
        self.rewrites = 0
        super().__init__()

    def answer(self, args, session):
        name = [args[0].upper()] + args[1:]
        if name[0] == "AUTH":
            if args[1:] != [self.config["requirepass"]]:
                return recorded("auth-wrongpass")
            session["auth"] = True
            return recorded("auth-ok")
        if not session.get("auth"):
            return recorded("noauth")
        if name[:2] == ["CONFIG", "GET"]:
            # Redis answers in its own order, not the order asked.
            return array(flat({k: v for k, v in self.config.items() if k in args[2:]}))
        if name[:2] == ["CONFIG", "SET"]:
            for key, value in zip(args[2::2], args[3::2], strict=True):
                self.config[key] = str(redis.memory_bytes(value)) if key == "maxmemory" else value
            return ok()
        if name == ["CONFIG", "REWRITE"]:
            self.rewrites += 1
            return ok()
        return error(f"ERR unknown command '{args[0]}'")


class FakeSentinel(FakeServer):
    """A Sentinel monitoring ``mhrec`` (SENTINEL MASTER as recorded, at ``master`` when given,
    ``monitoring=False``: no master at all) that answers get-master-addr-by-name, MASTER and
    SET for it, and MONITOR (a new master, as Sentinel keeps it)."""

    def __init__(self, master=None, monitoring=True, **changed):
        self.masters = {}
        if monitoring:
            self.masters["mhrec"] = redis.pairs(parsed("sentinel-master"))
            if master:
                self.masters["mhrec"].update(ip=master[0], port=str(master[1]))
            self.masters["mhrec"].update({k: str(v) for k, v in changed.items()})
        super().__init__()

    def answer(self, args, session):
        if args[0].upper() != "SENTINEL" or len(args) < 3:
            return error(f"ERR unknown command '{args[0]}'")
        sub, master = args[1].lower(), self.masters.get(args[2])
        if sub == "monitor":
            if master is not None:
                return error("ERR Duplicate master name.")
            name, ip, port, quorum = args[2:6]
            self.masters[name] = dict(redis.pairs(parsed("sentinel-master")), name=name,
                                      ip=ip, port=port, quorum=quorum)
            return ok()
        if sub == "get-master-addr-by-name":
            return array([master["ip"], master["port"]] if master else None)
        if master is None:
            return recorded("sentinel-master-unknown")
        if sub == "master":
            return array(flat(master))
        if sub == "set":
            for key, value in zip(args[3::2], args[4::2], strict=True):
                master[key] = value
            return ok()
        return error(f"ERR Unknown subcommand '{args[1]}'")


@pytest.fixture
def servers():
    """Start fake servers (``servers(FakeRedis, ...)``); every one is stopped and checked
    at the end."""
    started = []

    def start(cls, *args, **kwargs):
        server = cls(*args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def refused():
    """``refused()``: the [ip, port] of a bound port nobody listens on (connections to it
    are refused while the test runs)."""
    bound = []

    def make():
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        bound.append(sock)
        return ["127.0.0.1", sock.getsockname()[1]]

    yield make
    for sock in bound:
        sock.close()


# --- the state, wired to the real execution module -------------------------------------------

class Chown:
    """file.chown stand-in: keeps (path, user, group, the file's text and mode then)."""

    def __init__(self):
        self.calls = []
        self.error = None

    def __call__(self, path, user, group):
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        self.calls.append((path, user, group, text, stat.S_IMODE(os.stat(path).st_mode)))
        return self.error


@pytest.fixture
def state():
    mod = load("_states/moodle_ha_redis.py", "moodle_ha_redis_state_under_test")
    mod.__salt__ = {f"moodle_ha_redis.{name}": fn for name, fn in vars(redis).items()
                    if inspect.isfunction(fn) and not name.startswith("_")}
    mod.__salt__["file.chown"] = Chown()
    mod.__opts__ = {"test": False}
    assert mod.__virtual__() == "moodle_ha_redis"
    return mod


@pytest.fixture
def umask():
    """A umask that would leave a new file 0600: the state must set 0640 itself."""
    old = os.umask(0o077)
    yield
    os.umask(old)


def server_run(state, name, port, sentinels, bind=("127.0.0.1",), password=PASSWORD,
               settings=None, primary=("127.0.0.1", 16379), paths="primary", **kwargs):
    return state.server_configured(
        str(name), list(bind), port, password,
        dict(LAB_SETTINGS) if settings is None else settings, "mhrec",
        [list(s) for s in sentinels], list(primary),
        paths=lab_paths(paths) if isinstance(paths, str) else paths, **kwargs)


def master(name="mhrec", quorum=1, settings=None, primary=("127.0.0.1", 16379)):
    return {"name": name, "quorum": quorum, "primary": list(primary),
            "settings": dict(SENTINEL_SETTINGS) if settings is None else settings}


def sentinel_run(state, name, port, sentinels, quorum=1, password=SENTINEL_PASSWORD,
                 settings=None, primary=("127.0.0.1", 16379), masters=None, **kwargs):
    return state.sentinel_configured(
        str(name), ["127.0.0.1"], port, password,
        masters or [master("mhrec", quorum, settings, primary)],
        [list(s) for s in sentinels], paths=lab_paths("sentinel"), **kwargs)


def assert_no_password(ret, *passwords):
    """None of ``passwords`` anywhere in ``ret``: as they are, or as JSON writes them."""
    dumped = json.dumps(ret, ensure_ascii=False)
    for password in passwords:
        assert password not in dumped and password not in repr(ret)
        assert json.dumps(password, ensure_ascii=False)[1:-1] not in dumped
        assert json.dumps(password)[1:-1] not in json.dumps(ret)


def assert_written(state, path, text, user="redis"):
    """``path`` holds ``text``, 0640, owned by ``user`` before it got its name."""
    assert path.read_text(encoding="utf-8") == text
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    tmp = f"{path}.moodle_ha-new"
    chowns = state.__salt__["file.chown"].calls
    assert [c[:4] for c in chowns] == [(tmp, user, user, text)]
    assert chowns[0][4] & 0o007 == 0, "others could read it before it was chowned"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


# --- server_configured: a missing file -------------------------------------------------------

def test_missing_file_no_sentinel_first_host_is_the_primary(state, refused, tmp_path, umask):
    path = tmp_path / "redis.conf"
    ret = server_run(state, path, 16379, [refused(), refused()], user="redis")
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == {"created": str(path), "role": "primary"}
    assert "first redis host" in ret["comment"]
    # The file the lab's redis-server 8.0.2 started from, byte for byte: no replicaof.
    text = recorded("server-config-primary", "conf").decode("utf-8")
    assert "replicaof" not in text
    assert_written(state, path, text)
    assert_no_password(ret, PASSWORD)


def test_missing_file_no_sentinel_another_host_replicates_the_first(state, refused, tmp_path,
                                                                     umask):
    path = tmp_path / "redis.conf"
    ret = server_run(state, path, 16380, [refused()], paths="replica", user="redis")
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == {"created": str(path), "role": "replica of 127.0.0.1:16379"}
    text = recorded("server-config-replica", "conf").decode("utf-8")
    assert text.endswith("\nreplicaof 127.0.0.1 16379\n")
    assert_written(state, path, text)


def test_missing_file_cluster_host_replicates_the_first_ip(state, refused, tmp_path):
    path = tmp_path / "redis.conf"
    bind, settings = ["10.0.0.12", "127.0.0.1"], {"maxmemory": "256mb", "save": ""}
    ret = server_run(state, path, 6379, [refused()], bind=bind, settings=settings,
                     primary=["10.0.0.11", 6379], paths={}, user="valkey")
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"]["role"] == "replica of 10.0.0.11:6379"
    text = redis.server_config(bind, 6379, PASSWORD, settings, replicaof=["10.0.0.11", 6379])
    assert text.endswith("\nmaxmemory 268435456\nsave \"\"\n" + "requirepass "
                         + redis.quote(PASSWORD) + "\nmasterauth " + redis.quote(PASSWORD)
                         + "\nreplicaof 10.0.0.11 6379\n")
    assert_written(state, path, text, user="valkey")


def test_missing_file_test_mode_writes_nothing(state, refused, servers, tmp_path):
    state.__opts__["test"] = True
    path = tmp_path / "redis.conf"
    ret = server_run(state, path, 16379, [refused()])
    assert ret["result"] is None
    assert ret["changes"] == {"created": str(path), "role": "primary"}
    assert "would be written" in ret["comment"]
    sentinel = servers(FakeSentinel, master=["10.0.0.12", 6379])
    ret = server_run(state, path, 16379, [sentinel.addr])
    assert ret["result"] is None
    assert ret["changes"] == {"created": str(path), "role": "replica of 10.0.0.12:6379"}
    assert list(tmp_path.iterdir()) == []
    assert state.__salt__["file.chown"].calls == []


def test_missing_file_replicates_the_primary_the_sentinels_name(state, servers, tmp_path):
    path = tmp_path / "redis.conf"
    sentinels = [servers(FakeSentinel, master=["10.0.0.12", 6379]) for _ in range(3)]
    ret = server_run(state, path, 6379, [s.addr for s in sentinels], bind=["10.0.0.11"],
                     primary=["10.0.0.11", 6379])
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == {"created": str(path), "role": "replica of 10.0.0.12:6379"}
    assert "the sentinels" in ret["comment"]
    text = path.read_text(encoding="utf-8")
    assert text == redis.server_config(["10.0.0.11"], 6379, PASSWORD, LAB_SETTINGS,
                                       replicaof=["10.0.0.12", 6379], paths=lab_paths("primary"))
    assert text.endswith("\nreplicaof 10.0.0.12 6379\n")
    for sentinel in sentinels:
        assert sentinel.received == [["SENTINEL", "get-master-addr-by-name", "mhrec"]]


def test_missing_file_on_the_primary_the_sentinels_name(state, servers, refused, tmp_path):
    # The file of the current primary was removed: no replicaof, whatever the pillar's first.
    path = tmp_path / "redis.conf"
    sentinel = servers(FakeSentinel, master=["10.0.0.12", 6379])
    ret = server_run(state, path, 6379, [refused(), sentinel.addr], bind=["10.0.0.12"],
                     primary=["10.0.0.11", 6379])
    assert ret["changes"]["role"] == "primary"
    assert "replicaof" not in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("minority", [0, 1, 2])
def test_missing_file_sentinels_disagreeing_the_majority_wins(state, servers, refused, tmp_path,
                                                              minority):
    path = tmp_path / "redis.conf"
    masters = [["10.0.0.12", 6379]] * 3
    masters[minority] = ["10.0.0.11", 6379]
    sentinels = [servers(FakeSentinel, master=m).addr for m in masters]
    # One that is down and one that does not monitor mhrec do not count.
    sentinels += [refused(), servers(FakeSentinel, monitoring=False).addr]
    ret = server_run(state, path, 6379, sentinels, bind=["10.0.0.13"],
                     primary=["10.0.0.11", 6379])
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"]["role"] == "replica of 10.0.0.12:6379"
    assert path.read_text(encoding="utf-8").endswith("\nreplicaof 10.0.0.12 6379\n")


def test_missing_file_sentinels_not_monitoring_fall_back_to_the_first(state, servers, tmp_path):
    path = tmp_path / "redis.conf"
    sentinel = servers(FakeSentinel, monitoring=False)
    ret = server_run(state, path, 6379, [sentinel.addr], bind=["10.0.0.12"],
                     primary=["10.0.0.11", 6379])
    assert ret["changes"]["role"] == "replica of 10.0.0.11:6379"
    assert "no sentinel answered" in ret["comment"]
    assert sentinel.sent == recorded("sentinel-get-master-addr-by-name-unknown")


def test_missing_file_bad_setting_fails_without_a_file(state, refused, tmp_path):
    path = tmp_path / "redis.conf"
    ret = server_run(state, path, 16379, [refused()], settings={"maxmemory": "256 mb"})
    assert ret["result"] is False
    assert ret["changes"] == {}
    assert str(path) in ret["comment"] and "not a Redis memory size" in ret["comment"]
    assert list(tmp_path.iterdir()) == []


def test_missing_file_unknown_user_fails_and_leaves_no_file(state, refused, tmp_path):
    # Salt's file.chown returns its error rather than raising it.
    state.__salt__["file.chown"].error = "User does not exist\nGroup does not exist\n"
    path = tmp_path / "redis.conf"
    ret = server_run(state, path, 16379, [refused()], user="nosuchuser")
    assert ret["result"] is False
    assert ret["changes"] == {}
    assert f"writing {path} failed" in ret["comment"] and "User does not exist" in ret["comment"]
    assert list(tmp_path.iterdir()) == []
    assert_no_password(ret, PASSWORD)


# --- server_configured: a present file -------------------------------------------------------

def present(tmp_path, name="redis.conf"):
    path = tmp_path / name
    path.write_text("# owned by the server\n", encoding="utf-8")
    return path


def test_present_file_without_runtime_touches_nothing(state, servers, tmp_path):
    path = present(tmp_path)
    server, sentinel = servers(FakeRedis), servers(FakeSentinel)
    ret = server_run(state, path, server.port, [sentinel.addr], runtime=False)
    assert ret == {"name": str(path), "result": True, "changes": {},
                   "comment": f"{path} exists (owned by the server from now on)"}
    assert (server.connections, sentinel.connections) == (0, 0)
    assert path.read_text(encoding="utf-8") == "# owned by the server\n"
    assert state.__salt__["file.chown"].calls == []


def test_present_file_server_has_the_pillars_settings(state, servers, tmp_path):
    path = present(tmp_path)
    server, sentinel = servers(FakeRedis), servers(FakeSentinel)
    ret = server_run(state, path, server.port, [sentinel.addr])
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == {}
    assert ret["comment"] == f"redis at 127.0.0.1:{server.port} has the pillar's settings"
    assert server.received == [
        ["AUTH", PASSWORD],
        ["CONFIG", "GET", "appendonly", "masterauth", "maxmemory", "maxmemory-policy",
         "requirepass", "save"]]
    # What it answered is what the lab's server answered to the same CONFIG GET.
    assert server.sent == recorded("auth-ok") + recorded("config-get-runtime")
    assert not server.early_after_auth
    assert sentinel.connections == 0
    assert_no_password(ret, PASSWORD)


def test_present_file_differing_settings_are_set_and_saved(state, servers, tmp_path):
    path = present(tmp_path)
    # A server whose masterauth was never set, with the lab's maxmemory and policy; the
    # pillar wants 256mb (Redis shows bytes) and another policy.
    server = servers(FakeRedis, masterauth="")
    settings = dict(LAB_SETTINGS, maxmemory="256mb", **{"maxmemory-policy": "allkeys-lfu"})
    ret = server_run(state, path, server.port, [], settings=settings)
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == {
        "masterauth": {"old": MASK, "new": MASK},
        "maxmemory": {"old": "67108864", "new": "268435456"},
        "maxmemory-policy": {"old": "allkeys-lru", "new": "allkeys-lfu"}}
    assert "masterauth, maxmemory, maxmemory-policy set at run time" in ret["comment"]
    assert server.received[2:] == [
        ["AUTH", PASSWORD],
        ["CONFIG", "SET", "masterauth", PASSWORD],
        ["CONFIG", "SET", "maxmemory", "268435456"],
        ["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"],
        ["CONFIG", "REWRITE"]]
    assert server.connections == 2 and server.rewrites == 1
    assert not server.early_after_auth
    assert_no_password(ret, PASSWORD)
    # The server has them now: the next run changes nothing.
    ret = server_run(state, path, server.port, [], settings=settings)
    assert (ret["result"], ret["changes"]) == (True, {}), ret["comment"]
    assert [c[:2] for c in server.received[7:]] == [["AUTH", PASSWORD], ["CONFIG", "GET"]]


def test_present_file_differing_settings_test_mode_sets_nothing(state, servers, tmp_path):
    state.__opts__["test"] = True
    path = present(tmp_path)
    server = servers(FakeRedis, masterauth="other")
    ret = server_run(state, path, server.port, [],
                     settings=dict(LAB_SETTINGS, **{"maxmemory-policy": "noeviction"}))
    assert ret["result"] is None
    assert ret["changes"] == {"masterauth": {"old": MASK, "new": MASK},
                              "maxmemory-policy": {"old": "allkeys-lru", "new": "noeviction"}}
    assert "would be set" in ret["comment"]
    assert [c[:2] for c in server.received] == [["AUTH", PASSWORD], ["CONFIG", "GET"]]
    assert server.config["maxmemory-policy"] == "allkeys-lru" and server.rewrites == 0
    assert_no_password(ret, PASSWORD, "other")


def test_present_file_bad_setting_fails_without_set(state, servers, tmp_path):
    path = present(tmp_path)
    server = servers(FakeRedis)
    ret = server_run(state, path, server.port, [], settings=dict(LAB_SETTINGS, maxmemory="lots"))
    assert ret["result"] is False
    assert ret["changes"] == {}
    assert "not a Redis memory size: 'lots'" in ret["comment"]
    assert [c[:2] for c in server.received] == [["AUTH", PASSWORD], ["CONFIG", "GET"]]
    assert_no_password(ret, PASSWORD)


def test_present_file_wrong_password_is_not_rotated(state, servers, tmp_path):
    path = present(tmp_path)
    server = servers(FakeRedis)
    new = "N3w-pass word"
    ret = server_run(state, path, server.port, [], password=new)
    assert ret["result"] is False
    assert ret["changes"] == {}
    assert "WRONGPASS" in ret["comment"]
    assert "a changed password is not rotated by the formula" in ret["comment"]
    assert server.received == [["AUTH", new]]
    assert_no_password(ret, new, PASSWORD)


def test_present_file_server_not_listening_yet(state, refused, tmp_path):
    path = present(tmp_path)
    addr = refused()
    ret = server_run(state, path, addr[1], [])
    assert ret["result"] is True
    assert ret["changes"] == {}
    assert f"{path} exists; the server does not answer yet" in ret["comment"]
    assert f"redis at 127.0.0.1:{addr[1]}" in ret["comment"] and "refused" in ret["comment"]
    assert_no_password(ret, PASSWORD)


# --- sentinel_configured ---------------------------------------------------------------------

@pytest.mark.parametrize("answering", [True, False])
def test_sentinel_missing_file_monitors_the_primary(state, servers, refused, tmp_path, umask,
                                                    answering):
    path = tmp_path / "sentinel.conf"
    other = servers(FakeSentinel).addr if answering else refused()
    ret = sentinel_run(state, path, 26390, [refused(), other])
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == {"created": str(path), "monitors": "mhrec at 127.0.0.1:16379"}
    assert ("(the sentinels)" if answering else "no sentinel answered") in ret["comment"]
    # The file the lab's sentinel started from, byte for byte.
    assert_written(state, path, recorded("sentinel-config", "conf").decode("utf-8"))
    assert_no_password(ret, SENTINEL_PASSWORD)


def test_sentinel_missing_file_monitors_the_sentinels_primary(state, servers, tmp_path):
    path = tmp_path / "sentinel.conf"
    sentinels = [servers(FakeSentinel, master=m).addr
                 for m in (["10.0.0.11", 6379], ["10.0.0.12", 6379], ["10.0.0.12", 6379])]
    ret = sentinel_run(state, path, 26379, sentinels, quorum=2, primary=["10.0.0.11", 6379])
    assert ret["changes"] == {"created": str(path), "monitors": "mhrec at 10.0.0.12:6379"}
    assert "\nsentinel monitor mhrec 10.0.0.12 6379 2\n" in path.read_text(encoding="utf-8")


def test_sentinel_missing_file_test_mode_writes_nothing(state, refused, tmp_path):
    state.__opts__["test"] = True
    path = tmp_path / "sentinel.conf"
    ret = sentinel_run(state, path, 26390, [refused()])
    assert ret["result"] is None
    assert ret["changes"] == {"created": str(path), "monitors": "mhrec at 127.0.0.1:16379"}
    assert list(tmp_path.iterdir()) == []
    assert state.__salt__["file.chown"].calls == []


@pytest.mark.parametrize("test_mode", [False, True])
def test_sentinel_unsafe_password_fails_with_a_comment(state, refused, tmp_path, test_mode):
    # Sentinel rewrites auth-pass unquoted: a space would break its next start.
    state.__opts__["test"] = test_mode
    path = tmp_path / "sentinel.conf"
    password = "pass word"
    ret = sentinel_run(state, path, 26390, [refused()], password=password)
    assert ret["result"] is False
    assert ret["changes"] == {}
    assert ret["comment"].startswith(f"{path} cannot be written: Sentinel cannot keep this"
                                     " password in sentinel.conf")
    assert list(tmp_path.iterdir()) == []
    assert_no_password(ret, password)


def test_sentinel_present_file_without_runtime_touches_nothing(state, servers, tmp_path):
    path = present(tmp_path, "sentinel.conf")
    sentinel = servers(FakeSentinel)
    ret = sentinel_run(state, path, sentinel.port, [sentinel.addr], runtime=False)
    assert (ret["result"], ret["changes"]) == (True, {})
    assert sentinel.connections == 0


def test_sentinel_present_file_same_settings(state, servers, tmp_path):
    path = present(tmp_path, "sentinel.conf")
    sentinel = servers(FakeSentinel)
    ret = sentinel_run(state, path, sentinel.port, [sentinel.addr])
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == {}
    assert "has the pillar's settings for mhrec" in ret["comment"]
    assert sentinel.received == [["SENTINEL", "MASTER", "mhrec"]]
    assert sentinel.sent == recorded("sentinel-master")


def test_sentinel_present_file_differing_settings_one_sentinel_set(state, servers, tmp_path):
    path = present(tmp_path, "sentinel.conf")
    sentinel = servers(FakeSentinel)
    settings = dict(SENTINEL_SETTINGS, **{"failover-timeout": 180000})
    ret = sentinel_run(state, path, sentinel.port, [], quorum=2, settings=settings)
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == {"mhrec": {"failover-timeout": {"old": "60000", "new": "180000"},
                                        "quorum": {"old": "1", "new": "2"}}}
    assert "mhrec: failover-timeout, quorum set with SENTINEL SET" in ret["comment"]
    assert sentinel.received == [
        ["SENTINEL", "MASTER", "mhrec"],
        ["SENTINEL", "SET", "mhrec", "failover-timeout", "180000", "quorum", "2"]]
    ret = sentinel_run(state, path, sentinel.port, [], quorum=2, settings=settings)
    assert (ret["result"], ret["changes"]) == (True, {}), ret["comment"]


def test_sentinel_present_file_differing_test_mode_sets_nothing(state, servers, tmp_path):
    state.__opts__["test"] = True
    path = present(tmp_path, "sentinel.conf")
    sentinel = servers(FakeSentinel)
    ret = sentinel_run(state, path, sentinel.port, [],
                       settings=dict(SENTINEL_SETTINGS, **{"parallel-syncs": 2}))
    assert ret["result"] is None
    assert ret["changes"] == {"mhrec": {"parallel-syncs": {"old": "1", "new": "2"}}}
    assert ret["comment"] == "would change: mhrec (parallel-syncs)"
    assert sentinel.received == [["SENTINEL", "MASTER", "mhrec"]]


@pytest.mark.parametrize("others", ["answering", "silent"])
def test_sentinel_present_file_new_master_is_monitored(state, servers, refused, tmp_path,
                                                       others):
    # A master enabled on a running cluster (the sessions server): MONITOR at the address
    # the other sentinels name (the first redis host's when none answers), then auth-pass
    # and the settings in one SET; the second run changes nothing.
    path = present(tmp_path, "sentinel.conf")
    sentinel = servers(FakeSentinel, monitoring=False)
    other = (servers(FakeSentinel, master=["10.0.0.13", 6380]).addr if others == "answering"
             else refused())
    where = "10.0.0.13:6380" if others == "answering" else "127.0.0.1:16379"
    ret = sentinel_run(state, path, sentinel.port, [sentinel.addr, other])
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == {"mhrec": {"monitors": where}}
    assert ret["comment"].startswith(f"mhrec monitored at {where}")
    ip, port = where.split(":")
    settings = [p for k, v in sorted(SENTINEL_SETTINGS.items()) for p in (k, str(v))]
    assert sentinel.received == [
        ["SENTINEL", "MASTER", "mhrec"],
        ["SENTINEL", "MONITOR", "mhrec", ip, port, "1"],
        ["SENTINEL", "SET", "mhrec", "auth-pass", SENTINEL_PASSWORD, *settings]]
    assert_no_password(ret, SENTINEL_PASSWORD)
    del sentinel.masters["mhrec"]["auth-pass"]
    ret = sentinel_run(state, path, sentinel.port, [sentinel.addr, other])
    assert (ret["result"], ret["changes"]) == (True, {}), ret["comment"]


def test_sentinel_present_file_new_master_test_mode_monitors_nothing(state, servers, refused,
                                                                     tmp_path):
    state.__opts__["test"] = True
    path = present(tmp_path, "sentinel.conf")
    sentinel = servers(FakeSentinel, monitoring=False)
    ret = sentinel_run(state, path, sentinel.port, [refused()])
    assert ret["result"] is None
    assert ret["changes"] == {"mhrec": {"monitors": "127.0.0.1:16379"}}
    assert sentinel.received == [["SENTINEL", "MASTER", "mhrec"]]
    assert sentinel.sent == recorded("sentinel-master-unknown")


def test_sentinel_two_masters_one_file_then_each_kept(state, servers, refused, tmp_path):
    # The cache's and the sessions' servers under one Sentinel: one file monitoring both,
    # each master with its own address; at run time each is checked on its own.
    path = tmp_path / "sentinel.conf"
    masters = [master("mhrec"), master("mhsess", 2, primary=("127.0.0.1", 16380))]
    ret = sentinel_run(state, path, 26390, [refused()], masters=masters)
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"]["monitors"] == "mhrec at 127.0.0.1:16379, mhsess at 127.0.0.1:16380"
    text = path.read_text(encoding="utf-8")
    assert "\nsentinel monitor mhrec 127.0.0.1 16379 1\n" in text
    assert "\nsentinel monitor mhsess 127.0.0.1 16380 2\n" in text
    assert text.count("sentinel auth-pass ") == 2
    sentinel = servers(FakeSentinel)
    ret = sentinel_run(state, path, sentinel.port, [refused()], masters=masters)
    assert ret["result"] is True, ret["comment"]
    assert list(ret["changes"]) == ["mhsess"]
    assert [c[:3] for c in sentinel.received] == [
        ["SENTINEL", "MASTER", "mhrec"], ["SENTINEL", "MASTER", "mhsess"],
        ["SENTINEL", "MONITOR", "mhsess"], ["SENTINEL", "SET", "mhsess"]]


def test_sentinel_present_file_not_listening_yet(state, refused, tmp_path):
    path = present(tmp_path, "sentinel.conf")
    ret = sentinel_run(state, path, refused()[1], [])
    assert (ret["result"], ret["changes"]) == (True, {})
    assert "the sentinel does not answer yet" in ret["comment"]

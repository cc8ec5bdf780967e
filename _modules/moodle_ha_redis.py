"""
Redis and Redis Sentinel for moodle_ha's shared cache: a small RESP client (the password
goes over the socket, never on a command line or into a process's environment), parsers
for ``INFO`` and Sentinel's replies, and the configuration files the layer creates once.

Redis and Sentinel own their files after the first start (Sentinel rewrites both on every
failover: ``replicaof`` on the servers, the monitored address and epochs in its own), so
Salt writes a file only when it is missing and changes settings afterwards at run time
(``CONFIG SET`` + ``CONFIG REWRITE``, ``SENTINEL SET``): see ``_states/moodle_ha_redis.py``.
"""

import socket

from salt.exceptions import CommandExecutionError

__virtualname__ = "moodle_ha_redis"

DEFAULT_TIMEOUT = 2.0
# Settings the state keeps equal to the pillar on a running server (CONFIG GET/SET names).
SERVER_RUNTIME = ("maxmemory", "maxmemory-policy", "requirepass", "masterauth", "save",
                  "appendonly")
SECRET_SETTINGS = ("requirepass", "masterauth")
# Sentinel's per-master settings the state keeps equal to the pillar (SENTINEL SET names).
SENTINEL_RUNTIME = ("quorum", "down-after-milliseconds", "failover-timeout", "parallel-syncs")
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000 ** 2, "mb": 1024 ** 2,
          "g": 1000 ** 3, "gb": 1024 ** 3}
# quote(): inside double quotes sdssplitargs reads \\ and \" as the character itself and
# \xHH as that byte; a control character could end the line (\n) or the C string (NUL), so
# every one is written as \xHH.
_QUOTE_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F)}
_QUOTE_ESCAPES.update({ord("\\"): "\\\\", ord('"'): '\\"'})
_SENTINEL_UNSAFE = frozenset(chr(code) for code in (*range(0x20), 0x7F)) | {'"', "'"}


def __virtual__():
    return __virtualname__


class RedisReplyError(CommandExecutionError):
    """An error reply (``-ERR ...``) from the server: the command reached it."""


def quote(value):
    """
    A double-quoted string for redis.conf / sentinel.conf that Redis's reader
    (``sdssplitargs``) turns back into exactly ``value``'s UTF-8 bytes: backslash and double
    quote escaped, every control character (including newline, NUL and DEL) as ``\\xHH``,
    everything else, non-ASCII included, as it is.

    CLI Example:

    .. code-block:: bash

        salt-call moodle_ha_redis.quote 'a "b"'
    """
    return '"' + str(value).translate(_QUOTE_ESCAPES) + '"'


def sentinel_safe(value):
    """
    True when ``value`` survives Sentinel's own rewrite of sentinel.conf: Sentinel (8.0.2 as
    much as older ones) writes the master's name and ``auth-pass`` back unquoted on every
    rewrite (the first one at its start), so a value with whitespace, a control character,
    a single or a double quote makes the next start fail (``FATAL CONFIG FILE ERROR``).
    Backslashes and non-ASCII characters are fine.

    CLI Example:

    .. code-block:: bash

        salt-call moodle_ha_redis.sentinel_safe 'pass word'
    """
    text = str(value)
    return bool(text) and not any(c.isspace() or c in _SENTINEL_UNSAFE for c in text)


def resp_encode(*args):
    """One command as a RESP array of bulk strings."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode("utf-8")
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _read_line(stream):
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise CommandExecutionError("the connection closed in the middle of a reply")
    return line[:1], line[1:-2]


def _size(kind, body):
    try:
        return int(body)
    except ValueError:
        raise CommandExecutionError(f"not a RESP reply: {kind + body[:40]!r}") from None


def parse_reply(stream):
    """
    One RESP2 reply from a binary file object: simple strings and bulk strings as ``str``
    (UTF-8), integers as ``int``, arrays as lists, a null bulk string or array as None; an
    error reply raises :py:class:`RedisReplyError` with the server's message, a reply cut
    short or not RESP raises CommandExecutionError.
    """
    kind, body = _read_line(stream)
    if kind == b"+":
        return body.decode("utf-8", "replace")
    if kind == b"-":
        raise RedisReplyError(body.decode("utf-8", "replace"))
    if kind == b":":
        return _size(kind, body)
    if kind == b"$":
        size = _size(kind, body)
        if size < 0:
            return None
        data = stream.read(size + 2)
        if len(data) != size + 2:
            raise CommandExecutionError("the connection closed in the middle of a reply")
        if data[-2:] != b"\r\n":
            raise CommandExecutionError(f"not a RESP reply: bulk string of {size} bytes "
                                        f"followed by {data[-2:]!r}")
        return data[:-2].decode("utf-8", "replace")
    if kind == b"*":
        size = _size(kind, body)
        if size < 0:
            return None
        return [parse_reply(stream) for _ in range(size)]
    raise CommandExecutionError(f"not a RESP reply: {kind + body[:40]!r}")


def commands(host, port, cmds, password=None, timeout=DEFAULT_TIMEOUT):
    """
    Send commands (each a list of arguments) over one connection; their replies in order.
    With a password, ``AUTH`` goes first and the commands are sent only after it succeeded
    (its reply is not returned). A connection failure, a timeout or a reply that is not RESP
    raises CommandExecutionError naming host:port; an error reply (a refused ``AUTH``
    included) raises RedisReplyError with the server's message, and the replies of later
    commands are not read.

    CLI Example:

    .. code-block:: bash

        salt-call moodle_ha_redis.commands 127.0.0.1 6379 '[["PING"]]'
    """
    cmds = [list(c) for c in cmds]
    try:
        with socket.create_connection((str(host), int(port)), timeout=timeout) as sock, \
                sock.makefile("rb") as stream:
            if password:
                # Not pipelined with the commands: after a refused AUTH they would still run
                # (unauthenticated) on a server that has no password.
                sock.sendall(resp_encode("AUTH", password))
                parse_reply(stream)
            sock.sendall(b"".join(resp_encode(*c) for c in cmds))
            return [parse_reply(stream) for _ in cmds]
    except RedisReplyError:
        raise
    except (CommandExecutionError, OSError, ValueError) as exc:
        raise CommandExecutionError(f"redis at {host}:{port}: {exc}") from None


def command(host, port, *args, password=None, timeout=DEFAULT_TIMEOUT):
    """
    One command's reply (see :py:func:`commands`).

    CLI Example:

    .. code-block:: bash

        salt-call moodle_ha_redis.command 127.0.0.1 26379 SENTINEL masters
    """
    return commands(host, port, [args], password=password, timeout=timeout)[0]


def parse_info(text):
    """``INFO`` text as a flat dict of its ``key:value`` lines (section headers dropped)."""
    out = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, value = line.split(":", 1)
        out[key] = value
    return out


def pairs(reply):
    """A flat ``[key, value, key, value, ...]`` reply (CONFIG GET, SENTINEL MASTER) as a dict."""
    reply = reply or []
    return {reply[i]: reply[i + 1] for i in range(0, len(reply) - 1, 2)}


def memory_bytes(value):
    """
    A Redis memory size (``256mb``, ``1gb``, ``1000000``) in bytes, as Redis reads it: units
    ``b``, ``k`` / ``m`` / ``g`` (powers of 1000) and ``kb`` / ``mb`` / ``gb`` (powers of
    1024), any case. ValueError for anything else, and also for a unit without digits,
    which Redis would take as 0.
    """
    text = str(value).strip().lower()
    digits = text.rstrip("kmgb")
    unit = text[len(digits):]
    if not (digits.isascii() and digits.isdigit()) or unit not in _UNITS:
        raise ValueError(f"not a Redis memory size: {value!r}")
    return int(digits) * _UNITS[unit]


def normalized(setting, value):
    """A setting's value as CONFIG GET prints it, for comparing the pillar with the server."""
    if setting == "maxmemory":
        return str(memory_bytes(value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


def server_settings_diff(want, have):
    """The settings of ``want`` (CONFIG names) whose value differs on the server."""
    return sorted(k for k, v in want.items() if normalized(k, v) != (have.get(k) or ""))


def sentinel_settings_diff(want, have):
    """The per-master settings of ``want`` that differ in SENTINEL MASTER's reply."""
    return sorted(k for k, v in want.items() if str(v) != str(have.get(k, "")))


def replication(host, port, password=None, timeout=DEFAULT_TIMEOUT):
    """
    ``INFO replication`` of one server, parsed (``role``, ``master_host``,
    ``master_link_status``, ``connected_slaves``, ...).

    CLI Example:

    .. code-block:: bash

        salt moodle1 moodle_ha_redis.replication 172.30.77.11 6379 password=...
    """
    return parse_info(command(host, port, "INFO", "replication", password=password,
                              timeout=timeout))


def master_addr(sentinels, master_name, timeout=DEFAULT_TIMEOUT):
    """
    The primary the Sentinels agree on: ``SENTINEL get-master-addr-by-name`` asked of each
    ``(host, port)``; the address most of the answering ones give, as ``[ip, port]`` (on a
    tie the ``(ip, port)`` first in sort order, so every caller picks the same one), or None
    when none gives one: none answers (a first deploy: no Sentinel runs yet) or none
    monitors ``master_name`` (Sentinel's null reply). A Sentinel that cannot be reached,
    answers with an error or with anything but an address does not count.

    CLI Example:

    .. code-block:: bash

        salt moodle1 moodle_ha_redis.master_addr '[["172.30.77.11", 26379]]' moodle_ha
    """
    votes = {}
    for host, port in sentinels:
        try:
            reply = command(host, port, "SENTINEL", "get-master-addr-by-name", master_name,
                            timeout=timeout)
        except CommandExecutionError:
            continue
        if isinstance(reply, list) and len(reply) == 2 and str(reply[1]).isdigit():
            key = (str(reply[0]), int(reply[1]))
            votes[key] = votes.get(key, 0) + 1
    if not votes:
        return None
    best = max(sorted(votes), key=lambda k: votes[k])
    return [best[0], best[1]]


def _lines(pairs_):
    return "".join(f"{key} {value}\n" for key, value in pairs_)


HEADER = (
    "# Created by Salt (moodle_ha.redis) because this file did not exist. From now on the\n"
    "# server owns it: Sentinel and Salt change it at run time and persist the change with\n"
    "# CONFIG REWRITE. Change settings in the pillar (moodle_ha:redis), not here.\n"
)


def server_config(bind, port, password, settings, replicaof=None, paths=None):
    """
    The text of a new redis.conf: listening on ``bind`` (a list of addresses), password
    auth (``requirepass`` and ``masterauth``, so any server can become a replica),
    ``settings`` (name: value; pillar redis:server; a value is written as it is, so
    ``save: "3600 1 300 100"`` is several arguments, and an empty ``save`` as ``""``),
    ``replicaof`` ``[ip, port]`` unless this server starts as the primary, and ``paths``
    (``pidfile``, ``logfile``, ``dir``, ``dbfilename``; written as they are: ``logfile:
    '""'`` logs to standard output). The passwords are quoted with :py:func:`quote`.
    """
    paths = paths or {}
    lines = [("bind", " ".join(str(b) for b in bind)), ("port", int(port)),
             ("protected-mode", "yes"), ("daemonize", "no")]
    for key in ("pidfile", "logfile", "dir", "dbfilename"):
        if paths.get(key):
            lines.append((key, paths[key]))
    for key, value in sorted((settings or {}).items()):
        if key == "save" and value in ("", None):
            lines.append((key, '""'))
        elif key == "maxmemory":
            lines.append((key, memory_bytes(value)))
        else:
            lines.append((key, normalized(key, value)))
    lines += [("requirepass", quote(password)), ("masterauth", quote(password))]
    if replicaof:
        lines.append(("replicaof", f"{replicaof[0]} {int(replicaof[1])}"))
    return HEADER + _lines(lines)


def sentinel_config(bind, port, masters, password, paths=None):
    """
    The text of a new sentinel.conf: monitor each of ``masters`` (``{"name", "addr":
    [ip, port], "quorum", "settings"}``; settings are the per-master ones:
    down-after-milliseconds, failover-timeout, parallel-syncs), authenticating with
    ``password``; ``paths`` (``pidfile``, ``logfile``, ``dir``) as in
    :py:func:`server_config`. ValueError when a master's name or ``password`` is not
    :py:func:`sentinel_safe`.
    """
    names = [m["name"] for m in masters]
    for what, value in [("master name", n) for n in names] + [("password", password)]:
        if not sentinel_safe(value):
            raise ValueError(f"Sentinel cannot keep this {what} in sentinel.conf: it rewrites "
                             "it unquoted, so it must be non-empty, without whitespace, "
                             "control characters and quotes")
    if len(set(names)) != len(names):
        raise ValueError(f"the monitored masters' names repeat: {', '.join(names)}")
    paths = paths or {}
    lines = [("bind", " ".join(str(b) for b in bind)), ("port", int(port)),
             ("daemonize", "no")]
    for key in ("pidfile", "logfile", "dir"):
        if paths.get(key):
            lines.append((key, paths[key]))
    lines.append(("sentinel resolve-hostnames", "no"))
    for master in masters:
        name, addr = master["name"], master["addr"]
        lines += [("sentinel monitor", f"{name} {addr[0]} {int(addr[1])} {int(master['quorum'])}"),
                  ("sentinel auth-pass", f"{name} {quote(password)}")]
        for key, value in sorted((master.get("settings") or {}).items()):
            lines.append((f"sentinel {key}", f"{name} {value}"))
    return HEADER + _lines(lines)


def resp_hex(*args):
    """
    One command's RESP bytes as hex, for HAProxy's ``tcp-check send-binary``: the arguments
    (a password among them) reach the check byte for byte, whatever characters they hold.

    CLI Example:

    .. code-block:: bash

        salt-call moodle_ha_redis.resp_hex INFO replication
    """
    return resp_encode(*args).hex()

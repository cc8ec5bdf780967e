"""
Redis and Redis Sentinel for moodle_ha's shared cache: each host's configuration file is
written once, then owned by the server (Sentinel rewrites both files on every failover), and
the pillar's settings are kept at run time.

- :py:func:`server_configured`: a missing redis.conf is written as a replica of the primary
  the Sentinels name (the first redis host when none answers: a new cluster); on a running
  server the settings differing from the pillar are changed with ``CONFIG SET`` and saved
  with ``CONFIG REWRITE`` (no restart: a restart empties a cache without persistence).
- :py:func:`sentinel_configured`: the same for sentinel.conf and the monitored primary's
  settings (``SENTINEL SET``).

The password reaches the servers over the socket only (``moodle_ha_redis.commands``); changes
and comments never show it.
"""

import os

from salt.exceptions import CommandExecutionError

__virtualname__ = "moodle_ha_redis"

MASK = "********"
# Settings whose values are the password: never in changes.
SECRET_SETTINGS = ("requirepass", "masterauth")


def __virtual__():
    if "moodle_ha_redis.command" not in __salt__:
        return (False, "moodle_ha_redis: the moodle_ha_redis execution module is not loaded")
    return __virtualname__


def _ret(name):
    return {"name": name, "result": False, "changes": {}, "comment": ""}


def _write_once(path, text, user):
    """``text`` into a new file at ``path``, 0640 and owned by ``user`` before it gets its
    name (the server must not read a half-written file, nor anyone else the password).
    OSError or CommandExecutionError when it cannot be, and then there is no file."""
    tmp = f"{path}.moodle_ha-new"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        # file.chown returns its errors ("User does not exist") instead of raising them: a
        # file left to root would exist, so never be written again, and the server could not
        # read it.
        error = __salt__["file.chown"](tmp, user, user)
        if error:
            raise CommandExecutionError(f"chown {user}:{user} {tmp}: {str(error).strip()}")
        os.chmod(tmp, 0o640)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _write_new(ret, text, user, comment):
    """:py:func:`_write_once` of ``ret``'s file: ``ret`` with ``comment`` when it was
    written, a failure without changes when it was not."""
    try:
        _write_once(ret["name"], text, user)
    except (OSError, CommandExecutionError) as exc:
        ret.update(changes={}, comment=f"writing {ret['name']} failed: {exc}")
        return ret
    ret.update(result=True, comment=comment)
    return ret


def _primary(sentinels, master_name, primary):
    """(``[ip, port]``, where from) of the primary a new file points at."""
    found = __salt__["moodle_ha_redis.master_addr"](sentinels, master_name)
    if found:
        return [str(found[0]), int(found[1])], "the sentinels"
    return [str(primary[0]), int(primary[1])], "the first redis host (no sentinel answered)"


def _create(ret, name, user, locate, build):
    """Write the missing file ``name``: ``locate()`` gives (where the primary is, from whom)
    or raises CommandExecutionError (the state fails with it); ``build(where)`` gives the
    file's text, the changes and what the comment says of it; a ValueError from it (a value
    the file cannot carry) fails the state naming the file."""
    try:
        where, source = locate()
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret
    try:
        text, changes, what = build(where)
    except ValueError as exc:
        ret["comment"] = f"{name} cannot be written: {exc}"
        return ret
    ret["changes"] = changes
    if __opts__["test"]:
        ret.update(result=None, comment=f"{name} would be written{what} ({source})")
        return ret
    return _write_new(ret, text, user, f"{name} written{what} ({source})")


def _primaries(sentinels, masters):
    """(``[(master name, [ip, port])]``, from whom) of every master in ``masters``: each
    primary as the sentinels name it, else the master's ``primary``."""
    found, sources = [], set()
    for master in masters:
        addr, source = _primary(sentinels, master["name"], master["primary"])
        found.append((master["name"], addr))
        sources.add(source)
    return found, "; ".join(sorted(sources))


def _shown(setting, value):
    return MASK if setting in SECRET_SETTINGS else value


def server_configured(name, bind, port, password, settings, master_name, sentinels, primary,
                      user="redis", paths=None, runtime=True):
    """
    The Redis server's configuration file ``name`` exists, and a running server has the
    pillar's settings.

    name
        Path of the server's configuration file (redis.conf).
    bind
        Addresses it listens on; the first is the one the cluster and this state use.
    port
        Its port.
    password
        ``requirepass`` and ``masterauth`` (every server may become a replica).
    settings
        Settings kept equal to the pillar (CONFIG names: maxmemory, maxmemory-policy, save,
        appendonly), written into a new file and changed at run time.
    master_name, sentinels
        Sentinel's name of the primary and the ``[ip, port]`` of every sentinel, asked where
        the primary is when the file is written.
    primary
        ``[ip, port]`` of the first redis host: the primary of a new cluster.
    runtime
        False: only write a missing file (before the unit is started on it); True: also keep
        the running server's settings.
    """
    ret = _ret(name)
    host = str(bind[0])
    if not os.path.exists(name):
        def build(master):
            replicaof = None if master == [host, int(port)] else master
            role = "primary" if replicaof is None else f"replica of {master[0]}:{master[1]}"
            text = __salt__["moodle_ha_redis.server_config"](bind, port, password, settings,
                                                             replicaof=replicaof, paths=paths)
            return text, {"created": name, "role": role}, f": {role}"

        return _create(ret, name, user, lambda: _primary(sentinels, master_name, primary),
                       build)
    if not runtime:
        ret.update(result=True, comment=f"{name} exists (owned by the server from now on)")
        return ret
    want = dict(settings or {}, requirepass=password, masterauth=password)
    try:
        have = __salt__["moodle_ha_redis.pairs"](__salt__["moodle_ha_redis.command"](
            host, port, "CONFIG", "GET", *sorted(want), password=password))
    except CommandExecutionError as exc:
        if "WRONGPASS" in str(exc) or "NOAUTH" in str(exc):
            ret["comment"] = (f"redis at {host}:{port} refuses secrets:redis_password ({exc}):"
                              " a changed password is not rotated by the formula")
            return ret
        ret.update(result=True, comment=f"{name} exists; the server does not answer yet"
                                        f" ({exc}): its settings are checked when it does")
        return ret
    try:
        diff = __salt__["moodle_ha_redis.server_settings_diff"](want, have)
    except ValueError as exc:
        ret["comment"] = f"the pillar's settings for redis at {host}:{port}: {exc}"
        return ret
    if not diff:
        ret.update(result=True, comment=f"redis at {host}:{port} has the pillar's settings")
        return ret
    normalized = __salt__["moodle_ha_redis.normalized"]
    ret["changes"] = {k: {"old": _shown(k, have.get(k)), "new": _shown(k, normalized(k, want[k]))}
                      for k in diff}
    if __opts__["test"]:
        ret.update(result=None, comment=f"{', '.join(diff)} would be set at run time")
        return ret
    cmds = [["CONFIG", "SET", k, normalized(k, want[k])] for k in diff] + [["CONFIG", "REWRITE"]]
    try:
        __salt__["moodle_ha_redis.commands"](host, port, cmds, password=password)
    except CommandExecutionError as exc:
        ret["changes"] = {}
        ret["comment"] = f"changing {', '.join(diff)} on redis at {host}:{port} failed: {exc}"
        return ret
    ret.update(result=True, comment=f"{', '.join(diff)} set at run time and saved ({name})")
    return ret


def _monitor(ret, host, port, master, password, sentinels):
    """Have the sentinel at ``host:port`` monitor ``master``, new to it (a server added to
    an existing cluster): at the address the other sentinels name (else its ``primary``),
    with the pillar's settings. Returns an error text, or None with ``ret``'s changes made."""
    name = master["name"]
    others = [s for s in sentinels if [str(s[0]), int(s[1])] != [host, int(port)]]
    try:
        addr, source = _primary(others, name, master["primary"])
    except CommandExecutionError as exc:
        return str(exc)
    where = f"{addr[0]}:{addr[1]}"
    ret["changes"][name] = {"monitors": where}
    if __opts__["test"]:
        return None
    settings = [part for k, v in sorted((master.get("settings") or {}).items())
                for part in (k, str(v))]
    cmds = [["SENTINEL", "MONITOR", name, addr[0], str(addr[1]), str(master["quorum"])],
            ["SENTINEL", "SET", name, "auth-pass", password, *settings]]
    try:
        __salt__["moodle_ha_redis.commands"](host, port, cmds)
    except CommandExecutionError as exc:
        del ret["changes"][name]
        return f"SENTINEL MONITOR {name} {where} on {host}:{port} failed: {exc}"
    ret["comments"].append(f"{name} monitored at {where} ({source})")
    return None


def _master_kept(ret, host, port, master, password, sentinels):
    """One monitored master's settings equal to the pillar's (SENTINEL SET); a master the
    sentinel does not know yet is added (:py:func:`_monitor`). An error text, or None."""
    name = master["name"]
    want = dict(master.get("settings") or {}, quorum=master["quorum"])
    try:
        have = __salt__["moodle_ha_redis.pairs"](__salt__["moodle_ha_redis.command"](
            host, port, "SENTINEL", "MASTER", name))
    except CommandExecutionError as exc:
        if "No such master" in str(exc):
            return _monitor(ret, host, port, master, password, sentinels)
        raise
    diff = __salt__["moodle_ha_redis.sentinel_settings_diff"](want, have)
    if not diff:
        return None
    ret["changes"][name] = {k: {"old": have.get(k), "new": str(want[k])} for k in diff}
    if __opts__["test"]:
        return None
    args = [part for k in diff for part in (k, str(want[k]))]
    try:
        __salt__["moodle_ha_redis.command"](host, port, "SENTINEL", "SET", name, *args)
    except CommandExecutionError as exc:
        del ret["changes"][name]
        return f"SENTINEL SET {name} on {host}:{port} failed: {exc}"
    ret["comments"].append(f"{name}: {', '.join(diff)} set with SENTINEL SET")
    return None


def sentinel_configured(name, bind, port, password, masters, sentinels, user="redis",
                        paths=None, runtime=True):
    """
    Redis Sentinel's configuration file ``name`` exists, and a running Sentinel monitors
    every one of ``masters`` with the pillar's settings.

    name
        Path of Sentinel's configuration file.
    bind, port
        Addresses and port of this Sentinel (the first address is the one used here).
    password
        What Sentinel logs in to the servers with (``sentinel auth-pass``).
    masters
        The monitored primaries, each ``{"name", "quorum", "settings", "primary"}``: its
        name, how many sentinels must agree it is down, its per-master settings
        (down-after-milliseconds, failover-timeout, parallel-syncs), and ``[ip, port]`` of
        the first redis host's server (the primary of a new cluster).
    sentinels
        ``[ip, port]`` of every sentinel, asked where each primary is when the file is
        written or a master is new to this sentinel.
    runtime
        As in :py:func:`server_configured`. A master this sentinel does not monitor yet
        (one enabled later, e.g. the sessions server) is added with ``SENTINEL MONITOR``
        at the address the other sentinels name.
    """
    ret = _ret(name)
    host = str(bind[0])
    if not os.path.exists(name):
        def build(found):
            addrs = dict(found)
            # ValueError: a password or master name Sentinel's own rewrite would break (the
            # message names which, never its value).
            text = __salt__["moodle_ha_redis.sentinel_config"](
                bind, port, [dict(m, addr=addrs[m["name"]]) for m in masters], password,
                paths=paths)
            where = ", ".join(f"{n} at {a[0]}:{a[1]}" for n, a in found)
            return text, {"created": name, "monitors": where}, f", monitoring {where}"

        return _create(ret, name, user, lambda: _primaries(sentinels, masters), build)
    if not runtime:
        ret.update(result=True, comment=f"{name} exists (owned by Sentinel from now on)")
        return ret
    ret["comments"] = []
    errors = []
    for master in masters:
        try:
            error = _master_kept(ret, host, port, master, password, sentinels)
        except CommandExecutionError as exc:
            ret.pop("comments")
            ret.update(result=True, changes={},
                       comment=f"{name} exists; the sentinel does not answer yet ({exc}):"
                               " its settings are checked when it does")
            return ret
        if error:
            errors.append(error)
    comments = ret.pop("comments")
    if errors:
        ret["comment"] = "; ".join(errors + comments)
        return ret
    if __opts__["test"] and ret["changes"]:
        ret.update(result=None, comment="would change: " + ", ".join(
            f"{n} ({', '.join(c)})" for n, c in ret["changes"].items()))
        return ret
    ret.update(result=True, comment="; ".join(comments) + " (saved by Sentinel in its file)"
               if comments else f"the sentinel at {host}:{port} has the pillar's settings for "
               + ", ".join(m["name"] for m in masters))
    return ret

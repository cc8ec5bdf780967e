"""What the Redis unit tests share: the replies and files recorded from Redis 8.0.2 and its
Sentinel in the lab (test/data/redis/, README.md there says how), the lab instances' settings
and passwords, and the execution module under test."""

import io

from render.renderlib import REPO
from saltmodules import load

DATA = REPO / "test" / "data" / "redis"
# The lab's throwaway passwords (test/data/redis/README.md): the servers' (space, double
# quotes, a literal \x41, a backslash, non-ASCII, a tab), and the one the lab's sentinel used,
# which survives Sentinel's unquoted rewrite of auth-pass.
PASSWORD = 'Sp ace "q" \\x41\\ ü€\tend'
SENTINEL_PASSWORD = "b\\x41\\ü€#;"
LAB_DIR = "/tmp/mhrec"
# The lab servers' settings (what the recorded CONFIG GET shows) and the lab sentinel's (what
# the recorded SENTINEL MASTER shows, with quorum 1).
LAB_SETTINGS = {"maxmemory": "64mb", "maxmemory-policy": "allkeys-lru", "save": "",
                "appendonly": False}
SENTINEL_SETTINGS = {"down-after-milliseconds": 5000, "failover-timeout": 60000,
                     "parallel-syncs": 1}

redis = load("_modules/moodle_ha_redis.py", "moodle_ha_redis_module_under_test")


def recorded(stem, ext="resp"):
    """The bytes of the one recorded file ``<stem>.redis-<version>.<ext>``."""
    found = sorted(DATA.glob(f"{stem}.redis-*.{ext}"))
    assert len(found) == 1, f"expected one recorded file for {stem}, found {found}"
    return found[0].read_bytes()


def parsed(stem):
    stream = io.BytesIO(recorded(stem))
    reply = redis.parse_reply(stream)
    assert stream.read() == b"", f"{stem}: bytes left after the reply"
    return reply


def lab_paths(name):
    return {"pidfile": f"{LAB_DIR}/{name}.pid", "logfile": f"{LAB_DIR}/{name}.log",
            "dir": f"{LAB_DIR}/{name}"}

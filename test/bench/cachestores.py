#!/usr/bin/env python3
"""
Moodle's application caches in the file store on the shared volume against the redis layer
(moodle:cache:application_store file | redis) on a deployed lab with role redis (e.g.
`make demo PILLAR=test/lab/topologies/redis.yaml MOODLE_ARCHIVE=...`): prints figures,
asserts nothing.

    .venv/bin/python test/bench/cachestores.py                  # 3 interleaved rounds
    .venv/bin/python test/bench/cachestores.py --rounds 1 --seconds 10 --pages login

Each round measures every store on every page through the VIP (test/bench/throughput.py's
load and CPU split, --clients closed-loop clients, cron paused): before each measurement the
web nodes' cache configuration is switched to the store (`moodle_ha.moodle.cache` with the
store as pillar on the command line: the switch Salt makes), Moodle's caches are purged, and
the warm-up fills them again. Three configurations: application caches in the file store and
sessions in the database (the formula's default), the caches in Redis and sessions in the
database, both in Redis (moodle:session:store redis: config.php switched by
`moodle_ha.moodle.config`; needs the sessions server, i.e. a lab whose pillar has it, else
printed as n/a). The lab is left as its pillar says.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import throughput  # noqa: E402

from mhalab import testkit  # noqa: E402
from mhalab.paths import LAB_LOCK  # noqa: E402

# (application caches, sessions) by the name printed.
CONFIGS = {"file+db": ("file", "database"), "redis+db": ("redis", "database"),
           "redis+redis": ("redis", "redis")}


def switch(config: tuple[str, str], webs: list[str], primary: str) -> None:
    """Every web node's config.php and cache configuration on `config` (application caches'
    store, sessions' store), then Moodle's caches purged."""
    store, sessions = config
    override = json.dumps({"moodle_ha": {"moodle": {"cache": {"application_store": store},
                                                    "session": {"store": sessions}}}})
    out = testkit.salt_json(",".join(webs), "state.apply",
                            "moodle_ha.moodle.config,moodle_ha.moodle.cache",
                            f"pillar={override}", "-L", timeout=600)
    for web in webs:
        states = out.get(web)
        if not isinstance(states, dict) or not all(s.get("result") for s in states.values()):
            raise SystemExit(f"switching {web} to {config} failed: {states}")
    dirroot = testkit.pillar().get("moodle", {}).get("dirroot", "/var/www/moodle")
    purged = testkit.host_exec(primary, ["runuser", "-u", "www-data", "--", "php",
                                         f"{dirroot}/admin/cli/purge_caches.php"], timeout=600)
    if purged.returncode != 0:
        raise SystemExit(f"purge_caches.php failed: {purged.stderr[-500:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--pages", default="login,dashboard")
    parser.add_argument("--json", help="write every figure to this file")
    args = parser.parse_args()
    args.node = None
    pages = [p for p in args.pages.split(",") if p]
    for page in pages:
        if page not in throughput.PAGES:
            parser.error(f"unknown page {page!r}")
    if not testkit.is_up():
        print("the lab is not up: make demo first", file=sys.stderr)
        return 2
    topo = testkit.topology()
    if not any("redis" in h["roles"] for h in topo["hosts"].values()):
        print("no host has role redis: deploy test/lab/topologies/redis.yaml", file=sys.stderr)
        return 2
    webs = sorted(h for h, i in topo["hosts"].items() if "web" in i["roles"])
    moodle = testkit.pillar().get("moodle", {})
    configured = (moodle.get("cache", {}).get("application_store", "file"),
                  moodle.get("session", {}).get("store", "database"))
    # Redis sessions need the sessions server, which only a pillar with them has.
    configs = [c for c in CONFIGS if CONFIGS[c][1] == "database"
               or moodle.get("session", {}).get("store") == "redis"]
    results: dict = {}
    with open(LAB_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ctx = throughput.context(args)
        try:
            with throughput.cron_paused(ctx["primary"]):
                for rnd in range(1, args.rounds + 1):
                    for config in configs:
                        switch(CONFIGS[config], webs, ctx["primary"])
                        for page in pages:
                            r = throughput.measure("cluster", page, ctx, args)
                            results.setdefault(page, {}).setdefault(config, []).append(r)
                            print(f"round {rnd}  {config:<11}"
                                  f" {throughput.line('cluster', page, r)}", flush=True)
        finally:
            throughput.log(f"back to the pillar's configuration ({'+'.join(configured)})")
            switch(configured, webs, ctx["primary"])
    print("\nmedian of the rounds (requests/s through the VIP at the clients' concurrency;"
          " application caches+sessions):")
    for page in pages:
        cells = "  ".join(
            f"{c} {statistics.median(r.get('rps', 0) for r in results[page][c]):.1f}"
            if c in results[page] else f"{c} n/a" for c in CONFIGS)
        print(f"  {page:<9} {cells}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

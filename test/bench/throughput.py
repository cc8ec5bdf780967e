#!/usr/bin/env python3
"""
Throughput of a deployed moodle_ha lab against a standalone Moodle on the same machine: prints
figures, asserts nothing.

    .venv/bin/python test/bench/throughput.py                 # 3 interleaved rounds, 8 clients
    .venv/bin/python test/bench/throughput.py --rounds 1 --seconds 10 --no-reference
    .venv/bin/python test/bench/throughput.py --json out.json --keep-reference

Pages: Moodle's login page (`login`: every request a new visitor, no cookie) and a logged-in
page (`dashboard`: /my/, each client logged in once as the site admin with its own session).
Targets, each with --clients closed-loop clients (test/bench/loadgen.py):
  cluster     https://VIP through HAProxy (TLS ends there), from the lab host;
  one-node    one web node's Apache directly (http, Host: the site's host), from the backup
              load balancer, the only kind of host the firewall lets reach a web node;
  standalone  the reference of test/bench/reference.py (solo1: Apache + mod_php + MariaDB on
              one host, local dataroot, Moodle's defaults, the cluster's PHP ini), built
              first and removed at the end unless --keep-reference.
The rounds interleave the targets (cluster, one-node, standalone, cluster, ...), each after a
warm-up; Moodle's cron timer on the primary node is stopped for the run and started again at
the end. During each measurement the CPU time of every lab host (its cgroup) and of each kind
of process in it (Apache/PHP, mariadbd, glusterfsd, the gluster client, haproxy, salt-minion,
...) is sampled, and printed as % of one core. The lab lock is held throughout.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lab"))

import reference  # noqa: E402

from mhalab import testkit  # noqa: E402
from mhalab.hosts import leader_pid  # noqa: E402
from mhalab.paths import LAB_LOCK, TLS_CA  # noqa: E402
from mhalab.procs import cgroup_dirs, cgroup_pids  # noqa: E402

PAGES = {"login": ("/login/index.php", False), "dashboard": ("/my/", True)}
TARGETS = ("cluster", "one-node", "standalone")
TICK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- CPU sampling


def kind(pid: int) -> str | None:
    """What a process is, from its command line; None for a process gone meanwhile."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None
    cmd = b" ".join(argv).decode(errors="replace")
    if comm in ("apache2", "php-fpm8.4", "php-fpm8.2") or comm.startswith("php"):
        return "apache/php"
    if comm in ("mariadbd", "mysqld"):
        return "mariadb"
    if comm == "glusterfsd":
        return "gluster brick"
    if comm == "glusterfs":
        return "gluster shd" if "glustershd" in cmd else "gluster client"
    if comm == "glusterd":
        return "glusterd"
    if comm in ("haproxy", "keepalived", "redis-server", "redis-sentinel"):
        return comm
    if "salt-minion" in cmd:
        return "salt-minion"
    return None


def cpu_ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])  # utime + stime


def sample(hosts: list[str]) -> dict:
    """CPU seconds so far: per host (the cgroup's usage) and per (host, process kind)."""
    out: dict = {"hosts": {}, "kinds": {}, "at": time.monotonic()}
    for host in hosts:
        v2 = [cg for cg in cgroup_dirs(host) if (cg / "cpu.stat").exists()]
        if v2:
            stat = dict(line.split() for line in (v2[0] / "cpu.stat").read_text().splitlines())
            out["hosts"][host] = int(stat["usage_usec"]) / 1e6
        for cg in cgroup_dirs(host)[:1]:
            for pid in cgroup_pids(cg):
                what = kind(pid)
                ticks = cpu_ticks(pid) if what else None
                if ticks is not None:
                    out["kinds"][(host, what, pid)] = ticks / TICK
    return out


def cpu_split(before: dict, after: dict) -> dict:
    """% of one core used during the window, by process kind (summed over the hosts) and by
    host; processes alive at both ends only, the host figures include everything."""
    wall = after["at"] - before["at"]
    kinds: dict[str, float] = {}
    for key, secs in after["kinds"].items():
        if key in before["kinds"]:
            kinds[key[1]] = kinds.get(key[1], 0.0) + secs - before["kinds"][key]
    hosts = {h: after["hosts"][h] - before["hosts"].get(h, after["hosts"][h])
             for h in after["hosts"]}
    return {"kinds": {k: round(100 * v / wall) for k, v in sorted(kinds.items(),
                                                                  key=lambda kv: -kv[1])},
            "hosts": {h: round(100 * v / wall) for h, v in hosts.items()},
            "total": round(100 * sum(hosts.values()) / wall)}


# --------------------------------------------------------------------------- load


LOADGEN = HERE / "loadgen.py"


def loadgen_args(base: str, path: str, login: bool, args, host_header: str | None = None,
                 cafile: str | None = None) -> list[str]:
    out = ["--base", base, "--path", path, "--clients", str(args.clients),
           "--seconds", str(args.seconds), "--warmup", str(args.warmup)]
    if host_header:
        out += ["--host-header", host_header]
    if cafile:
        out += ["--cafile", cafile]
    if login:
        out += ["--login", "admin"]
    return out


def run_load(target: str, page: str, ctx: dict, args) -> dict:
    path, login = PAGES[page]
    env = dict(os.environ, MOODLE_HA_BENCH_PASSWORD=ctx["passwords"][target])
    if target == "one-node":
        # From inside the backup load balancer: the script on stdin, the password in the env.
        cmd = ["python3", "-", *loadgen_args(f"http://{ctx['node_ip']}", path, login, args,
                                             host_header=ctx["site_host"])]
        leader = ctx["lb_leader"]()
        proc = subprocess.run(["nsenter", "-t", str(leader), "-a", *cmd],
                              input=LOADGEN.read_bytes(), capture_output=True, env=env,
                              timeout=args.warmup + args.seconds + 120, check=False)
    else:
        base = ctx["cluster_base"] if target == "cluster" else ctx["reference"]["base"]
        cmd = [sys.executable, str(LOADGEN),
               *loadgen_args(base, path, login, args,
                             cafile=str(TLS_CA) if base.startswith("https") else None)]
        proc = subprocess.run(cmd, capture_output=True, env=env, check=False,
                              timeout=args.warmup + args.seconds + 120)
    try:
        return json.loads(proc.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": (proc.stdout + proc.stderr).decode(errors="replace")[-600:]}


# --------------------------------------------------------------------------- the run


@contextlib.contextmanager
def cron_paused(primary: str):
    """Moodle's cron timer stopped on the primary node (a running cron.php is let finish)."""
    testkit.host_exec(primary, ["systemctl", "stop", "moodle_ha-cron.timer"])
    testkit.host_exec(primary, "timeout 300 sh -c 'while systemctl -q is-active"
                      " moodle_ha-cron.service; do sleep 1; done'", timeout=330)
    try:
        yield
    finally:
        testkit.host_exec(primary, ["systemctl", "start", "moodle_ha-cron.timer"])


def context(args) -> dict:
    topo, pillar = testkit.topology(), testkit.pillar()
    web = sorted(h for h, i in topo["hosts"].items() if "web" in i["roles"])
    lbs = sorted(h for h, i in topo["hosts"].items() if "lb" in i["roles"])
    node = args.node or web[-1]
    moodle = pillar.get("moodle", {})

    return {
        "hosts": sorted(topo["hosts"]),
        "primary": moodle.get("primary_node") or web[0],
        "cluster_base": testkit.site_url("").rstrip("/"),
        "site_host": pillar.get("web", {}).get("server_name") or topo["vip"],
        "node": node,
        "node_ip": topo["hosts"][node]["ip"],
        "lb_leader": lambda: leader_pid(lbs[-1], testkit.state()),
        "passwords": {"cluster": testkit.secrets()["moodle_admin_password"],
                      "one-node": testkit.secrets()["moodle_admin_password"]},
    }


def measure(target: str, page: str, ctx: dict, args) -> dict:
    hosts = ctx["hosts"] + ([reference.HOST] if "reference" in ctx else [])
    # The window that counts starts after the warm-up: the first sample is taken then (the
    # join waits for it even when the load ends early).
    start: dict = {}
    timer = threading.Timer(args.warmup, lambda: start.update(sample(hosts)))
    timer.start()
    load = run_load(target, page, ctx, args)
    timer.join()
    load["cpu"] = cpu_split(start, sample(hosts))
    return load


def line(target: str, page: str, r: dict) -> str:
    if "error" in r:
        return f"{page:<9} {target:<11} ERROR {r['error'][-300:]}"
    bad = r["other"] + r["errors"]
    kinds = ", ".join(f"{k} {v}%" for k, v in r["cpu"]["kinds"].items() if v >= 2)
    return (f"{page:<9} {target:<11} {r['rps']:7.1f} req/s  p50 {r['p50_ms']:6.0f} ms"
            f"  p95 {r['p95_ms']:6.0f} ms  failed {bad:3d}  cpu {r['cpu']['total']}%: {kinds}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--prewarm", type=float, default=20,
                        help="seconds of unmeasured load on each page and target before round"
                             " 1 (a just-built reference answered 0.6x its warm rate; 0: none)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--pages", default="login,dashboard")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--node", help="the web node of the one-node target (default: last)")
    parser.add_argument("--no-reference", action="store_true", help="no standalone target")
    parser.add_argument("--keep-reference", action="store_true",
                        help="leave solo1 running (a later run reuses it)")
    parser.add_argument("--json", help="write every figure to this file")
    args = parser.parse_args()
    pages = [p for p in args.pages.split(",") if p]
    targets = [t for t in args.targets.split(",") if t]
    if args.no_reference and "standalone" in targets:
        targets.remove("standalone")
    for name in pages + targets:
        if name not in PAGES and name not in TARGETS:
            parser.error(f"unknown page or target {name!r}")
    if not testkit.is_up():
        print("the lab is not up: make demo first", file=sys.stderr)
        return 2

    with open(LAB_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ctx = context(args)
        built = False
        try:
            if "standalone" in targets:
                if reference.running() and reference.saved():
                    ctx["reference"] = reference.saved()
                    log(f"reusing {reference.HOST}")
                else:
                    reference.down(log)
                    ctx["reference"] = reference.up(log)
                    built = True
                ctx["passwords"]["standalone"] = ctx["reference"]["password"]
            results: dict = {}
            with cron_paused(ctx["primary"]):
                if args.prewarm > 0:
                    warm = argparse.Namespace(**{**vars(args), "warmup": 0,
                                                 "seconds": args.prewarm})
                    for page in pages:
                        for target in targets:
                            r = run_load(target, page, ctx, warm)
                            log(f"prewarm {page} {target}: {r.get('rps', 'error')} req/s"
                                " (not counted)")
                for rnd in range(1, args.rounds + 1):
                    for page in pages:
                        for target in targets:
                            r = measure(target, page, ctx, args)
                            results.setdefault(page, {}).setdefault(target, []).append(r)
                            print(f"round {rnd}  {line(target, page, r)}", flush=True)
        finally:
            if "reference" in ctx and not args.keep_reference:
                reference.down(log)
            elif built:
                reference.save(ctx["reference"])
    summary(results, pages, targets)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


def summary(results: dict, pages: list[str], targets: list[str]) -> None:
    print("\nmedian of the rounds (requests/s at the clients' concurrency):")
    for page in pages:
        rps = {t: statistics.median(r.get("rps", 0) for r in results[page][t]) for t in targets}
        cells = "  ".join(f"{t} {v:.1f}" for t, v in rps.items())
        ratio = ""
        if rps.get("standalone"):
            ratio = f"  cluster/standalone {rps.get('cluster', 0) / rps['standalone']:.2f}"
        print(f"  {page:<9} {cells}{ratio}")


if __name__ == "__main__":
    sys.exit(main())

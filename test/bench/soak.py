#!/usr/bin/env python3
"""
Stability under load, with no fault injected: what a tight failure detector must not do.

    .venv/bin/python test/bench/soak.py [--seconds 600] [--clients 8] [--converge]
        [--sst HOST] [--json FILE]

For --seconds, --clients closed-loop clients load GET / through the VIP (test/bench/loadgen.py,
over TLS when the site has it) while testkit.Load writes one row every 0.05 s through
VIP:<writer_port> and fetches / every 0.1 s. Counted from before to after the load, each one a
false alarm of a detector (nothing failed):
- Galera view changes: `wsrep_cluster_conf_id` on every galera host (its own MariaDB client);
- gluster client disconnects: "disconnected from" lines dated inside the window in the client
  logs (/var/log/glusterfs/*.log: the dataroot mounts and the self-heal daemon) on every
  gluster and web host, and the heal entries pending before and after;
- HAProxy: UP to DOWN transitions of every server (`show stat` chkdown), per load balancer;
- VIP moves: the holder sampled every 5 s (`ip -o addr` on each load balancer);
- failed requests and failed writes.
What a tight detector must also survive can run inside the window: --converge runs the whole
orchestration once at a third of it (`salt-run state.orchestrate moodle_ha.orch`); --sst HOST
forces a full state transfer to that galera host at two thirds (MariaDB stopped, its
grastate.dat removed, started again: the joiner and its donor copy the whole database while
the load goes on). A view change per --sst is expected (the node leaves and joins: 2).

Every loop is bounded by the time given; only lab hosts and the VIP are addressed. The lab
lock is held for the whole run.
"""

from __future__ import annotations

import argparse
import calendar
import fcntl
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lab"))  # run as a script: mhalab
sys.path.insert(0, str(HERE))  # report.py

from failover import hosts_with_role, vip_holder  # noqa: E402
from report import Report  # noqa: E402

from mhalab import testkit  # noqa: E402
from mhalab.paths import LAB_LOCK, TLS_CA  # noqa: E402

LOADGEN = HERE / "loadgen.py"
REPORT = Report()
DISCONNECTED = "disconnected from"
SST_VIEWS = 2  # view changes a forced state transfer costs each node: the joiner leaves, joins

def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def shell(host: str, script: str, timeout: float = 60) -> str:
    proc = testkit.host_exec(host, ["sh", "-c", script], timeout=timeout)
    return proc.stdout if proc.returncode == 0 else ""


def conf_id(host: str) -> int | None:
    out = shell(host, "mariadb -N -B -e \"SHOW GLOBAL STATUS LIKE 'wsrep_cluster_conf_id'\"")
    match = re.search(r"(\d+)\s*$", out.strip())
    return int(match.group(1)) if match else None


# gluster's log lines start with their UTC time; a message logged again within a short time
# is held back and summed up later in one line, dated by the first and the last time it was
# held back: 'The message "..." repeated N times between [T1] and [T2]'.
_LOG_TIME = r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.\d+)? \+0000\]"
_LOG_LINE_RE = re.compile("^" + _LOG_TIME)
_REPEATED_RE = re.compile(r"^The message .* repeated (\d+) times between " + _LOG_TIME
                          + " and " + _LOG_TIME)


def _utc(stamp: str) -> float:
    return calendar.timegm(time.strptime(stamp, "%Y-%m-%d %H:%M:%S"))


def disconnect_events(log: str, since: float) -> int:
    """Client disconnects in gluster log text that happened at or after `since` (epoch
    seconds). A summary of held-back repeats counts all of them when the first was in the
    window, one when only the last was: it is written after its events, often minutes later,
    and a fault before the window must not count in it."""
    count, since = 0, int(since)  # the times are compared to the second
    for line in log.splitlines():
        if DISCONNECTED not in line:
            continue
        repeated = _REPEATED_RE.match(line)
        if repeated:
            times, first, last = int(repeated[1]), _utc(repeated[2]), _utc(repeated[3])
            count += times if first >= since else 1 if last >= since else 0
            continue
        stamp = _LOG_LINE_RE.match(line)
        if stamp and _utc(stamp[1]) >= since:
            count += 1
    return count


def disconnects(host: str, since: float) -> int:
    out = shell(host, f"cat /var/log/glusterfs/*.log 2>/dev/null | grep '{DISCONNECTED}'"
                " || true")
    return disconnect_events(out, since)


def chkdown(lb: str) -> dict[str, int]:
    """UP to DOWN transitions so far of every checked server, by proxy/server."""
    return {f"{row['pxname']}/{row['svname']}": int(row["chkdown"])
            for row in testkit.haproxy_stat(lb)
            if row.get("svname") not in ("FRONTEND", "BACKEND") and row.get("chkdown")}


def heal_pending(host: str, volume: str) -> int | None:
    out = shell(host, f"gluster volume heal {volume} info summary", timeout=120)
    counts = re.findall(r"Total Number of entries:\s*(\d+)", out)
    return sum(int(c) for c in counts) if counts else None


def counters(conf: dict, since: float) -> dict:
    """Every detector's count so far; gluster's disconnects from `since` on (its log is
    dated, and written late)."""
    galera = hosts_with_role(conf, "galera")
    gluster_clients = sorted(set(hosts_with_role(conf, "gluster") + hosts_with_role(conf, "web")))
    lbs = hosts_with_role(conf, "lb")
    return {
        "conf_id": {h: conf_id(h) for h in galera},
        "disconnects": {h: disconnects(h, since) for h in gluster_clients},
        "chkdown": {lb: chkdown(lb) for lb in lbs},
    }


def delta(before: dict, after: dict) -> dict:
    views = {h: (after["conf_id"][h] - before["conf_id"][h])
             if None not in (after["conf_id"][h], before["conf_id"][h]) else None
             for h in before["conf_id"]}
    cuts = {h: after["disconnects"][h] - before["disconnects"][h] for h in before["disconnects"]}
    downs = {}
    for lb, servers in after["chkdown"].items():
        for server, count in servers.items():
            change = count - before["chkdown"].get(lb, {}).get(server, 0)
            if change:
                downs[f"{lb}:{server}"] = change
    return {"views": views, "disconnects": cuts, "downs": downs}


def false_alarms(d: dict, sst: bool) -> dict:
    """What in a `delta` no fault explains. A state transfer is expected to cost two view
    changes per node (the joiner leaves and comes back) and to take the joiner and its donor
    out of the DB pools while they copy; anything else counts."""
    expected = SST_VIEWS if sst else 0
    views = sum(max(0, v - expected) for v in d["views"].values() if v is not None)
    downs = sum(n for key, n in d["downs"].items() if not (sst and ":db-writer/" in key))
    alarms = {"views": views, "disconnects": sum(d["disconnects"].values()), "downs": downs}
    return {**alarms, "total": sum(alarms.values())}


def force_sst(host: str) -> str:
    """Stop MariaDB on `host`, drop its Galera state, start it: a full state transfer."""
    started = time.monotonic()
    proc = testkit.host_exec(host, ["sh", "-c", "systemctl stop mariadb"
                                    " && rm -f /var/lib/mysql/grastate.dat"
                                    " && systemctl start mariadb"], timeout=900)
    state = shell(host, "mariadb -N -B -e \"SHOW GLOBAL STATUS LIKE"
                  " 'wsrep_local_state_comment'\"").split()
    return (f"state transfer to {host}: rc {proc.returncode}, {state[-1] if state else '?'}"
            f" after {time.monotonic() - started:.0f} s")


def converge() -> str:
    run = testkit.orchestrate()
    return (f"orchestration: {run.seconds:.0f} s, {len(run.changed)} changes,"
            f" {len(run.failed)} failed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--converge", action="store_true",
                        help="run the orchestration once at a third of the window")
    parser.add_argument("--sst", metavar="HOST",
                        help="force a full state transfer to this galera host at two thirds")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    if not testkit.is_up():
        print("no lab is up (make demo)", file=sys.stderr)
        return 2
    topo, conf = testkit.topology(), testkit.pillar()
    vip = topo["vip"]
    lbs = hosts_with_role(conf, "lb")
    volume = conf.get("gluster", {}).get("volume", "moodledata")
    gluster = hosts_with_role(conf, "gluster")
    base = testkit.site_url("/").rstrip("/")
    with open(LAB_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        window_start = time.time()
        before = counters(conf, window_start)
        # Entries left by an earlier fault wait for the self-heal daemon's crawl (10 min).
        pending_before = heal_pending(gluster[0], volume) if gluster else None
        holders, stop = [], threading.Event()

        def sample_vip():
            while not stop.wait(5):
                holders.append(vip_holder(lbs, vip))

        log(f"soak: {args.seconds:.0f} s, {args.clients} clients on {base}/ and steady"
            " reads and writes")
        sampler = threading.Thread(target=sample_vip, daemon=True)
        cmd = [sys.executable, str(LOADGEN), "--base", base, "--path", "/",
               "--clients", str(args.clients), "--seconds", str(args.seconds), "--warmup", "0",
               "--host-header", vip]
        if base.startswith("https"):
            cmd += ["--cafile", str(TLS_CA)]
        events, done = [], []
        if args.converge:
            events.append((args.seconds / 3, converge))
        if args.sst:
            events.append((2 * args.seconds / 3, lambda: force_sst(args.sst)))

        def run_events():
            t0 = time.monotonic()
            for at, event in events:
                if stop.wait(max(0.0, at - (time.monotonic() - t0))):
                    return
                done.append(event())
                log(done[-1])

        actor = threading.Thread(target=run_events, daemon=True)
        holders.append(vip_holder(lbs, vip))
        sampler.start()
        actor.start()
        with testkit.Load(vip, table=None) as steady:
            proc = subprocess.run(cmd, capture_output=True, check=False, env=dict(os.environ),
                                  timeout=args.seconds + 120)
            actor.join(900)  # an event still running finishes under the steady client
        stop.set()
        sampler.join(10)
        after = counters(conf, window_start)
        pending = heal_pending(gluster[0], volume) if gluster else None
    try:
        load = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        load = {"error": (proc.stdout + proc.stderr).decode(errors="replace")[-400:]}
    d = delta(before, after)
    moves = sum(1 for a, b in zip(holders, holders[1:], strict=False) if a != b)
    views = sum(v for v in d["views"].values() if v)
    expected = SST_VIEWS if args.sst else 0
    false = false_alarms(d, bool(args.sst))
    cuts = sum(d["disconnects"].values())
    downs = sum(d["downs"].values())
    log(f"load: {json.dumps(load)}")
    log(f"steady client: {steady.summary()}")
    log(f"Galera view changes: {views} {d['views']} ({expected} expected per node)")
    log(f"gluster client disconnects: {cuts} {d['disconnects']}; heal pending:"
        f" {pending_before} before, {pending} after")
    log(f"HAProxy UP->DOWN: {downs} {d['downs']}")
    log(f"VIP moves: {moves} (holders {sorted(set(map(str, holders)))})")
    method = (f"{args.seconds:.0f} s of {args.clients} closed-loop clients on / through the"
              " VIP" + "".join(f"; {e}" for e in done))
    failed = (load.get("other", 0) or 0) + (load.get("errors", 0) or 0) + len(steady.failures)
    alarms = false["total"] + moves
    REPORT.add("soak_false_alarms", "stability under load: false alarms", alarms, "",
               f"{views} view changes ({expected} expected per node), {cuts} gluster"
               f" disconnects, {downs} HAProxy downs, {moves} VIP moves, heal pending"
               f" {pending_before} before, {pending} after; {failed} failed requests,"
               f" {load.get('rps', '?')} req/s", method)
    if args.json:
        REPORT.write(args.json, counters={"before": before, "after": after},
                     events=done, load=load, holders=holders)
    return 0 if alarms == 0 and not failed else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""
Benchmarks of a moodle_ha lab: one table of figures, asserts nothing (tests stay functional).

    .venv/bin/python test/bench/bench.py                 # the lab as it is
    .venv/bin/python test/bench/bench.py --cold          # lab down+up first: cold converge
    .venv/bin/python test/bench/bench.py --json FILE     # the table as JSON too

Figures, each with its method in the table: cold converge (--cold; total and its slowest
steps), the no-op re-run (time, changed states), the failover probes of
test/bench/failover.py (VIP holder: haproxy stopped, keepalived stopped, killed; DB writer
killed; an app host killed and silently cut, the writer's host and another), login pages/s at
8 concurrent clients through the VIP (test/bench/throughput.py, cluster only: the standalone
reference is `make bench-throughput`), one backup (salt-run moodle_ha.backup_now, when the lab
has a backup node), then the upgrade window of test/bench/upgrade.py (the lab stays on the
next release it builds). With --soak SECONDS, test/bench/soak.py first runs that long under
load with a converge and a full state transfer inside, and counts the false alarms of the
failure detectors (view changes, gluster disconnects, HAProxy downs, VIP moves). A figure
whose feature or probe did not run prints "n/a" and why.
--no-failover, --no-throughput, --no-backup, --no-upgrade skip a part.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lab"))  # run as a script: the lab's package, mhalab

from failover import hosts_with_role  # noqa: E402
from report import Report  # noqa: E402

from mhalab import results, testkit  # noqa: E402
from mhalab.testkit import lab_run, orchestrate  # noqa: E402

ORCH = "salt-run state.orchestrate moodle_ha.orch"
PARTS = ("failover", "throughput", "backup", "upgrade")  # each skipped by --no-<part>


def figure(name: str, value: str) -> None:
    print(f"{name:<40} {value}", flush=True)


def machine() -> dict:
    mem = next((int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text()
                .splitlines() if line.startswith("MemTotal:")), None)
    return {"cores": os.cpu_count(), "memory_mb": mem, "kernel": platform.release()}


def slowest_steps(run, count: int = 3) -> str:
    steps = results.orch_states(run.output)
    timed = sorted(((r.get("duration") or 0) / 1000, sid) for sid, r in steps.items()
                   if isinstance(r, dict))
    return ", ".join(f"{sid.split('_|-')[1].removeprefix('moodle_ha-orch-')} {secs:.0f} s"
                     for secs, sid in reversed(timed[-count:]))


def converge(report: Report, key: str, name: str, run) -> None:
    report.add(key, name, round(run.seconds, 1), "s",
               f"{len(run.changed)} changed, {len(run.failed)} failed states; slowest steps:"
               f" {slowest_steps(run)}", f"`{ORCH}` wall time (after salt-run sync_all)")
    figure(name, f"{run.seconds:.1f} s, {len(run.changed)} changed states,"
           f" {len(run.failed)} failures")


def probe(script: str, *args: str) -> tuple[int, dict | None]:
    """Run a probe script of this directory with --json FILE: its exit code and the JSON."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        rc = subprocess.run([sys.executable, str(HERE / script), *args, "--json", out.name],
                            check=False).returncode
        text = Path(out.name).read_text()
    return rc, json.loads(text) if text.strip() else None


def throughput(report: Report) -> int:
    key, name = "login_rps", "login page, 8 concurrent clients"
    method = ("test/bench/throughput.py --targets cluster: closed loop through the VIP, cron"
              " paused, median of 2 rounds of 15 s")
    try:
        status, body = testkit.http_get(testkit.site_url("/login/index.php"), timeout=10)
    except OSError as exc:
        status, body = None, str(exc)
    if status != 200 or "logintoken" not in str(body):
        report.missing(key, name, f"the lab serves no Moodle login page ({status}): the"
                       " fixture app; make demo MOODLE_ARCHIVE=... for a real Moodle", method)
        return 0
    rc, data = probe("throughput.py", "--rounds", "2", "--seconds", "15",
                     "--prewarm", "10", "--pages", "login", "--targets", "cluster",
                     "--no-reference")
    runs = (data or {}).get("login", {}).get("cluster", [])
    rps = sorted(r["rps"] for r in runs if "rps" in r)
    if not rps:
        report.missing(key, name, "the load generator gave no figure", method)
        return rc or 1
    failed = sum(r.get("other", 0) + r.get("errors", 0) for r in runs if "rps" in r)
    report.add(key, name, round(rps[len(rps) // 2], 1), "req/s",
               f"{failed} failed; rounds {', '.join(f'{v:.1f}' for v in rps)}; standalone"
               " reference: make bench-throughput", method)
    return rc


def backup(report: Report) -> int:
    key, name = "backup_s", "one backup (database + dataroot)"
    method = "salt-run moodle_ha.backup_now (what the timer runs)"
    proc = lab_run("salt-run", "moodle_ha.backup_now", "--out=json", timeout=3600)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        data = {}
    data = data.get("data", data) if isinstance(data, dict) else {}
    if not data.get("result"):
        report.missing(key, name, str(data.get("comment") or "no answer")[:160], method)
        return 0 if "expected one backup node" in str(data.get("comment")) else 1
    report.add(key, name, data["seconds"], "s",
               f"{data['bytes'] / 1e6:.1f} MB on {data.get('node')}", method)
    figure(name, f"{data['seconds']} s, {data['bytes'] / 1e6:.1f} MB")
    return 0


def soak(report: Report, seconds: float) -> int:
    galera = hosts_with_role(testkit.pillar(), "galera")
    rc, data = probe("soak.py", "--seconds", str(seconds), "--converge",
                     *(("--sst", galera[-1]) if galera else ()))
    if not data:
        report.missing("soak_false_alarms", "stability under load: false alarms",
                       "the probe failed", "test/bench/soak.py")
        return rc or 1
    report.extend(data.get("figures", []))
    return rc


def upgrade(report: Report) -> int:
    method = ("test/bench/upgrade.py: the next release (version.php raised) deployed with"
              " moodle_ha.orch, the site polled through the VIP")
    rc, data = probe("upgrade.py")
    if not data:
        report.missing("upgrade_window_s", "upgrade: maintenance window", "the probe failed",
                       method)
        return rc or 1
    report.add("upgrade_window_s", "upgrade: maintenance window", data["first_to_last_503_s"],
               "s", f"upgrade state {data['upgrade_state_s']} s; {data['window_s']} s of"
               f" answers other than 200 in {data['windows']} window(s); {data['release']}",
               method)
    return rc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold", action="store_true", help="rebuild the lab, measure cold run")
    parser.add_argument("--json", help="write the table as JSON to this file")
    parser.add_argument("--soak", type=float, default=0, metavar="SECONDS",
                        help="measure false alarms under this long a load first (600: 10 min)")
    for part in PARTS:
        parser.add_argument(f"--no-{part}", action="store_true", help=f"skip the {part} part")
    args = parser.parse_args()
    report = Report()
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")

    if args.cold:
        lab_run("down")
        start = time.monotonic()
        up = lab_run("up")
        if up.returncode != 0:
            print(up.stdout, up.stderr)
            return 1
        report.add("lab_up_s", "lab up (hosts answering)", round(time.monotonic() - start, 1),
                   "s", "", "test/lab/lab.py up: bridge, master, hosts booted from the image")
        run = orchestrate()
        converge(report, "cold_s", "cold converge", run)
        if run.failed:
            print("\n".join(run.failed[:20]))
            return 1
    else:
        report.missing("cold_s", "cold converge", "run with --cold")
    run = orchestrate()
    converge(report, "noop_s", "no-op re-run", run)

    rc = 0
    if args.soak:
        rc |= soak(report, args.soak)
    else:
        report.missing("soak_false_alarms", "stability under load: false alarms",
                       "run with --soak SECONDS")
    if args.no_failover:
        report.missing("failover", "failover probes", "--no-failover")
    else:
        code, data = probe("failover.py")
        rc |= code
        report.extend((data or {}).get("figures", []))
    if args.no_throughput:
        report.missing("login_rps", "login page, 8 concurrent clients", "--no-throughput")
    else:
        rc |= throughput(report)
    if args.no_backup:
        report.missing("backup_s", "one backup (database + dataroot)", "--no-backup")
    else:
        rc |= backup(report)
    report.missing("scale_out_s", "scale-out by one web node",
                   "not a bench probe (it adds a lab host): make test-scale prints it")
    if args.no_upgrade:
        report.missing("upgrade_window_s", "upgrade: maintenance window", "--no-upgrade")
    else:
        rc |= upgrade(report)
    print(f"\n## moodle_ha bench, {started}\n")
    print(report.table())
    given = (["--cold"] if args.cold else []) + ([f"--soak {args.soak:g}"] if args.soak else []) \
        + [f"--no-{part}" for part in PARTS if getattr(args, f"no_{part}")]
    if args.json:
        report.write(args.json, date=started, machine=machine(),
                     command="make bench" + (f" BENCH_ARGS='{' '.join(given)}'" if given
                                             else ""))
    return rc


if __name__ == "__main__":
    sys.exit(main())

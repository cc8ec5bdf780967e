#!/usr/bin/env python3
"""
Failover figures of a running moodle_ha lab: prints measurements, asserts nothing.

    .venv/bin/python test/bench/failover.py                  # every VIP fault once, then writer
    .venv/bin/python test/bench/failover.py vip --fault haproxy-stop --rounds 3
    .venv/bin/python test/bench/failover.py writer --fault kill
    .venv/bin/python test/bench/failover.py app --fault cut --target writer

VIP faults, injected on the load balancer that holds the VIP:
  haproxy-stop    `systemctl stop haproxy` (keepalived's check puts the instance in FAULT)
  keepalived-stop `systemctl stop keepalived` (priority-0 advert, the peer takes over)
  kill            SIGKILL of the host's init (`lab.py kill`, power loss)
A probe on the lab host connects to VIP:<web_port> every --interval seconds and reads the VIP's
owner from the host's ARP table; the figure is the time from the fault until the VIP answers
from the other load balancer. The fault is then undone and the probe checks that the VIP stays
where it is (nopreempt: a recovered host does not take it back).

Writer fault: the Galera node serving VIP:<writer_port> is killed (or its MariaDB stopped); a
pymysql client runs `SELECT @@hostname` and one autocommit INSERT in a loop (new connection after
an error) with the Moodle DB user of the lab pillar; the figure is the time until a write
commits on another node (the time until a read answers there is printed beside it). After the
node rejoined, every row whose INSERT was acknowledged is looked up: lost ones are counted.

App host faults, under 4 steady clients (each GET / through the VIP every --interval seconds,
one request at a time, 5 s timeout): the host that serves VIP:<writer_port> (`--target writer`) or
another app host (`--target other`, the default) is killed (`lab.py kill`) or silently cut
(`lab.py cut`: its link drops every packet). Figures: failed requests, the longest time in
which no client got a successful answer, and the time from the fault until 3 s of successes in
a row; then the host is started/healed and the probe waits for the Galera cluster to be whole
again.

Every loop is bounded by a count and a time limit. The lab lock (/tmp/moodle_ha-lab.lock) is
held for the whole run so no state run changes the hosts under the probe.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))  # run as a script: mhalab
sys.path.insert(0, str(Path(__file__).resolve().parent))  # report.py, when imported

from report import Report  # noqa: E402

from mhalab import testkit  # noqa: E402
from mhalab.paths import LAB_LOCK  # noqa: E402

LAB = [sys.executable, str(testkit.LAB_PY)]
VIP_FAULTS = ("haproxy-stop", "keepalived-stop", "kill")
WRITER_FAULTS = ("kill", "mariadb-stop")
APP_FAULTS = ("kill", "cut")
STEADY = 3.0  # seconds of successes in a row that count as steady again
STEADY_GAP = 1.0  # ... with no two successes further apart than this
APP_CLIENTS = 4  # steady clients of the app host faults, each one request at a time
REPORT = Report()  # the figures for --json (bench.py's table)
VIP_METHOD = "TCP connect to VIP:web every {interval} s from the lab host, owner from ARP"


def figure(name: str, value: str) -> None:
    print(f"{name:<40} {value}", flush=True)


def lab(*args: str, timeout: float = 300, check: bool = True) -> str:
    if not check:
        return testkit.lab_run(*args, timeout=timeout).stdout
    try:
        return testkit.lab_ok(*args, timeout=timeout)
    except testkit.LabError as exc:
        raise SystemExit(str(exc)[-800:]) from None


def in_host(host: str, *cmd: str, check: bool = True) -> str:
    return lab("exec", host, "--", *cmd, timeout=60, check=check)


def writer_port(conf: dict) -> int:
    return int(conf.get("lb", {}).get("haproxy", {}).get("writer_port", 3307))


def hosts_with_role(conf: dict, role: str) -> list[str]:
    hosts = conf["topology"]["hosts"]
    return sorted(name for name, spec in hosts.items() if role in spec.get("roles", []))


def arp_mac(ip: str) -> str | None:
    """MAC the lab host currently sends ``ip`` to (None when unresolved)."""
    with open("/proc/net/arp", encoding="ascii") as fh:
        for line in fh.readlines()[1:]:
            fields = line.split()
            if fields[0] == ip and fields[2] != "0x0":
                return fields[3].lower()
    return None


def tcp_answers(ip: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


def lb_macs(lbs: list[str]) -> dict[str, str]:
    macs = {}
    for host in lbs:
        out = in_host(host, "cat", "/sys/class/net/host0/address", check=False).strip()
        if out:
            macs[out.lower()] = host
    return macs


def vip_holder(lbs: list[str], vip: str) -> str | None:
    for host in lbs:
        out = in_host(host, "ip", "-4", "-o", "addr", "show", check=False)
        if f" {vip}/" in out:
            return host
    return None


def probe_vip(vip, port, macs, want_owner, *, interval, limit, count, start):
    """Probe until the VIP answers from ``want_owner``; return (seconds, probes, gap) or None."""
    last_ok = start
    gap = 0.0
    for n in range(1, count + 1):
        now = time.monotonic()
        if now - start > limit:
            return None
        ok = tcp_answers(vip, port, timeout=interval * 2)
        # Ping-free ARP refresh: the connect attempt above makes the kernel resolve the VIP.
        owner = macs.get(arp_mac(vip) or "")
        now = time.monotonic()
        if ok:
            gap = max(gap, now - last_ok)
            last_ok = now
            if owner == want_owner:
                return now - start, n, gap
        time.sleep(max(0.0, interval - (time.monotonic() - now)))
    return None


def watch_stays(vip, port, macs, owner, *, seconds, interval):
    """Probe for ``seconds``: count probes where the VIP did not answer from ``owner``."""
    misses = 0
    probes = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end and probes < int(seconds / interval) + 10:
        probes += 1
        ok = tcp_answers(vip, port, timeout=interval * 2)
        if not ok or macs.get(arp_mac(vip) or "") != owner:
            misses += 1
        time.sleep(interval)
    return misses, probes


def start_vip_fault(fault: str, host: str) -> subprocess.Popen:
    """Start the fault in the background: the probe runs while it is being injected."""
    if fault == "haproxy-stop":
        cmd = ["exec", host, "--", "systemctl", "stop", "haproxy"]
    elif fault == "keepalived-stop":
        cmd = ["exec", host, "--", "systemctl", "stop", "keepalived"]
    else:
        cmd = ["kill", host]
    return subprocess.Popen([*LAB, *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def finish(proc: subprocess.Popen, what: str) -> None:
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise SystemExit(f"{what}: did not finish in 120 s") from None
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed: {err.strip()[-500:]}")


def undo_vip_fault(fault: str, host: str) -> None:
    if fault == "haproxy-stop":
        in_host(host, "systemctl", "start", "haproxy")
    elif fault == "keepalived-stop":
        in_host(host, "systemctl", "start", "keepalived")
    elif fault == "kill":
        lab("start", host, timeout=400)


def wait_ready(lbs: list[str], vip: str, limit: float = 120) -> str:
    """Wait until one lb holds the VIP and every lb runs haproxy and keepalived."""

    def ready():
        holder = vip_holder(lbs, vip)
        active = all(
            in_host(h, "systemctl", "is-active", "haproxy", "keepalived", check=False).split()
            == ["active", "active"]
            for h in lbs
        )
        return holder if active else None

    waited = testkit.until(ready, limit, interval=1)
    if not waited:
        raise SystemExit(f"VIP {vip} not held / services not active on {lbs} after {limit} s")
    return waited.value


def run_vip(conf: dict, fault: str, rounds: int, interval: float, limit: float) -> list[float]:
    vip = conf["topology"]["vip"]
    port = int(conf.get("lb", {}).get("haproxy", {}).get("web_port", 80))
    lbs = hosts_with_role(conf, "lb")
    results = []
    for rnd in range(1, rounds + 1):
        holder = wait_ready(lbs, vip)
        macs = lb_macs(lbs)
        others = [h for h in lbs if h != holder]
        # Fill the ARP entry with the current holder before the fault.
        if not tcp_answers(vip, port, timeout=1):
            raise SystemExit(f"VIP {vip}:{port} does not answer before the fault")
        start = time.monotonic()
        proc = start_vip_fault(fault, holder)
        got = None
        for other in others:  # the peer with the highest priority should win; accept any
            got = probe_vip(vip, port, macs, other, interval=interval, limit=limit,
                            count=int(limit / interval) + 10, start=start)
            if got:
                new = other
                break
        finish(proc, f"{fault} on {holder}")
        if got is None:
            figure(f"vip {fault} round {rnd}", f"VIP did not move within {limit:.0f} s")
            REPORT.add(f"vip_{fault}_s", f"VIP holder: {fault}", None, "s",
                       f"round {rnd}: the VIP did not move within {limit:.0f} s",
                       VIP_METHOD.format(interval=interval))
            undo_vip_fault(fault, holder)
            continue
        seconds, probes, gap = got
        results.append(seconds)
        REPORT.add(f"vip_{fault}_s", f"VIP holder: {fault}", round(max(results), 2), "s",
                   f"{holder} -> {new}, longest gap {gap:.2f} s; worst of {len(results)}"
                   " round(s)",
                   VIP_METHOD.format(interval=interval))
        figure(f"vip {fault} round {rnd}",
               f"{holder} -> {new} in {seconds:.2f} s ({probes} probes, longest gap"
               f" {gap:.2f} s)")
        t0 = time.monotonic()
        undo_vip_fault(fault, holder)
        figure(f"  {holder} restored", f"in {time.monotonic() - t0:.1f} s")
        misses, probes = watch_stays(vip, port, macs, new, seconds=8, interval=interval)
        figure("  VIP stays after recovery", f"{probes - misses}/{probes} probes on {new}")
    return results


def db_conn(conf: dict, port: int):
    import pymysql

    moodle = conf.get("moodle", {}).get("db", {})
    return pymysql.connect(
        host=conf["topology"]["vip"], port=port, user=moodle.get("user", "moodle"),
        password=conf["secrets"]["moodle_db_password"].encode(),
        database=moodle.get("name", "moodle"), connect_timeout=1, read_timeout=2,
        write_timeout=2, autocommit=True,
    )


WRITER_TABLE = "mha_bench_writer"  # in the Moodle database, as the lab tests' probe tables


def query_host(conf: dict, port: int, conn, write: bool = False):
    """Return (hostname, connection, id of the row written or None) or (None, None, None) when
    the query failed. With `write`, one row is inserted after the hostname is read (autocommit:
    an id comes back only for a committed row)."""
    try:
        if conn is None:
            conn = db_conn(conf, port)
        with conn.cursor() as cur:
            cur.execute("SELECT @@hostname")
            host = cur.fetchone()[0]
            row = None
            if write:
                cur.execute(f"INSERT INTO {WRITER_TABLE} (host) VALUES (%s)", (host,))
                row = cur.lastrowid
            return host, conn, row
    except Exception:  # noqa: BLE001 - any driver error means "not answered"
        with contextlib.suppress(Exception):
            if conn is not None:
                conn.close()
        return None, None, None


def run_writer(conf: dict, fault: str, interval: float, limit: float) -> list[float]:
    port = writer_port(conf)
    name, conn, _ = query_host(conf, port, None)
    if name is None:
        figure("writer", f"VIP:{port} does not answer SQL (galera layer not deployed?): skipped")
        return []
    galera = hosts_with_role(conf, "galera")
    victim = name.split(".")[0]
    if victim not in galera:
        figure("writer", f"@@hostname {name!r} is not a galera host of the topology: skipped")
        return []
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE IF NOT EXISTS {WRITER_TABLE} (id BIGINT AUTO_INCREMENT"
                    " PRIMARY KEY, host VARCHAR(64) NOT NULL)")
    acked = []
    for _ in range(5):  # rows acknowledged by the writer before the fault
        _, conn, row = query_host(conf, port, conn, write=True)
        if row:
            acked.append(row)
    start = time.monotonic()
    if fault == "kill":
        lab("kill", victim, timeout=60)
    else:
        in_host(victim, "systemctl", "stop", "mariadb")
    errors = 0
    answered = wrote = None
    for _ in range(int(limit / interval) + 10):
        if time.monotonic() - start > limit:
            break
        got, conn, _ = query_host(conf, port, conn)
        if got is not None and got.split(".")[0] != victim and answered is None:
            answered = (got, time.monotonic() - start)
        row = None
        if got is not None:
            got, conn, row = query_host(conf, port, conn, write=True)
        if row is not None:
            acked.append(row)
            if got.split(".")[0] != victim:
                wrote = (got, time.monotonic() - start)
                break
        else:
            errors += 1
        time.sleep(interval)
    if wrote:
        figure(f"writer {fault}", f"{victim} -> {wrote[0]}: read in {answered[1]:.2f} s,"
               f" first committed write in {wrote[1]:.2f} s ({errors} failed queries)")
    else:
        figure(f"writer {fault}", f"no write committed on another node within {limit:.0f} s")
    t0 = time.monotonic()
    if fault == "kill":
        lab("start", victim, timeout=400)
    else:
        in_host(victim, "systemctl", "start", "mariadb")
    figure(f"  {victim} restarted", f"in {time.monotonic() - t0:.1f} s")
    size = wait_cluster_size(conf, port, len(galera), limit=max(limit, 120))
    figure(f"  cluster size after {victim} rejoined",
           f"{size} of {len(galera)} in {time.monotonic() - t0:.1f} s")
    lost = None
    if conn is not None:  # cut when the writer moved back to the rejoined node
        conn.close()
    for _ in range(10):
        _, conn, _ = query_host(conf, port, None)
        if conn is not None:
            break
        time.sleep(1)
    if conn is not None:
        with conn.cursor() as cur:
            cur.execute(f"SELECT id FROM {WRITER_TABLE} WHERE id IN"
                        f" ({','.join(['%s'] * len(acked))})", acked)
            lost = len(acked) - len(cur.fetchall())
            cur.execute(f"DROP TABLE {WRITER_TABLE}")
        conn.close()
    figure("  acknowledged writes lost", f"{lost} of {len(acked)}")
    method = (f"pymysql on VIP:{port} every {interval} s, reconnecting: `SELECT @@hostname`"
              " and one autocommit INSERT; the figure is the first write committed on another"
              " node")
    REPORT.add(f"writer_{fault}_s", f"DB writer: {fault}",
               round(wrote[1], 2) if wrote else None, "s",
               (f"reads after {answered[1]:.2f} s; {errors} failed queries; {lost} of"
                f" {len(acked)} acknowledged writes lost") if wrote
               else f"no write within {limit:.0f} s", method)
    return [wrote[1]] if wrote else []


def app_victim(conf: dict, target: str) -> str | None:
    """The app host (galera + web) serving the writer port, or another one."""
    port = writer_port(conf)
    name, conn, _ = query_host(conf, port, None)
    if conn is not None:
        conn.close()
    apps = [h for h in hosts_with_role(conf, "galera") if h in hosts_with_role(conf, "web")]
    writer = name.split(".")[0] if name else None
    if target == "writer":
        return writer if writer in apps else None
    others = [h for h in apps if h != writer]
    return others[-1] if others else None


def steady_client(vip: str, interval: float, stop, log: list) -> None:
    """GET / through the VIP every ``interval`` s; (start, end, ok) per request into ``log``."""
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            status, _ = testkit.http_get(testkit.site_url("/"), host_header=vip, timeout=5)
        except OSError:
            status = None
        log.append((t0, time.monotonic(), status == 200))
        time.sleep(max(0.0, interval - (time.monotonic() - t0)))


def stall_figures(log: list, fault_at: float) -> tuple[int, int, float, float | None]:
    """(requests, failed, longest time without a success, time to steady) after the fault."""
    after = sorted((r for r in log if r[1] >= fault_at), key=lambda r: r[1])
    failed = sum(1 for r in after if not r[2])
    successes = [fault_at] + [end for _, end, ok in after if ok]
    gaps = [b - a for a, b in zip(successes, successes[1:], strict=False)]
    if after:
        gaps.append(after[-1][1] - successes[-1])
    # Steady: from the answer that starts STEADY seconds of answers, none failed and none more
    # than STEADY_GAP after the one before (in the order they ended: with several clients, a
    # request that started before the fault and waited out a stall ends with success).
    steady = None
    run_start = last = None
    for _, end, ok in after:
        if not ok:
            run_start = None
            continue
        if run_start is None or end - last > STEADY_GAP:
            run_start = end
        last = end
        if end - run_start >= STEADY:
            steady = max(0.0, run_start - fault_at)
            break
    return len(after), failed, max(gaps, default=0.0), steady


def run_app(conf: dict, fault: str, target: str, interval: float, limit: float) -> list[float]:
    victim = app_victim(conf, target)
    if victim is None:
        figure(f"app {fault} ({target})", "no such app host (galera + web) answers: skipped")
        return []
    vip = conf["topology"]["vip"]
    port = writer_port(conf)
    log: list = []
    stop = threading.Event()
    # Several clients: the site is dark while none of them gets an answer; one client alone
    # measures its own request in flight on the dead host (its timeout, 5 s) instead.
    clients = [threading.Thread(target=steady_client, args=(vip, interval, stop, log),
                                daemon=True) for _ in range(APP_CLIENTS)]
    for client in clients:
        client.start()
        time.sleep(interval / APP_CLIENTS)
    time.sleep(STEADY)
    fault_at = time.monotonic()
    lab("kill" if fault == "kill" else "cut", victim, timeout=60)
    testkit.until(lambda: stall_figures(log, fault_at)[3] is not None
                  and time.monotonic() - fault_at > 10, limit, interval=0.5)
    stop.set()
    for client in clients:
        client.join(10)
    requests, failed, stall, steady = stall_figures(log, fault_at)
    name = f"app {fault} ({target}: {victim})"
    REPORT.add(f"app_{fault}_{target}_stall_s", f"app host {fault} ({target})", round(stall, 2),
               "s without a success",
               f"{failed} of {requests} requests failed; steady after "
               + (f"{steady:.1f} s" if steady is not None else f"> {limit:.0f} s"),
               f"{APP_CLIENTS} clients, each GET / through the VIP every {interval} s, one at"
               " a time, 5 s timeout; longest time without a success of any of them")
    figure(name, f"{failed} of {requests} requests failed, longest {stall:.2f} s without a"
           f" success, steady after " + (f"{steady:.2f} s" if steady is not None else
                                          f"> {limit:.0f} s"))
    t0 = time.monotonic()
    lab("start" if fault == "kill" else "heal", victim, timeout=400)
    size = wait_cluster_size(conf, port, len(hosts_with_role(conf, "galera")),
                             limit=max(limit, 180))
    figure(f"  {victim} back", f"cluster size {size} after {time.monotonic() - t0:.1f} s")
    return [stall]


def cluster_size(conf: dict, port: int) -> int | None:
    """wsrep_cluster_size through the writer port (None when it does not answer)."""
    conn = None
    size = None
    with contextlib.suppress(Exception):
        conn = db_conn(conf, port)
        with conn.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS LIKE 'wsrep_cluster_size'")
            size = int(cur.fetchone()[1])
    if conn is not None:
        conn.close()
    return size


def wait_cluster_size(conf: dict, port: int, want: int, limit: float) -> int | None:
    """Poll wsrep_cluster_size until it reaches ``want`` (bounded); the last size seen."""
    seen: list[int | None] = [None]

    def reached():
        seen[0] = cluster_size(conf, port)
        return seen[0] == want

    testkit.until(reached, limit, interval=1)
    return seen[0]


def summary(name: str, values: list[float]) -> None:
    if len(values) > 1:
        figure(f"{name} (n={len(values)})", f"min {min(values):.2f} s, median"
               f" {statistics.median(values):.2f} s, max {max(values):.2f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="?", choices=("all", "vip", "writer", "app"),
                        default="all")
    parser.add_argument("--fault", help=f"vip: {', '.join(VIP_FAULTS)}; writer:"
                        f" {', '.join(WRITER_FAULTS)}; app: {', '.join(APP_FAULTS)} (default:"
                        " every vip fault, writer kill, every app fault)")
    parser.add_argument("--target", choices=("other", "writer", "both"), default=None,
                        help="app faults: the writer's host, another app host (default: both"
                        " with `all`, other with `app`)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--interval", type=float, default=0.1, help="probe period, seconds")
    parser.add_argument("--limit", type=float, default=30.0, help="give up after, seconds")
    parser.add_argument("--json", help="write the figures to this file (bench.py's table)")
    args = parser.parse_args()
    if not 0.01 <= args.interval <= 5 or not 1 <= args.limit <= 600 or not 1 <= args.rounds <= 20:
        parser.error("--interval 0.01..5, --limit 1..600, --rounds 1..20")

    conf = testkit.pillar()
    if not conf.get("topology"):
        print(f"no lab pillar under {testkit.paths.PILLAR_DIR}: is the lab up?",
              file=sys.stderr)
        return 1
    with open(LAB_LOCK, "w", encoding="ascii") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if args.what in ("all", "vip"):
            faults = [args.fault] if args.fault and args.what == "vip" else VIP_FAULTS
            for fault in faults:
                if fault not in VIP_FAULTS:
                    parser.error(f"unknown vip fault {fault}")
                summary(f"vip {fault}", run_vip(conf, fault, args.rounds, args.interval,
                                                args.limit))
        if args.what in ("all", "writer"):
            fault = args.fault if args.fault and args.what == "writer" else "kill"
            if fault not in WRITER_FAULTS:
                parser.error(f"unknown writer fault {fault}")
            values = []
            for _ in range(args.rounds):
                values += run_writer(conf, fault, args.interval, args.limit)
            summary(f"writer {fault}", values)
        if args.what in ("all", "app"):
            faults = [args.fault] if args.fault and args.what == "app" else APP_FAULTS
            target = args.target or ("both" if args.what == "all" else "other")
            targets = ("other", "writer") if target == "both" else (target,)
            for fault in faults:
                if fault not in APP_FAULTS:
                    parser.error(f"unknown app fault {fault}")
                for which in targets:
                    values = []
                    for _ in range(args.rounds):
                        values += run_app(conf, fault, which, args.interval, args.limit)
                    summary(f"app {fault} ({which})", values)
    if args.json:
        REPORT.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

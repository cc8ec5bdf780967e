"""The lab's verbs (lab.py up|down|status|deploy|info|exec|...)."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from . import image, saltctl
from .daemons import (
    acng_start,
    daemon_running,
    master_config,
    master_start,
    moodle_archive,
    pillar_files,
    stop_daemons,
)
from .hosts import (
    boot_host,
    host_upper,
    leader_pid,
    power_off,
    prepare_upper,
    stop_host,
    wait_leader,
)
from .network import bridge_down, bridge_exists, bridge_up, link_state, set_link
from .paths import (
    BRIDGE,
    CACHE_DIR,
    HOSTS_DIR,
    LAB_DIR,
    LOG_DIR,
    PILLAR_COPY,
    PILLAR_DIR,
    RELEASES,
    SECRETS_FILE,
    SRV_DIR,
    STATE_FILE,
    TLS_CA,
    lab_pillar,
    load_state,
    pillar_source,
    release,
    save_state,
    topology,
)
from .procs import (
    Step,
    capture,
    cgroup_dirs,
    cgroup_pids,
    ensure_host_deps,
    kill_cgroup,
    log,
    logfile,
    pid_cmdline,
    remove_cgroups,
    wait_dead,
)

LAB_PY = "test/lab/lab.py"


# --------------------------------------------------------------------------- base image


def base_image(rel: str) -> Path:
    """The release's cached base rootfs for the current recipe; built when missing. Older
    images of the same release (and of the pre-release naming) are removed."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    dest = CACHE_DIR / image.image_name(rel)
    if (dest / "rootfs" / "opt/salt/bin/salt-minion").exists():
        log(f"==> base image {rel}: cached {dest}")
        return dest / "rootfs"
    build_log = logfile(f"image-{rel}.log")
    with Step(f"build {rel} base image {dest.name} (log: {build_log})"):
        if dest.exists():
            shutil.rmtree(dest)
        image.build(dest, rel, build_log)
    mounts = Path("/proc/mounts").read_text()
    legacy = re.compile(r"base-[0-9a-f]{16}($|\.build-)")
    for old in CACHE_DIR.glob("base-*"):
        ours = old.name.startswith(f"base-{rel}-") or legacy.match(old.name)
        if old != dest and ours and str(old) not in mounts:
            log(f"    removed old image {old.name}")
            shutil.rmtree(old, ignore_errors=True)
    return dest / "rootfs"


# --------------------------------------------------------------------------- up / down


def lab_running(state: dict) -> bool:
    if daemon_running(state, "master_pid") and "salt-master" in pid_cmdline(state["master_pid"]):
        return True
    return any(leader_pid(h, state) for h in state.get("hosts", {}))


def running_lab_dirs() -> set[Path]:
    """Lab dirs of the hosts running in the lab cgroups, from their nspawn command lines."""
    dirs: set[Path] = set()
    for base in cgroup_dirs():
        for pid in cgroup_pids(base):
            for arg in pid_cmdline(pid).split():
                if arg.startswith("--overlay=") and arg.endswith("/upper:/"):
                    dirs.add(Path(arg.split(":")[1]).parents[2])
    return dirs


def stop_lab_processes(lab_dir: Path, grace: float = 8) -> list[str]:
    """Power off every host at once and stop salt-master and apt-cacher-ng meanwhile (the PIDs
    recorded in lab_dir's state). Returns the hosts that had to be killed."""
    state = load_state(lab_dir)
    daemons = threading.Thread(target=stop_daemons, args=(state,))
    daemons.start()
    killed = power_off(list(state.get("hosts", {})), state, grace=grace)
    daemons.join()
    return killed


def teardown(extra_dirs: set[Path] | None = None) -> None:
    dirs = [LAB_DIR, *sorted(extra_dirs or ())]
    killed = []
    for lab_dir in dirs:
        killed += stop_lab_processes(lab_dir)
    remove_cgroups()
    bridge_down()
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for lab_dir in dirs:
        for mnt in sorted((m for m in mounts if m.startswith(str(lab_dir))), reverse=True):
            capture(["umount", "-l", mnt])
        if lab_dir.exists():
            shutil.rmtree(lab_dir)
    if killed:
        log(f"    (killed after the poweroff grace time: {', '.join(killed)})")


def cmd_up(args) -> int:
    if os.geteuid() != 0:
        raise SystemExit("lab.py must run as root")
    t_all = time.monotonic()
    rel = release(args.release)
    topo = topology(pillar_source(args.pillar, fresh=True))
    ensure_host_deps()
    old = load_state()
    if old.get("complete") and lab_running(old) and not args.replace:
        raise SystemExit(
            f"the lab is already up ({LAB_DIR}); `lab.py down` first, or `up --replace`"
        )
    others = running_lab_dirs() - {LAB_DIR}
    if others and not args.replace:
        raise SystemExit(
            f"a lab from {', '.join(map(str, sorted(others)))} is running on this machine; "
            "`lab.py down` there first, or `up --replace`"
        )
    if STATE_FILE.exists() or bridge_exists() or any(d.exists() for d in cgroup_dirs()):
        with Step("clean stale lab state"):
            teardown(others)
    for d in (LAB_DIR, LOG_DIR, HOSTS_DIR, SRV_DIR, PILLAR_DIR):
        d.mkdir(parents=True, exist_ok=True)
    log(f"==> lab {LAB_DIR}: {len(topo['hosts'])} {rel} hosts from {topo['source']};"
        f" logs in {LOG_DIR}")
    rootfs = base_image(rel)
    state: dict = {"bridge": BRIDGE, "rootfs": str(rootfs), "release": rel,
                   "pillar": topo["source"], "hosts": {}}
    save_state(state)
    with Step(f"bridge {BRIDGE} {topo['gateway']}/{topo['prefix']}, apt-cacher-ng"):
        bridge_up(topo)
        acng_start(topo, state)
    moodle_archive(args.moodle_archive)
    with Step(f"salt-master on {topo['gateway']} (lab pillar in {PILLAR_DIR})"):
        master_config(topo)
        pillar_files(topo)
        master_start(topo, state)
    with Step(f"boot {len(topo['hosts'])} hosts ({', '.join(topo['hosts'])})"):
        for host, info in topo["hosts"].items():
            prepare_upper(host, info, topo)
            boot_host(host, rootfs, state)
        for host in topo["hosts"]:
            state["hosts"][host]["leader"] = wait_leader(host, state)
        save_state(state)
    with Step("wait for every minion to answer test.ping"):
        saltctl.wait_minions(topo["hosts"])
    state["up_seconds"] = round(time.monotonic() - t_all, 1)
    state["complete"] = True
    save_state(state)
    log(f"lab up in {time.monotonic() - t_all:.1f} s:")
    for host, info in topo["hosts"].items():
        log(f"    {host:10} {info['ip']:15} roles={','.join(info['roles'])}")
    log(f"next: `make deploy` (or {LAB_PY} deploy); `make status`, `make down`")
    return 0


def cmd_add(args) -> int:
    """Boot HOSTS into the running lab: the new topology comes from --pillar, which must keep
    every current host with its IP and roles; the lab's secrets and the rest of its pillar stay
    (the next `deploy` brings the hosts into the cluster)."""
    if os.geteuid() != 0:
        raise SystemExit("lab.py must run as root")
    state = load_state()
    if not (state.get("complete") and lab_running(state)):
        raise SystemExit("the lab is not up: `lab.py up` first")
    old, new = topology(), topology(Path(args.pillar))
    hosts = list(dict.fromkeys(args.hosts))
    for host in hosts:
        if host in old["hosts"]:
            raise SystemExit(f"{host} is already a lab host")
        if host not in new["hosts"]:
            raise SystemExit(f"{args.pillar}: no host {host} in moodle_ha:topology:hosts")
    for key in ("subnet", "vip"):
        if new[key] != old[key]:
            raise SystemExit(f"{args.pillar}: topology:{key} {new[key]} differs from the lab's"
                             f" {old[key]}")
    changed = sorted(h for h, info in old["hosts"].items() if new["hosts"].get(h) != info)
    extra = sorted(set(new["hosts"]) - set(old["hosts"]) - set(hosts))
    if changed or extra:
        raise SystemExit(f"{args.pillar}: only {', '.join(hosts)} may differ from the lab's"
                         f" topology (changed: {changed or '-'}, other new hosts: {extra or '-'})")
    t_all = time.monotonic()
    shutil.copy2(Path(args.pillar).resolve(), PILLAR_COPY)
    state["pillar"] = str(Path(args.pillar).resolve())
    for host in hosts:
        info = new["hosts"][host]
        with Step(f"boot {host} ({info['ip']}, roles={','.join(info['roles'])})"):
            prepare_upper(host, info, new)
            boot_host(host, Path(state["rootfs"]), state)
            state["hosts"][host]["leader"] = wait_leader(host, state)
            save_state(state)
    with Step(f"wait for {', '.join(hosts)} to answer test.ping"):
        saltctl.wait_minions(hosts)
    log(f"{', '.join(hosts)} added in {time.monotonic() - t_all:.1f} s; next: `make deploy`")
    return 0


def cmd_down(args) -> int:
    others = running_lab_dirs() - {LAB_DIR}
    if others and not args.force:
        raise SystemExit(
            f"the running lab belongs to {', '.join(map(str, sorted(others)))}, not {LAB_DIR}; "
            "run `down` there (MOODLE_HA_LAB_DIR), or `down --force`"
        )
    with Step("lab down (hosts, salt-master, apt-cacher-ng, cgroups, bridge, lab dir)"):
        teardown(others)
    return 0


# --------------------------------------------------------------------------- looking at it


def cmd_status(args) -> int:
    state = load_state()
    if not state:
        log(f"lab is down (no {STATE_FILE})")
        return 1
    topo = topology()
    running = [h for h in topo["hosts"] if leader_pid(h, state)]
    master_up = daemon_running(state, "master_pid")
    pings = saltctl.ping(running) if master_up else {}
    log(f"lab dir {LAB_DIR}  release {state.get('release', '?')}  "
        f"bridge {BRIDGE}: {'up' if bridge_exists() else 'MISSING'}")
    log(
        f"salt-master pid {state.get('master_pid')} {'running' if master_up else 'DEAD'}; "
        f"apt-cacher-ng pid {state.get('acng_pid')} "
        f"{'running' if daemon_running(state, 'acng_pid') else 'DEAD'}"
    )
    ok = True
    for host, info in topo["hosts"].items():
        h = state.get("hosts", {}).get(host, {})
        leader = leader_pid(host, state)
        answer = pings.get(host) is True
        ok = ok and answer
        log(
            f"  {host:10} {info['ip']:15} nspawn={h.get('pid') if leader else '-':<8} "
            f"leader={leader or '-':<8} link={link_state(host):<4} "
            f"ping={'yes' if answer else 'no'}"
        )
    log(f"  VIP {topo['vip']}")
    return 0 if ok else 2


def access_lines(topo: dict) -> list[str]:
    """What a person needs to use the deployed lab."""
    pillar = lab_pillar()
    haproxy = pillar.get("lb", {}).get("haproxy", {})
    vip = topo["vip"]
    tls = pillar.get("lb", {}).get("tls", {})
    if tls.get("enabled", True):
        port = int(tls.get("https_port", 443))
        url = f"https://{vip}/" if port == 443 else f"https://{vip}:{port}/"
        url += f" (CA: {TLS_CA})"
    else:
        web = int(haproxy.get("web_port", 80))
        url = f"http://{vip}/" if web == 80 else f"http://{vip}:{web}/"
    admin = pillar.get("moodle", {}).get("admin", {}).get("user", "admin")
    password = pillar.get("secrets", {}).get("moodle_admin_password", "?")
    first = next(iter(topo["hosts"]))
    return [
        f"Moodle     {url}  (from this machine: the lab bridge {BRIDGE} is not routed)",
        f"admin      user {admin}, password {password}  (in {SECRETS_FILE})",
        f"database   writer {vip}:{haproxy.get('writer_port', 3307)},"
        f" readers {vip}:{haproxy.get('reader_port', 3308)}",
        f"shell      make shell HOST={first}   (or {LAB_PY} exec {first});"
        f" hosts: {', '.join(topo['hosts'])}",
        f"salt       {LAB_PY} salt '*' test.ping;  logs: {LOG_DIR}",
        "status     make status",
        "down       make down",
    ]


def cmd_info(args) -> int:
    if not load_state():
        log(f"lab is down (no {STATE_FILE})")
        return 1
    for line in access_lines(topology()):
        log(line)
    return 0


def cmd_deploy(args) -> int:
    if not load_state().get("complete"):
        raise SystemExit(f"the lab is not up ({LAB_DIR}): `make demo` or `{LAB_PY} up` first")
    rc = saltctl.deploy(args.extra)
    if rc == 0:
        for line in access_lines(topology()):
            log(line)
    return rc


# --------------------------------------------------------------------------- single hosts


def need_host(host: str, state: dict) -> int:
    if host not in topology()["hosts"]:
        raise SystemExit(f"unknown host {host}")
    leader = leader_pid(host, state)
    if not leader:
        raise SystemExit(f"{host} is not running")
    return leader


def cmd_exec(args) -> int:
    state = load_state()
    leader = need_host(args.host, state)
    cmd = args.cmd or ["bash", "-l"]
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "HOME": "/root",
        "TERM": os.environ.get("TERM", "dumb"),
    }
    return subprocess.run(["nsenter", "-t", str(leader), "-a", *cmd], env=env).returncode


def cmd_kill(args) -> int:
    state = load_state()
    leader = need_host(args.host, state)
    pid = state["hosts"][args.host]["pid"]
    os.kill(leader, signal.SIGKILL)
    wait_dead(pid, 15)
    log(f"{args.host}: init {leader} killed (power loss)")
    return 0


def cmd_stop(args) -> int:
    state = load_state()
    need_host(args.host, state)
    t0 = time.monotonic()
    stop_host(args.host, state, graceful=True, timeout=60)
    log(f"{args.host}: powered off in {time.monotonic() - t0:.1f} s")
    return 0


def cmd_start(args) -> int:
    state = load_state()
    topo = topology()
    if args.host not in topo["hosts"]:
        raise SystemExit(f"unknown host {args.host}")
    if leader_pid(args.host, state):
        log(f"{args.host} already running")
        return 0
    t0 = time.monotonic()
    for cg in cgroup_dirs(args.host):  # leftovers of a killed container
        kill_cgroup(cg)
    if not host_upper(args.host).exists():
        prepare_upper(args.host, topo["hosts"][args.host], topo)
    boot_host(args.host, Path(state["rootfs"]), state)
    state["hosts"][args.host]["leader"] = wait_leader(args.host, state)
    save_state(state)
    if not args.no_wait:
        saltctl.wait_minions([args.host])
    log(f"{args.host}: booted in {time.monotonic() - t0:.1f} s")
    return 0


def cmd_link(args, up: bool) -> int:
    need_host(args.host, load_state())
    set_link(args.host, up)
    return 0


def passthrough(tool: str):
    def _run(args) -> int:
        return subprocess.run(saltctl.salt_cmd(tool, args.args)).returncode

    return _run


def cmd_salt_call(args) -> int:
    args.cmd = ["/opt/salt/bin/salt-call", *args.args]
    return cmd_exec(args)


def main(argv: list[str] | None = None, doc: str = "") -> int:
    parser = argparse.ArgumentParser(description=(doc or __doc__).splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    p = sub.add_parser("up", help="build/reuse the base image, start bridge, proxy, master, hosts")
    p.add_argument("--release", choices=RELEASES,
                   help="Debian release of the hosts (default: $MOODLE_HA_LAB_RELEASE or trixie)")
    p.add_argument("--pillar", metavar="FILE",
                   help="pillar file with moodle_ha:topology (default: $MOODLE_HA_LAB_PILLAR or"
                   " pillar.example); the lab serves it as its moodle_ha pillar")
    p.add_argument("--moodle-archive", help="use this Moodle .tgz instead of the fixture app")
    p.add_argument("--replace", action="store_true", help="tear down a running lab first")
    p.set_defaults(func=cmd_up)
    p = sub.add_parser("add", help="boot more hosts (from a pillar with the new topology)")
    p.add_argument("hosts", nargs="+", metavar="HOST")
    p.add_argument("--pillar", metavar="FILE", required=True,
                   help="pillar file: the lab's topology plus the HOSTs (nothing else may"
                   " differ)")
    p.set_defaults(func=cmd_add)
    p = sub.add_parser("down", help="stop everything and remove the lab dir")
    p.add_argument("--force", action="store_true", help="also a lab started from another dir")
    p.set_defaults(func=cmd_down)
    sub.add_parser("status", help="hosts, pids, links, minion ping").set_defaults(func=cmd_status)
    sub.add_parser("info", help="URL, admin login, how to get a shell").set_defaults(
        func=cmd_info)
    p = sub.add_parser("deploy", help="sync_all + state.orchestrate moodle_ha.orch")
    p.add_argument("extra", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_deploy)
    for tool in ("salt", "salt-run", "salt-key", "salt-cp"):
        p = sub.add_parser(tool, help=f"{tool} with the lab master config", add_help=False)
        p.add_argument("args", nargs=argparse.REMAINDER)
        p.set_defaults(func=passthrough(tool))
    p = sub.add_parser("salt-call", help="salt-call inside HOST", add_help=False)
    p.add_argument("host")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_salt_call)
    p = sub.add_parser("exec", help="run CMD inside HOST (nsenter)")
    p.add_argument("host")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_exec)
    for verb, func, text in (
        ("kill", cmd_kill, "SIGKILL the host's init (power loss)"),
        ("stop", cmd_stop, "graceful poweroff"),
        ("cut", lambda a: cmd_link(a, False), "take the host's bridge port down"),
        ("heal", lambda a: cmd_link(a, True), "bring the host's bridge port up"),
    ):
        p = sub.add_parser(verb, help=text)
        p.add_argument("host")
        p.set_defaults(func=func)
    p = sub.add_parser("start", help="boot a stopped host again (same disk)")
    p.add_argument("host")
    p.add_argument("--no-wait", action="store_true", help="do not wait for its minion")
    p.set_defaults(func=cmd_start)
    args = parser.parse_args(argv)
    return args.func(args) or 0



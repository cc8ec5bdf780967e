"""The hosts: their disks (overlay upper dirs), booting them under systemd-nspawn, finding their
init, powering them off."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

from .paths import ACNG_PORT, BRIDGE, HOSTS_DIR, save_state, yaml_dump
from .procs import cgroup_dirs, cgroup_pids, children, pid_alive, pid_cmdline, wait_dead

# How nspawn runs each release's systemd on this kind of host (cgroup v1/v2 hybrid): systemd
# 257 (trixie) deprecates the v1 hierarchy (258 drops it), so its containers get a pure cgroup
# v2 tree (from the host's unified hierarchy); bookworm's 252 keeps the hybrid one.
NSPAWN_ENV = {
    "bookworm": {},
    "trixie": {"SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"},
}


def host_dir(host: str) -> Path:
    return HOSTS_DIR / host


def host_upper(host: str) -> Path:
    return host_dir(host) / "upper"


def prepare_upper(host: str, info: dict, topo: dict) -> None:
    """The host's identity, written into its disk before the first boot."""
    upper = host_upper(host)
    etc = upper / "etc"
    (etc / "systemd/network").mkdir(parents=True, exist_ok=True)
    (etc / "apt/apt.conf.d").mkdir(parents=True, exist_ok=True)
    (etc / "salt/minion.d").mkdir(parents=True, exist_ok=True)
    (etc / "hostname").write_text(host + "\n")
    machine_id = hashlib.sha256(f"moodle_ha-lab-{host}".encode()).hexdigest()[:32]
    (etc / "machine-id").write_text(machine_id + "\n")
    (etc / "systemd/network/10-host0.network").write_text(
        "[Match]\nName=host0\n\n[Network]\n"
        f"Address={info['ip']}/{topo['prefix']}\n"
        "LinkLocalAddressing=no\nIPv6AcceptRA=no\n"
    )
    (etc / "apt/apt.conf.d/01proxy").write_text(
        f'Acquire::http::Proxy "http://{topo["gateway"]}:{ACNG_PORT}";\n'
    )
    (etc / "salt/minion_id").write_text(host)
    (etc / "salt/minion.d/lab.conf").write_text(
        yaml_dump(
            {
                "master": topo["gateway"],
                "id": host,
                "grains": {"roles": info["roles"]},
                "log_level_logfile": "info",
                "acceptance_wait_time": 2,
                "random_reauth_delay": 0,
                "recon_default": 200,
                "recon_max": 2000,
                # README's "Salt setting for run time": a function a module lacks is looked
                # up in the files named like it only, not by importing every module.
                "lazy_loader_strict_matching": True,
            }
        )
    )
    # nspawn copies the host's resolv.conf otherwise; the hosts only talk to the lab network.
    (etc / "resolv.conf").write_text("# lab: no DNS (apt goes through the proxy)\n")
    (etc / "hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {host}\n")


def boot_host(host: str, rootfs: Path, state: dict) -> None:
    """Start the host's nspawn in its own session, cgroups and mount namespace."""
    hdir = host_dir(host)
    hdir.mkdir(parents=True, exist_ok=True)
    for cg in cgroup_dirs(host):
        cg.mkdir(parents=True, exist_ok=True)
    Path("/run/systemd/nspawn").mkdir(parents=True, exist_ok=True)
    nspawn = [
        "systemd-nspawn",
        "--quiet",
        "-b",
        f"--directory={rootfs}",
        f"--overlay={rootfs}:{host_upper(host)}:/",
        f"--machine={host}",
        f"--hostname={host}",
        "--register=no",
        "--keep-unit",
        f"--network-bridge={BRIDGE}",
        "--bind=/dev/fuse",
        # Console output goes to nspawn.log: with --console=passive nobody reads the
        # console, its buffer fills and the container's init blocks writing to it.
        "--console=read-only",
        "--resolv-conf=off",
        "--timezone=off",
        "--link-journal=no",
    ]
    procs = " ; ".join(f"echo $$ > {cg}/cgroup.procs" for cg in cgroup_dirs(host))
    script = (
        f"{procs} && mount -t tmpfs -o mode=0755 tmpfs /run/systemd/nspawn && exec "
        + " ".join(f"'{a}'" for a in nspawn)
    )
    env = dict(os.environ, **NSPAWN_ENV.get(state.get("release", ""), {}))
    with open(hdir / "nspawn.log", "ab") as out:
        proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            env=env,
        )
    state.setdefault("hosts", {})[host] = {"pid": proc.pid}
    save_state(state)


def nspawn_pid(host: str, state: dict) -> int | None:
    pid = state.get("hosts", {}).get(host, {}).get("pid")
    if not pid_alive(pid) or "systemd-nspawn" not in pid_cmdline(pid):
        return None
    return pid


def leader_pid(host: str, state: dict) -> int | None:
    """The container's init (the nspawn process's child), None when the host is not running."""
    pid = nspawn_pid(host, state)
    if not pid:
        return None
    kids = [k for k in children(pid) if pid_alive(k)]
    return kids[0] if kids else None


def wait_leader(host: str, state: dict, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = state["hosts"][host]["pid"]
        if not pid_alive(pid):
            raise SystemExit(f"{host}: systemd-nspawn exited, see {host_dir(host)}/nspawn.log")
        leader = leader_pid(host, state)
        if leader:
            try:
                if os.readlink(f"/proc/{leader}/exe").endswith("systemd"):
                    return leader
            except OSError:
                pass
        time.sleep(0.2)
    raise SystemExit(f"{host}: no container init after {timeout} s")


def _signal(pid: int | None, sig: int) -> None:
    if pid:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def power_off(hosts: list[str], state: dict, grace: float = 10) -> list[str]:
    """Power the hosts off all at once (SIGRTMIN+4 to each init), SIGKILL what still runs after
    `grace` s. Returns the hosts that had to be killed."""
    nspawns = {h: nspawn_pid(h, state) for h in hosts}
    nspawns = {h: p for h, p in nspawns.items() if p}
    leaders = {h: leader_pid(h, state) for h in nspawns}
    for leader in leaders.values():
        _signal(leader, signal.SIGRTMIN + 4)  # systemd: poweroff
    killed = []
    if grace > 0:
        wait_dead(list(nspawns.values()), grace)
    for host, pid in nspawns.items():
        if pid_alive(pid):
            killed.append(host)
            _signal(leaders[host], signal.SIGKILL)
            # Everything inside at once too: a process stuck on a mount (gluster's FUSE) must
            # not hold the container's teardown.
            for cg in cgroup_dirs(host):
                for inner in cgroup_pids(cg):
                    if inner != pid:
                        _signal(inner, signal.SIGKILL)
    if killed and not wait_dead([nspawns[h] for h in killed], 5):
        for host in killed:
            _signal(nspawns[host], signal.SIGKILL)
        wait_dead([nspawns[h] for h in killed], 5)
    return killed


def stop_host(host: str, state: dict, graceful: bool = True, timeout: float = 30) -> None:
    power_off([host], state, grace=timeout if graceful else 0)

"""Processes and cgroups: the terminal view, commands with their output in log files, PIDs the
lab tracks, the per-host cgroups, host packages."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .paths import CGROUP_NAME, LOG_DIR, REPO

# Each host's nspawn gets its own cgroup in the named systemd (v1) and the unified (v2)
# hierarchy of a hybrid host; on a pure v2 host the root is the unified hierarchy.
CGROUP_ROOTS = (
    [Path("/sys/fs/cgroup")]
    if Path("/sys/fs/cgroup/cgroup.controllers").exists()
    else [Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified")]
)
HOST_PACKAGES = {
    "debootstrap": "debootstrap",
    "systemd-nspawn": "systemd-container",
    "apt-cacher-ng": "apt-cacher-ng",
    "nft": "nftables",
    "ip": "iproute2",
    "nsenter": "util-linux",
    "ping": "iputils-ping",
}


def log(msg: str) -> None:
    print(msg, flush=True)


class Step:
    """One line per step: its title, then how long it took (the detail is in log files)."""

    def __init__(self, title: str):
        self.title = title

    def __enter__(self):
        self.t0 = time.monotonic()
        print(f"==> {self.title} ...", end="", flush=True)
        return self

    def __exit__(self, exc_type, exc, tb):
        took = time.monotonic() - self.t0
        print(f" {'done' if exc_type is None else 'FAILED'} in {took:.1f} s", flush=True)
        return False


def logfile(name: str) -> Path:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    return LOG_DIR / name


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    | " + line for line in text[-lines:])


def run(cmd: list, log_name: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run cmd with its output appended to log/<log_name>; on failure show the log's tail."""
    path = logfile(log_name)
    with open(path, "a") as out:
        out.write("$ " + " ".join(str(c) for c in cmd) + "\n")
        out.flush()
        proc = subprocess.run([str(c) for c in cmd], stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, check=False, **kw)
    if check and proc.returncode != 0:
        raise SystemExit(
            f"\n{' '.join(str(c) for c in cmd[:4])} ... failed ({proc.returncode}):\n"
            f"{tail(path)}\nfull output: {path}"
        )
    return proc


def capture(cmd: list, check: bool = False, timeout: float | None = None):
    return subprocess.run(
        [str(c) for c in cmd], check=check, capture_output=True, text=True, timeout=timeout
    )


def venv_bin(name: str) -> Path:
    """A salt script next to the running interpreter (the project's venv), else <repo>/.venv."""
    for candidate in (Path(sys.executable).parent / name, REPO / ".venv" / "bin" / name):
        if candidate.exists():
            return candidate
    raise SystemExit(f"{name} not found next to {sys.executable} nor in {REPO / '.venv'}")


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def pid_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            pass
    return kids


def wait_dead(pids, timeout: float) -> bool:
    """Wait until every pid (one or several) is gone; True when they all are."""
    pids = [pids] if isinstance(pids, int) else [p for p in pids if p]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(pid_alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return not any(pid_alive(p) for p in pids)


def signal_tracked(pid: int | None, expect: str, sig: int, group: bool = False) -> bool:
    """Signal a process the lab started, only if its command line still matches `expect`."""
    if not pid or not pid_alive(pid) or expect not in pid_cmdline(pid):
        return False
    try:
        os.killpg(pid, sig) if group else os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def kill_tracked(pid: int | None, expect: str, timeout: float = 10, group: bool = False) -> None:
    """SIGTERM a tracked process, SIGKILL it after `timeout` s."""
    if signal_tracked(pid, expect, signal.SIGTERM, group) and not wait_dead(pid, timeout):
        signal_tracked(pid, expect, signal.SIGKILL, group)
        wait_dead(pid, 5)


def cgroup_dirs(host: str | None = None) -> list[Path]:
    base = [root / CGROUP_NAME for root in CGROUP_ROOTS]
    return [b / host for b in base] if host else base


def cgroup_pids(path: Path) -> list[int]:
    pids: list[int] = []
    if not path.exists():
        return pids
    for procs in path.rglob("cgroup.procs"):
        try:
            pids += [int(x) for x in procs.read_text().split()]
        except OSError:
            pass
    return pids


def kill_cgroup(path: Path) -> None:
    for pid in cgroup_pids(path):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def remove_cgroups() -> None:
    """SIGKILL whatever is left in the lab cgroups, then remove them (deepest first)."""
    bases = [b for b in cgroup_dirs() if b.exists()]
    for base in bases:
        kill_cgroup(base)
    deadline = time.monotonic() + 10
    for base in bases:
        dirs = sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for d in [*dirs, base]:
            while True:
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        log(f"    cgroup {d} still busy: {cgroup_pids(d)}")
                        break
                    kill_cgroup(d)
                    time.sleep(0.1)


def ensure_host_deps() -> None:
    missing = sorted({pkg for binary, pkg in HOST_PACKAGES.items() if not shutil.which(binary)})
    if not missing:
        return
    with Step(f"install host packages: {' '.join(missing)}"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["apt-get", "update", "-q"], "host-packages.log", env=env)
        run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
            "host-packages.log", env=env)
    # The packaged apt-cacher-ng service, started by its postinst, would hold port 3142 on all
    # addresses; the lab runs its own instance bound to the bridge only.
    if "apt-cacher-ng" in missing:
        if Path("/run/systemd/system").exists():
            capture(["systemctl", "disable", "--now", "apt-cacher-ng"])
        elif Path("/etc/init.d/apt-cacher-ng").exists():
            capture(["/etc/init.d/apt-cacher-ng", "stop"])
            capture(["update-rc.d", "apt-cacher-ng", "disable"])

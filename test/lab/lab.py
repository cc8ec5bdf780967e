#!/usr/bin/env python3
"""The moodle_ha lab: five systemd-nspawn Debian 12 hosts, a salt-master and an apt proxy.

Run as root with the project's venv python (it provides salt-master):

    .venv/bin/python test/lab/lab.py up|down|status|deploy|salt ...|salt-run ...|...

Topology (names, IPs, roles, subnet, VIP) comes from pillar.example (moodle_ha:topology).
All state lives in the lab dir (MOODLE_HA_LAB_DIR, default <repo>/.lab) except the base image
cache (MOODLE_HA_LAB_CACHE, default /var/cache/moodle_ha-lab).
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
import secrets
import shutil
import signal
import string
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import image  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
LAB_DIR = Path(os.environ.get("MOODLE_HA_LAB_DIR", REPO / ".lab")).resolve()
CACHE_DIR = Path(os.environ.get("MOODLE_HA_LAB_CACHE", "/var/cache/moodle_ha-lab"))
BRIDGE = os.environ.get("MOODLE_HA_LAB_BRIDGE", "mhalab0")
CGROUP_NAME = os.environ.get("MOODLE_HA_LAB_CGROUP", "moodle_ha-lab")
# Each host's nspawn gets its own cgroup in the named systemd (v1) and the unified (v2)
# hierarchy of a hybrid host; on a pure v2 host the root is the unified hierarchy.
CGROUP_ROOTS = (
    [Path("/sys/fs/cgroup")]
    if Path("/sys/fs/cgroup/cgroup.controllers").exists()
    else [Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified")]
)
ACNG_PORT = 3142
MINION_TIMEOUT = 240
HOST_PACKAGES = {
    "debootstrap": "debootstrap",
    "systemd-nspawn": "systemd-container",
    "apt-cacher-ng": "apt-cacher-ng",
    "nft": "nftables",
    "ip": "iproute2",
    "nsenter": "util-linux",
    "ping": "iputils-ping",
}

STATE_FILE = LAB_DIR / "state.json"
SALT_CONF_DIR = LAB_DIR / "etc" / "salt"
PING_CONF_DIR = LAB_DIR / "etc" / "salt-ping"
PILLAR_DIR = LAB_DIR / "pillar"
SRV_DIR = LAB_DIR / "srv"
LOG_DIR = LAB_DIR / "log"
HOSTS_DIR = LAB_DIR / "hosts"
ARCHIVE = SRV_DIR / "moodle_ha_source" / "moodle.tgz"


# --------------------------------------------------------------------------- helpers


def log(msg: str) -> None:
    print(msg, flush=True)


class Step:
    """Prints a step and how long it took."""

    def __init__(self, title: str):
        self.title = title

    def __enter__(self):
        self.t0 = time.monotonic()
        log(f"==> {self.title}")
        return self

    def __exit__(self, exc_type, exc, tb):
        took = time.monotonic() - self.t0
        status = "done" if exc_type is None else "FAILED"
        log(f"    {status} in {took:.1f} s")
        return False


def run(cmd: list[str], check: bool = True, quiet: bool = False, **kw):
    if not quiet:
        log("    $ " + " ".join(str(c) for c in cmd))
    return subprocess.run([str(c) for c in cmd], check=check, **kw)


def capture(cmd: list[str], check: bool = False, timeout: float | None = None):
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


def wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.2)
    return not pid_alive(pid)


def kill_tracked(
    pid: int | None,
    expect: str,
    sig: int = signal.SIGTERM,
    timeout: float = 10,
    group: bool = False,
) -> None:
    """Stop a process the lab started, only if its command line still matches `expect`."""
    if not pid or not pid_alive(pid) or expect not in pid_cmdline(pid):
        return
    try:
        os.killpg(pid, sig) if group else os.kill(pid, sig)
    except ProcessLookupError:
        return
    if not wait_dead(pid, timeout):
        try:
            os.killpg(pid, signal.SIGKILL) if group else os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        wait_dead(pid, 5)


def load_state(lab_dir: Path = LAB_DIR) -> dict:
    path = lab_dir / STATE_FILE.name
    if path.exists():
        return json.loads(path.read_text())
    return {}


def save_state(state: dict) -> None:
    LAB_DIR.mkdir(parents=True, exist_ok=True)
    tmp = STATE_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    tmp.replace(STATE_FILE)


def yaml_load(text: str):
    sys.path.insert(0, str(REPO))
    import yaml  # from the venv (salt depends on PyYAML)

    return yaml.safe_load(text)


def yaml_dump(data) -> str:
    import yaml

    return yaml.safe_dump(data, default_flow_style=False, sort_keys=True)


# --------------------------------------------------------------------------- topology


def topology() -> dict:
    """moodle_ha:topology from pillar.example: the single source of names, IPs and roles."""
    data = yaml_load((REPO / "pillar.example").read_text())
    topo = data["moodle_ha"]["topology"]
    net = ipaddress.ip_network(topo["subnet"])
    gateway = str(next(net.hosts()))
    return {
        "subnet": str(net),
        "prefix": net.prefixlen,
        "gateway": gateway,
        "vip": topo["vip"],
        "hosts": {
            name: {"ip": h["ip"], "roles": list(h["roles"])} for name, h in topo["hosts"].items()
        },
    }


def veth_name(host: str) -> str:
    return ("vb-" + host)[:15]


# --------------------------------------------------------------------------- host deps


def ensure_host_deps() -> None:
    missing = sorted({pkg for binary, pkg in HOST_PACKAGES.items() if not shutil.which(binary)})
    if not missing:
        return
    with Step(f"install host packages: {' '.join(missing)}"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["apt-get", "update", "-q"], env=env)
        run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=env)
    # The packaged apt-cacher-ng service, started by its postinst, would hold port 3142 on all
    # addresses; the lab runs its own instance bound to the bridge only.
    if "apt-cacher-ng" in missing:
        if Path("/run/systemd/system").exists():
            capture(["systemctl", "disable", "--now", "apt-cacher-ng"])
        elif Path("/etc/init.d/apt-cacher-ng").exists():
            capture(["/etc/init.d/apt-cacher-ng", "stop"])
            capture(["update-rc.d", "apt-cacher-ng", "disable"])


# --------------------------------------------------------------------------- base image


def base_image() -> Path:
    """Cached base rootfs for the current recipe; built when missing."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    key = image.recipe_hash()
    dest = CACHE_DIR / f"base-{key}"
    if (dest / "rootfs" / "opt/salt/bin/salt-minion").exists():
        log(f"==> base image: cached {dest}")
        return dest / "rootfs"
    with Step(f"build base image {dest} (debootstrap + salt wheelhouse)"):
        if dest.exists():
            shutil.rmtree(dest)
        image.build(dest, python=sys.executable)
    mounts = Path("/proc/mounts").read_text().splitlines()
    for old in CACHE_DIR.glob("base-*"):
        if old != dest and not any(str(old) in m for m in mounts):
            log(f"    removing old image {old}")
            shutil.rmtree(old, ignore_errors=True)
    return dest / "rootfs"


# --------------------------------------------------------------------------- network


def bridge_exists() -> bool:
    return capture(["ip", "link", "show", "dev", BRIDGE]).returncode == 0


def bridge_up(topo: dict) -> None:
    if not bridge_exists():
        run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    run(["ip", "addr", "replace", f"{topo['gateway']}/{topo['prefix']}", "dev", BRIDGE])
    run(["ip", "link", "set", BRIDGE, "up"])


def bridge_down() -> None:
    if bridge_exists():
        run(["ip", "link", "del", BRIDGE])


# --------------------------------------------------------------------------- apt-cacher-ng


def start_daemon(cmd: list[str], log_name: str, state: dict, key: str, port: tuple) -> None:
    """Start a lab daemon in its own session, record its PID under key, wait for its port."""
    out = open(LOG_DIR / log_name, "ab")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                            start_new_session=True)
    state[key] = proc.pid
    save_state(state)
    host, number, timeout, what = port
    wait_port(host, number, timeout, what, proc)


def acng_start(topo: dict, state: dict) -> None:
    conf = LAB_DIR / "acng" / "etc"
    cache = LAB_DIR / "acng" / "cache"
    logs = LAB_DIR / "acng" / "log"
    for d in (conf, cache, logs):
        d.mkdir(parents=True, exist_ok=True)
    mirrors = image.host_mirrors()
    (conf / "backends_debian").write_text(mirrors["debian"] + "/\n")
    sec_host = mirrors["security"].split("://", 1)[1]
    (conf / "acng.conf").write_text(
        f"CacheDir: {cache}\n"
        f"LogDir: {logs}\n"
        "SupportDir: /usr/lib/apt-cacher-ng\n"
        f"BindAddress: {topo['gateway']}\n"
        f"Port: {ACNG_PORT}\n"
        f"PidFile: {LAB_DIR / 'acng' / 'acng.pid'}\n"
        f"SocketPath: {LAB_DIR / 'acng' / 'socket'}\n"
        "Remap-debrep: file:deb_mirror*.gz /debian ; file:backends_debian\n"
        "Remap-secdeb: security.debian.org security.debian.org/debian-security "
        f"deb.debian.org/debian-security /debian-security ; {sec_host}\n"
        "ExThreshold: 4\n"
        "VerboseLog: 1\n"
    )
    start_daemon(["apt-cacher-ng", "-c", str(conf), "ForeGround=1"], "apt-cacher-ng.log",
                 state, "acng_pid", (topo["gateway"], ACNG_PORT, 20, "apt-cacher-ng"))


def wait_port(host: str, port: int, timeout: float, what: str, proc: subprocess.Popen) -> None:
    """Wait until proc listens on host:port (and is still alive: not someone else's port)."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}; see {LOG_DIR}")
        try:
            with socket.create_connection((host, port), timeout=1):
                time.sleep(0.5)
                if proc.poll() is not None:
                    raise SystemExit(f"{what} exited with {proc.returncode}; see {LOG_DIR}")
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{what} does not listen on {host}:{port} after {timeout} s")


# --------------------------------------------------------------------------- salt-master


# What the master serves from the repository: the formula, nothing else. Linked, not copied,
# so edits show at once; the repo itself is no file root (walking it would walk the hosts'
# disks under .lab on every file-list request).
FORMULA_PATHS = ("moodle_ha", "_modules", "_states", "top.sls")
FORMULA_ROOT = LAB_DIR / "formula"


def formula_root() -> None:
    FORMULA_ROOT.mkdir(parents=True, exist_ok=True)
    for name in FORMULA_PATHS:
        link = FORMULA_ROOT / name
        if not link.is_symlink():
            link.symlink_to(REPO / name)


def master_config(topo: dict) -> None:
    SALT_CONF_DIR.mkdir(parents=True, exist_ok=True)
    formula_root()
    conf = {
        "id": "lab-master",
        "interface": topo["gateway"],
        "root_dir": str(LAB_DIR / "salt"),
        "user": "root",
        "auto_accept": True,
        "file_roots": {"base": [str(FORMULA_ROOT), str(SRV_DIR)]},
        "pillar_roots": {"base": [str(PILLAR_DIR)]},
        "log_level_logfile": "info",
        "timeout": 30,
        "gather_job_timeout": 15,
        "worker_threads": 4,
        "state_output": "changes",
        "hash_type": "sha256",
        "file_ignore_glob": ["*.pyc"],
        "file_ignore_regex": [r"(^|/)__pycache__(/|$)"],
        "fileserver_list_cache_time": 1,
    }
    (SALT_CONF_DIR / "master").write_text(yaml_dump(conf))
    # Same master, client side only: pings give up on an absent minion after 2 s instead of
    # waiting gather_job_timeout (salt's CLI has no flag for it).
    PING_CONF_DIR.mkdir(parents=True, exist_ok=True)
    (PING_CONF_DIR / "master").write_text(yaml_dump(dict(conf, gather_job_timeout=2)))


def random_secret(length: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def pillar_files(topo: dict) -> None:
    PILLAR_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "pillar.example", PILLAR_DIR / "moodle_ha.sls")
    example = yaml_load((REPO / "pillar.example").read_text())
    generated = {}
    for key in example["moodle_ha"].get("secrets", {}):
        generated[key] = random_secret(8 if key == "keepalived_auth_pass" else 24)
    generated["moodle_admin_password"] = "Lab-" + random_secret(16) + "-1"
    path = PILLAR_DIR / "lab_secrets.sls"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(yaml_dump({"moodle_ha": {"secrets": generated}}))
    os.chmod(path, 0o600)
    lab = {"moodle_ha": {"apt": {"proxy": f"http://{topo['gateway']}:{ACNG_PORT}"}}}
    if ARCHIVE.exists():
        sha = hashlib.sha256(ARCHIVE.read_bytes()).hexdigest()
        lab["moodle_ha"]["moodle"] = {"source": {"sha256": sha}}
    (PILLAR_DIR / "lab.sls").write_text(yaml_dump(lab))
    (PILLAR_DIR / "top.sls").write_text(
        yaml_dump({"base": {"*": ["moodle_ha", "lab_secrets", "lab"]}})
    )


def moodle_archive(path: str | None) -> None:
    ARCHIVE.parent.mkdir(parents=True, exist_ok=True)
    builder = REPO / "test" / "fixture_app" / "build.py"
    if path:
        with Step(f"moodle archive from {path}"):
            shutil.copyfile(path, ARCHIVE)
    elif builder.exists():
        with Step("fixture moodle archive (test/fixture_app/build.py)"):
            run([sys.executable, builder, "--out", ARCHIVE])
    else:
        log("==> no moodle archive: test/fixture_app/build.py absent and no --moodle-archive")


def master_start(topo: dict, state: dict) -> None:
    start_daemon([str(venv_bin("salt-master")), "-c", str(SALT_CONF_DIR), "-l", "warning"],
                 "salt-master.out", state, "master_pid", (topo["gateway"], 4506, 60, "salt-master"))


# --------------------------------------------------------------------------- hosts


def host_upper(host: str) -> Path:
    return HOSTS_DIR / host / "upper"


def prepare_upper(host: str, info: dict, topo: dict) -> None:
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
            }
        )
    )
    # nspawn copies the host's resolv.conf otherwise; the hosts only talk to the lab network.
    (etc / "resolv.conf").write_text("# lab: no DNS (apt goes through the proxy)\n")
    (etc / "hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {host}\n")


def cgroup_dirs(host: str | None = None) -> list[Path]:
    base = [root / CGROUP_NAME for root in CGROUP_ROOTS]
    return [b / host for b in base] if host else base


def boot_host(host: str, rootfs: Path, state: dict) -> None:
    hdir = HOSTS_DIR / host
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
    out = open(hdir / "nspawn.log", "ab")
    proc = subprocess.Popen(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=out,
        start_new_session=True,
    )
    state.setdefault("hosts", {})[host] = {"pid": proc.pid}
    save_state(state)


def leader_pid(host: str, state: dict) -> int | None:
    pid = state.get("hosts", {}).get(host, {}).get("pid")
    if not pid_alive(pid) or "systemd-nspawn" not in pid_cmdline(pid):
        return None
    kids = [k for k in children(pid) if pid_alive(k)]
    return kids[0] if kids else None


def wait_leader(host: str, state: dict, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = state["hosts"][host]["pid"]
        if not pid_alive(pid):
            logfile = HOSTS_DIR / host / "nspawn.log"
            raise SystemExit(f"{host}: systemd-nspawn exited, see {logfile}")
        leader = leader_pid(host, state)
        if leader and Path(f"/proc/{leader}/exe").exists():
            try:
                if os.readlink(f"/proc/{leader}/exe").endswith("systemd"):
                    return leader
            except OSError:
                pass
        time.sleep(0.2)
    raise SystemExit(f"{host}: no container init after {timeout} s")


def stop_host(host: str, state: dict, graceful: bool = True, timeout: float = 30) -> None:
    pid = state.get("hosts", {}).get(host, {}).get("pid")
    if not pid_alive(pid) or "systemd-nspawn" not in pid_cmdline(pid):
        return
    leader = leader_pid(host, state)
    if graceful and leader:
        os.kill(leader, signal.SIGRTMIN + 4)  # systemd: poweroff
        if wait_dead(pid, timeout):
            return
    if leader and pid_alive(leader):
        os.kill(leader, signal.SIGKILL)
    if not wait_dead(pid, 10):
        os.kill(pid, signal.SIGKILL)
        wait_dead(pid, 5)


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


def remove_cgroups() -> None:
    for base in cgroup_dirs():
        if not base.exists():
            continue
        for pid in cgroup_pids(base):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.3)
        dirs = sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for d in [*dirs, base]:
            for _ in range(20):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.2)


# --------------------------------------------------------------------------- salt wrappers


def salt_cmd(tool: str, args: list[str]) -> list[str]:
    return [str(venv_bin(tool)), "-c", str(SALT_CONF_DIR), *args]


def ping(targets: list[str], timeout: int = 3) -> dict:
    """{minion: True} for the targets that answer test.ping within about timeout + 2 s."""
    if not targets:
        return {}
    cmd = [
        str(venv_bin("salt")),
        "-c",
        str(PING_CONF_DIR),
        "-L",
        ",".join(targets),
        "test.ping",
        "--out=json",
        "--static",
        f"-t{timeout}",
    ]
    try:
        res = capture(cmd, timeout=timeout + 60)
    except subprocess.TimeoutExpired:
        return {}
    try:
        return json.loads(res.stdout or "{}")
    except json.JSONDecodeError:
        return {}


def wait_minions(topo: dict, timeout: float = MINION_TIMEOUT) -> None:
    want = set(topo["hosts"])
    deadline = time.monotonic() + timeout
    got: dict = {}
    while time.monotonic() < deadline:
        got = ping(sorted(want))
        if all(got.get(h) is True for h in want):
            return
        time.sleep(2)
    missing = sorted(h for h in want if got.get(h) is not True)
    raise SystemExit(f"minions not answering after {timeout} s: {', '.join(missing)}")


# --------------------------------------------------------------------------- verbs


def cmd_up(args) -> int:
    if os.geteuid() != 0:
        raise SystemExit("lab.py must run as root")
    t_all = time.monotonic()
    topo = topology()
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
    rootfs = base_image()
    for d in (LAB_DIR, LOG_DIR, HOSTS_DIR, SRV_DIR, PILLAR_DIR):
        d.mkdir(parents=True, exist_ok=True)
    state: dict = {"bridge": BRIDGE, "rootfs": str(rootfs), "hosts": {}}
    save_state(state)
    with Step(f"bridge {BRIDGE} {topo['gateway']}/{topo['prefix']}"):
        bridge_up(topo)
    with Step(f"apt-cacher-ng on {topo['gateway']}:{ACNG_PORT}"):
        acng_start(topo, state)
    moodle_archive(args.moodle_archive)
    with Step("salt-master config + lab pillar"):
        master_config(topo)
        pillar_files(topo)
    with Step(f"salt-master on {topo['gateway']}"):
        master_start(topo, state)
    with Step(f"boot {len(topo['hosts'])} hosts"):
        for host, info in topo["hosts"].items():
            prepare_upper(host, info, topo)
            boot_host(host, rootfs, state)
        for host in topo["hosts"]:
            state["hosts"][host]["leader"] = wait_leader(host, state)
        save_state(state)
    with Step("wait for all minions to answer test.ping"):
        wait_minions(topo)
    state["up_seconds"] = round(time.monotonic() - t_all, 1)
    state["complete"] = True
    save_state(state)
    log(f"lab up in {time.monotonic() - t_all:.1f} s; state in {LAB_DIR}")
    for host, info in topo["hosts"].items():
        log(f"    {host:10} {info['ip']:15} roles={','.join(info['roles'])}")
    log(
        f"    VIP {topo['vip']} (keepalived on the lb hosts, after deploy): "
        f"http://{topo['vip']}/  DB writer {topo['vip']}:3307 readers {topo['vip']}:3308"
    )
    return 0


def lab_running(state: dict) -> bool:
    if pid_alive(state.get("master_pid")) and "salt-master" in pid_cmdline(state["master_pid"]):
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


def stop_lab_processes(lab_dir: Path) -> None:
    """Power off the hosts, stop salt-master and apt-cacher-ng recorded in lab_dir's state."""
    state = load_state(lab_dir)
    hosts = list(state.get("hosts", {}))
    for host in hosts:
        leader = leader_pid(host, state)
        if leader:
            try:
                os.kill(leader, signal.SIGRTMIN + 4)  # poweroff, all hosts at once
            except ProcessLookupError:
                pass
    for host in hosts:
        pid = state["hosts"][host].get("pid")
        if pid and not wait_dead(pid, 20):
            stop_host(host, state, graceful=False)
    kill_tracked(state.get("master_pid"), "salt-master", group=True)
    kill_tracked(state.get("acng_pid"), "apt-cacher-ng")


def teardown(extra_dirs: set[Path] | None = None) -> None:
    dirs = [LAB_DIR, *sorted(extra_dirs or ())]
    for lab_dir in dirs:
        stop_lab_processes(lab_dir)
    remove_cgroups()
    bridge_down()
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for lab_dir in dirs:
        for mnt in sorted((m for m in mounts if m.startswith(str(lab_dir))), reverse=True):
            run(["umount", "-l", mnt], check=False)
        if lab_dir.exists():
            shutil.rmtree(lab_dir)


def cmd_down(args) -> int:
    others = running_lab_dirs() - {LAB_DIR}
    if others and not args.force:
        raise SystemExit(
            f"the running lab belongs to {', '.join(map(str, sorted(others)))}, not {LAB_DIR}; "
            "run `down` there (MOODLE_HA_LAB_DIR), or `down --force`"
        )
    with Step("lab down"):
        teardown(others)
    return 0


def cmd_status(args) -> int:
    state = load_state()
    topo = topology()
    if not state:
        log(f"lab is down (no {STATE_FILE})")
        return 1
    running = [h for h in topo["hosts"] if leader_pid(h, state)]
    pings = ping(running) if pid_alive(state.get("master_pid")) else {}
    log(f"lab dir {LAB_DIR}  bridge {BRIDGE}: {'up' if bridge_exists() else 'MISSING'}")
    log(
        f"salt-master pid {state.get('master_pid')} "
        f"{'running' if pid_alive(state.get('master_pid')) else 'DEAD'}; "
        f"apt-cacher-ng pid {state.get('acng_pid')} "
        f"{'running' if pid_alive(state.get('acng_pid')) else 'DEAD'}"
    )
    ok = True
    for host, info in topo["hosts"].items():
        h = state.get("hosts", {}).get(host, {})
        leader = leader_pid(host, state)
        link = capture(["ip", "-o", "link", "show", "dev", veth_name(host)]).stdout
        linkstate = "cut" if link and "state DOWN" in link else ("up" if link else "-")
        answer = pings.get(host) is True
        ok = ok and answer
        log(
            f"  {host:10} {info['ip']:15} nspawn={h.get('pid') if leader else '-':<8} "
            f"leader={leader or '-':<8} link={linkstate:<4} ping={'yes' if answer else 'no'}"
        )
    log(f"  VIP {topo['vip']}")
    return 0 if ok else 2


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
        if cg.exists():
            for pid in cgroup_pids(cg):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    if not host_upper(args.host).exists():
        prepare_upper(args.host, topo["hosts"][args.host], topo)
    boot_host(args.host, Path(state["rootfs"]), state)
    state["hosts"][args.host]["leader"] = wait_leader(args.host, state)
    save_state(state)
    if not args.no_wait:
        wait_minions({"hosts": {args.host: {}}})
    log(f"{args.host}: booted in {time.monotonic() - t0:.1f} s")
    return 0


def cmd_link(args, up: bool) -> int:
    state = load_state()
    need_host(args.host, state)
    run(["ip", "link", "set", veth_name(args.host), "up" if up else "down"])
    return 0


def _progress(stop, t0: float) -> None:
    """Print each state job of the orchestration as its minions return (master event bus)."""
    import salt.config
    import salt.utils.event

    opts = salt.config.client_config(str(SALT_CONF_DIR / "master"))
    started: dict[str, float] = {}
    with salt.utils.event.get_master_event(opts, opts["sock_dir"], listen=True) as bus:
        while not stop.is_set():
            ev = bus.get_event(wait=1, full=True)
            if not ev:
                continue
            tag, data = ev["tag"], ev["data"]
            if not tag.startswith("salt/job/") or data.get("fun") not in ("state.sls",):
                continue
            jid = data.get("jid")
            if tag.endswith("/new"):
                started[jid] = time.monotonic()
                sls = (data.get("arg") or ["?"])[0]
                minions = ", ".join(data.get("minions", []))
                log(f"[{time.monotonic() - t0:6.0f} s] {sls} -> {minions}")
            elif "/ret/" in tag:
                ret = data.get("return")
                states = ret.values() if isinstance(ret, dict) else []
                changed = sum(1 for r in states if isinstance(r, dict) and r.get("changes"))
                failed = sum(1 for r in states if isinstance(r, dict) and r.get("result") is False)
                took = time.monotonic() - started.get(jid, time.monotonic())
                verdict = "ok" if data.get("success") and not failed else f"FAILED ({failed})"
                log(f"[{time.monotonic() - t0:6.0f} s]   {data.get('id')}: {verdict},"
                    f" {changed} changed, {took:.0f} s")


def cmd_deploy(args) -> int:
    import threading

    t0 = time.monotonic()
    rc = subprocess.run(salt_cmd("salt-run", ["saltutil.sync_all"])).returncode
    if rc == 0:
        rc = subprocess.run(salt_cmd("salt", ["*", "saltutil.sync_all", "--out=quiet"])).returncode
    if rc == 0:
        stop = threading.Event()
        watcher = threading.Thread(target=_progress, args=(stop, t0), daemon=True)
        watcher.start()
        try:
            rc = subprocess.run(
                salt_cmd("salt-run", ["state.orchestrate", "moodle_ha.orch", *args.extra])
            ).returncode
        finally:
            stop.set()
            watcher.join(timeout=5)
    log(f"deploy {'ok' if rc == 0 else 'FAILED'} in {time.monotonic() - t0:.1f} s")
    return rc


def passthrough(tool: str):
    def _run(args) -> int:
        return subprocess.run(salt_cmd(tool, args.args)).returncode

    return _run


def cmd_salt_call(args) -> int:
    args.cmd = ["/opt/salt/bin/salt-call", *args.args]
    return cmd_exec(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    p = sub.add_parser("up", help="build/reuse the base image, start bridge, proxy, master, hosts")
    p.add_argument("--moodle-archive", help="use this Moodle .tgz instead of the fixture app")
    p.add_argument("--replace", action="store_true", help="tear down a running lab first")
    p.set_defaults(func=cmd_up)
    p = sub.add_parser("down", help="stop everything and remove the lab dir")
    p.add_argument("--force", action="store_true", help="also a lab started from another dir")
    p.set_defaults(func=cmd_down)
    sub.add_parser("status", help="hosts, pids, links, minion ping").set_defaults(func=cmd_status)
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


if __name__ == "__main__":
    sys.exit(main())

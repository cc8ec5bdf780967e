"""What the lab suite (test/integration) and the benchmarks (test/bench) share: lab.py calls,
salt's JSON, orchestrate runs, waiting, HTTP, and the lab's topology and pillar.

Paths come from mhalab.paths, so MOODLE_HA_LAB_DIR (and every other lab override) means the
same here as in lab.py; lab.py runs as a child with the same environment.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from . import paths, results
from .hosts import leader_pid
from .procs import cgroup_dirs, cgroup_pids, pid_alive

LAB_PY = Path(__file__).resolve().parents[1] / "lab.py"


class LabError(AssertionError):
    """A lab.py verb or a salt call did not do what it should."""


# --------------------------------------------------------------------------- lab.py and salt


def lab_run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run a lab.py verb; capture its output."""
    return subprocess.run([sys.executable, str(LAB_PY), *args], capture_output=True, text=True,
                          timeout=timeout, check=False, stdin=subprocess.DEVNULL)


def lab_ok(*args: str, timeout: float = 900) -> str:
    """Run a lab.py verb that must succeed; its stdout."""
    proc = lab_run(*args, timeout=timeout)
    if proc.returncode != 0:
        raise LabError(f"lab.py {' '.join(args)} failed ({proc.returncode}):\n"
                       f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return proc.stdout


def host_exec(host: str, cmd, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run cmd (a list, or a shell string) inside a lab host."""
    argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
    return lab_run("exec", host, *argv, timeout=timeout)


def salt_json(target: str, fun: str, *args: str, timeout: int = 300) -> dict:
    """The parsed `--out=json` of `salt TARGET FUN ARGS` on the lab master."""
    proc = lab_run("salt", target, fun, *args, "--out=json", "--static", f"-t{timeout}",
                   timeout=timeout + 120)
    try:
        return json.loads(proc.stdout or "{}")
    except ValueError:
        raise LabError(f"salt {target} {fun} gave no JSON:\n{proc.stdout}{proc.stderr}") from None


def salt_value(target: str, fun: str, *args: str, timeout: int = 300):
    """What FUN returned on the one minion TARGET (which must answer)."""
    out = salt_json(target, fun, *args, timeout=timeout)
    if target not in out:
        raise LabError(f"{target} did not answer {fun}: {out}")
    return out[target]


@dataclass
class Run:
    """One `state.orchestrate moodle_ha.orch`: its wall time and its JSON."""

    seconds: float
    output: dict = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        return results.failed(self.output)

    @property
    def changed(self) -> list[str]:
        return results.changed(self.output)


def orchestrate(timeout: float = 3600, sls: str = "moodle_ha.orch",
                pillar: dict | None = None) -> Run:
    """One `salt-run state.orchestrate SLS` (the deploy by default), with an optional pillar."""
    sync = lab_run("salt-run", "saltutil.sync_all", timeout=300)
    if sync.returncode != 0:
        raise LabError(f"saltutil.sync_all failed:\n{sync.stdout}{sync.stderr}")
    start = time.monotonic()
    extra = [f"pillar={json.dumps(pillar)}"] if pillar else []
    proc = lab_run("salt-run", "state.orchestrate", sls, *extra, "--out=json",
                   timeout=timeout)
    seconds = time.monotonic() - start
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        raise LabError(f"orchestrate gave no JSON ({proc.returncode}):\n"
                       f"{proc.stdout[-5000:]}\n{proc.stderr[-5000:]}") from None
    return Run(seconds, out)


# --------------------------------------------------------------------------- waiting


class Waited:
    """What until() saw: `seconds` until the predicate held (None: it never did) and the
    predicate's last value. True when it held; unpacks as (seconds, value)."""

    def __init__(self, seconds: float | None, value=None):
        self.seconds, self.value = seconds, value

    def __bool__(self) -> bool:
        return self.seconds is not None

    def __iter__(self):
        return iter((self.seconds, self.value))

    def __repr__(self) -> str:
        return f"Waited(seconds={self.seconds}, value={self.value!r})"


def until(predicate, timeout: float, interval: float = 0.2) -> Waited:
    """Call predicate every `interval` s until it returns something true, at most `timeout` s."""
    start = time.monotonic()
    value = None
    while True:
        value = predicate()
        if value:
            return Waited(time.monotonic() - start, value)
        if time.monotonic() - start >= timeout:
            return Waited(None, value)
        time.sleep(interval)


# --------------------------------------------------------------------------- the lab itself


def topology() -> dict:
    """The running lab's topology (its own copy of the pillar file once up)."""
    return paths.topology()


def pillar() -> dict:
    """The lab's moodle_ha pillar as the master merges it (topology, ports, secrets)."""
    return paths.lab_pillar()


def secrets() -> dict:
    return pillar().get("secrets", {})


def state() -> dict:
    return paths.load_state()


def is_up() -> bool:
    """The lab finished `up` and its master or a host still runs."""
    st = state()
    if not st.get("complete"):
        return False
    return pid_alive(st.get("master_pid")) or any(leader_pid(h, st) for h in st.get("hosts", {}))


def db_connect(port: int = 3307, host: str | None = None, timeout: float = 3,
               database: str | None = "moodle"):
    """A pymysql connection as the Moodle user (autocommit) to `host`:`port`, by default
    the VIP's writer endpoint."""
    import pymysql
    return pymysql.connect(host=host or topology()["vip"], port=port, user="moodle",
                           password=secrets()["moodle_db_password"].encode(), database=database,
                           connect_timeout=timeout, read_timeout=timeout,
                           write_timeout=timeout, autocommit=True)


def db_query(statement: str, args=None, **kwargs) -> list[tuple]:
    """The rows of one statement through db_connect(**kwargs)."""
    conn = db_connect(**kwargs)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, args)
            return list(cur.fetchall())
    finally:
        conn.close()


def free_ip(topo: dict, after_role: str = "web") -> str:
    """The first free address of the subnet after the highest of the hosts with `after_role`
    (the lab's layout: app nodes .11 up, load balancers .21 up, arbitrators .31 up)."""
    import ipaddress
    net = ipaddress.ip_network(topo["subnet"])
    used = {ipaddress.ip_address(h["ip"]) for h in topo["hosts"].values()}
    used.add(ipaddress.ip_address(topo["vip"]))
    base = [ipaddress.ip_address(h["ip"]) for h in topo["hosts"].values()
            if after_role in h["roles"]] or [net.network_address + 30]
    for ip in net.hosts():
        if ip > max(base) and ip not in used:
            return str(ip)
    raise LabError("no free address in the lab subnet")


def _servers(stat: list, proxy: str) -> dict:
    """{server: status} of `proxy` in rows of moodle_ha_status.parse_show_stat."""
    return {row["svname"]: row["status"] for row in stat
            if row.get("pxname") == proxy and row["svname"] not in ("FRONTEND", "BACKEND")}


def backend_status(lb: str, proxy: str) -> dict:
    """{server: status} of one HAProxy backend on load balancer `lb` (its stats socket, as
    the status runner reads it)."""
    facts = salt_value(lb, "moodle_ha_status.facts", timeout=60)
    return _servers(((facts.get("layers") or {}).get("lb") or {}).get("stat") or [], proxy)


# Prints HAProxy's `show stat` from the stats socket inside a load balancer.
_SHOW_STAT = """
import socket
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect("/run/haproxy/admin.sock")
s.sendall(b"show stat\\n")
while chunk := s.recv(65536):
    print(chunk.decode(), end="")
"""


@functools.cache
def _status_module():
    """The formula's moodle_ha_status module (its parse_show_stat), loaded by path."""
    spec = importlib.util.spec_from_file_location(
        "moodle_ha_status_for_testkit", paths.REPO / "_modules" / "moodle_ha_status.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def haproxy_stat(lb: str) -> list[dict]:
    """Every row of HAProxy's `show stat` on load balancer `lb`, each a dict of all its CSV
    columns (counters such as chkdown included); [] when the socket does not answer."""
    proc = host_exec(lb, ["python3", "-c", _SHOW_STAT], timeout=15)
    lines = proc.stdout.splitlines() if proc.returncode == 0 else []
    if not lines or not lines[0].startswith("# "):
        return []
    head = lines[0][2:].split(",")
    return [dict(zip(head, line.split(","), strict=False)) for line in lines[1:] if line]


def haproxy_servers(lb: str, proxy: str) -> dict:
    """{server: status} of one HAProxy proxy on load balancer `lb`, as backend_status, but read
    from its stats socket inside the host (no salt call: a fraction of a second, for polling
    during a failover). {} when the socket does not answer."""
    proc = host_exec(lb, ["python3", "-c", _SHOW_STAT], timeout=15)
    if proc.returncode != 0:
        return {}
    return _servers(_status_module().parse_show_stat(proc.stdout), proxy)


def add_and_orchestrate(hosts: list[str], pillar_file, lbs: list[str], web_host: str):
    """Boot `hosts` into the running lab with `pillar_file` (lab.py add), run moodle_ha.orch
    once, then wait up to 60 s until `web_host` is UP in every LB's web farm. Returns
    (boot seconds, the Run, the Waited for UP)."""
    started = time.monotonic()
    lab_ok("add", *hosts, "--pillar", str(pillar_file), timeout=300)
    booted = time.monotonic() - started
    run = orchestrate()
    up = until(lambda: all(backend_status(lb, "web-farm").get(web_host) == "UP" for lb in lbs),
               timeout=60, interval=1)
    return booted, run, up


def set_pillar(data: dict) -> None:
    """Replace the lab's moodle_ha pillar (its copy of the topology's pillar file; the
    secrets and the lab's own keys stay) with `data`, as lab.py add does for new hosts."""
    import yaml
    paths.PILLAR_COPY.write_text(yaml.safe_dump(data, sort_keys=False))


def fixture_release(version: str) -> Path:
    """The fixture app at `version` (test/fixture_app/build.py), built into the lab's file
    server; its path there."""
    out = paths.ARCHIVE.parent / f"moodle-{version}.tgz"
    subprocess.run([sys.executable, str(paths.REPO / "test" / "fixture_app" / "build.py"),
                    "--out", str(out), "--version", version],
                   capture_output=True, text=True, timeout=120, check=True)
    return out


def use_moodle_archive(archive: Path) -> None:
    """Point the lab's pillar (its lab.sls) at `archive`, a file in the lab's file server,
    with its sha256: the next orchestrate deploys it."""
    import hashlib

    import yaml
    lab_pillar = paths.PILLAR_DIR / "lab.sls"
    data = yaml.safe_load(lab_pillar.read_text())
    data["moodle_ha"].setdefault("moodle", {})["source"] = {
        "url": f"salt://{archive.relative_to(paths.SRV_DIR)}",
        "sha256": hashlib.sha256(archive.read_bytes()).hexdigest()}
    lab_pillar.write_text(yaml.safe_dump(data, sort_keys=False))


def moodle_archive() -> Path:
    """The archive the lab's pillar deploys now, in the lab's file server."""
    import yaml
    data = yaml.safe_load((paths.PILLAR_DIR / "lab.sls").read_text())
    url = (data["moodle_ha"].get("moodle", {}).get("source") or {}).get("url", "")
    return paths.SRV_DIR / url.removeprefix("salt://") if url.startswith("salt://") \
        else paths.ARCHIVE


def _clock() -> str:
    """Wall-clock time to the millisecond (UTC, as the hosts' journals), so a failure in a
    load loop can be matched against the hosts' logs."""
    now = time.time()
    return time.strftime("%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}"


class Load:
    """Steady load while something changes: GET / through the VIP every 0.1 s and, with
    `table`, one row every 0.05 s through VIP:3307 (a table with an AUTO_INCREMENT id and a
    `note`), each in a thread. Every non-200 answer (time, status, start of the body) and every
    failed write is kept; `acked` holds the ids of the rows whose INSERT returned (an error
    never counts as success)."""

    def __init__(self, vip: str, table: str | None = None):
        self.vip, self.table = vip, table
        self.stop = threading.Event()
        self.requests, self.failures = 0, []
        self.acked, self.write_errors = [], []
        self.threads = [threading.Thread(target=self._fetch, daemon=True)]
        if table:
            self.threads.append(threading.Thread(target=self._write, daemon=True))

    def _fetch(self):
        while not self.stop.is_set():
            body = ""
            try:
                status, body = http_get(site_url("/"), host_header=self.vip, timeout=5)
            except OSError as exc:
                status = repr(exc)[:100]
            self.requests += 1
            if status != 200:
                # The start of the body tells HAProxy's own answer from a node's.
                self.failures.append((_clock(), status, " ".join(body.split())[:120]))
            time.sleep(0.1)

    def _write(self):
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = db_connect()
                with conn.cursor() as cur:
                    cur.execute(f"INSERT INTO {self.table} (note) VALUES ('load')")
                    self.acked.append(cur.lastrowid)
            except Exception as exc:  # noqa: BLE001 - any failure is counted
                self.write_errors.append((_clock(), repr(exc)[:160]))
                conn = None
            time.sleep(0.05)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(10)

    def summary(self) -> str:
        out = f"{self.requests} requests, {len(self.failures)} failed"
        if self.failures:
            out += f" ({self.failures[0][0]}-{self.failures[-1][0]} UTC)"
        if self.table:
            out += f"; {len(self.acked)} rows written, {len(self.write_errors)} failed writes"
            if self.write_errors:
                out += f" ({self.write_errors[0][0]}-{self.write_errors[-1][0]} UTC)"
        return out


class Poller:
    """GET `path` through the VIP every 0.05 s in a thread while something changes (an
    upgrade): every answer is kept as (monotonic time, status, *read(status, body)); status 0
    is no answer within `timeout`."""

    def __init__(self, path: str = "/", read=None, timeout: float = 5):
        self.url, self.vip = site_url(path), topology()["vip"]
        self.read, self.timeout = read or (lambda status, body: ()), timeout
        self.answers: list[tuple] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self.stop.is_set():
            try:
                status, body = http_get(self.url, host_header=self.vip, timeout=self.timeout)
            except OSError:
                status, body = 0, ""
            self.answers.append((time.monotonic(), status, *self.read(status, body)))
            time.sleep(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)


def container_pids(host: str) -> list[int]:
    """Processes still in the host's cgroups (its nspawn and everything inside)."""
    pids: set[int] = set()
    for cg in cgroup_dirs(host):
        pids.update(p for p in cgroup_pids(cg) if pid_alive(p))
    return sorted(pids)


def tls_context(check_hostname: bool = True):
    """Verifies the lab's certificates against the lab's CA (and the host name or IP, unless
    check_hostname is false: the stats page on an lb host's own IP shows the VIP's
    certificate)."""
    import ssl

    context = ssl.create_default_context(cafile=str(paths.TLS_CA))
    context.check_hostname = check_hostname
    return context


@functools.lru_cache(maxsize=64)
def site_url(path: str = "/") -> str:
    """The site's URL through the VIP: https:// with lb:tls:enabled (the default). Read once
    per path (load loops call it for every request)."""
    lb = pillar().get("lb", {})
    vip = topology()["vip"]
    if lb.get("tls", {}).get("enabled", True):
        port = int(lb.get("tls", {}).get("https_port", 443))
        return f"https://{vip}{'' if port == 443 else f':{port}'}{path}"
    port = int(lb.get("haproxy", {}).get("web_port", 80))
    return f"http://{vip}{'' if port == 80 else f':{port}'}{path}"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Returns a redirect as the answer instead of following it."""

    def redirect_request(self, *args, **kwargs):
        return None


def http_get(url: str, host_header: str | None = None, timeout: float = 5,
             follow: bool = True, check_hostname: bool = True):
    """(status, body) of a GET; HTTP errors are answers too. https:// URLs are verified
    against the lab's CA; follow=False returns a redirect as it is."""
    req = urllib.request.Request(url)
    if host_header:
        req.add_header("Host", host_header)
    handlers = []
    if url.startswith("https:") or follow:
        handlers.append(urllib.request.HTTPSHandler(context=tls_context(check_hostname)))
    if not follow:
        handlers.append(NoRedirect())
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


_HTTP_FROM = r"""
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])) as resp:
        status, body = resp.status, resp.read()
except urllib.error.HTTPError as exc:
    status, body = exc.code, exc.read()
except OSError as exc:
    status, body = 0, str(exc).encode()
sys.stdout.write(str(status) + "\n" + body.decode("utf-8", "replace"))
"""


def http_get_from(host: str, url: str, timeout: float = 5):
    """(status, body) of a GET sent from inside lab host HOST (status 0: no answer), for
    ports the firewall opens to cluster members only (clustercheck from a load balancer)."""
    proc = host_exec(host, ["python3", "-c", _HTTP_FROM, url, str(timeout)],
                     timeout=timeout + 60)
    status, _, body = proc.stdout.partition("\n")
    return int(status or 0), body


def tcp_probe(ip: str, port: int, timeout: float = 2.0) -> str:
    """A TCP connection from the lab host to IP:PORT: "open", "refused" (nothing listens, a
    reset came back) or "filtered" (no answer at all: a firewall dropped the SYN)."""
    import socket

    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return "open"
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "filtered"


def tcp_open(ip: str, port: int, timeout: float = 2.0) -> bool:
    """Whether a TCP connection from the lab host to IP:PORT is accepted."""
    return tcp_probe(ip, port, timeout) == "open"

"""The salt side: the salt CLI with the lab config, minion pings, and `deploy` (orchestrate
with a progress view on the terminal and the full output in log files)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

from . import results
from .paths import LOG_DIR, PING_CONF_DIR, SALT_CONF_DIR
from .procs import capture, log, logfile, tail, venv_bin

MINION_TIMEOUT = 240
REQUISITE = "One or more requisite failed"


def salt_cmd(tool: str, args: list[str], conf_dir: Path = SALT_CONF_DIR) -> list[str]:
    return [str(venv_bin(tool)), "-c", str(conf_dir), *args]


def ping(targets: list[str], timeout: int = 3) -> dict:
    """{minion: True} for the targets that answer test.ping within about timeout + 2 s."""
    if not targets:
        return {}
    cmd = salt_cmd("salt", ["-L", ",".join(targets), "test.ping", "--out=json", "--static",
                            f"-t{timeout}"], PING_CONF_DIR)
    try:
        res = capture(cmd, timeout=timeout + 60)
    except subprocess.TimeoutExpired:
        return {}
    try:
        return json.loads(res.stdout or "{}")
    except json.JSONDecodeError:
        return {}


def wait_minions(hosts, timeout: float = MINION_TIMEOUT) -> None:
    want = set(hosts)
    deadline = time.monotonic() + timeout
    got: dict = {}
    while time.monotonic() < deadline:
        got = ping(sorted(want))
        if all(got.get(h) is True for h in want):
            return
        time.sleep(1)
    missing = sorted(h for h in want if got.get(h) is not True)
    raise SystemExit(f"minions not answering after {timeout} s: {', '.join(missing)}")


# --------------------------------------------------------------------------- deploy


def _progress(stop: threading.Event, t0: float) -> None:
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
            if not tag.startswith("salt/job/") or data.get("fun") != "state.sls":
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
                ok = data.get("success") and not failed and isinstance(ret, dict)
                verdict = "ok" if ok else f"FAILED ({failed})"
                log(f"[{time.monotonic() - t0:6.0f} s]   {data.get('id')}: {verdict},"
                    f" {changed} changed, {took:.0f} s")


def _sync(name: str) -> None:
    """saltutil.sync_all on the master (runner side: it renders the orchestration); the
    orchestration's first step syncs the minions."""
    with open(logfile(name), "a") as out:
        proc = subprocess.run(salt_cmd("salt-run", ["saltutil.sync_all", "--out=json"]),
                              stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise SystemExit(f"salt-run saltutil.sync_all failed ({proc.returncode}):\n"
                         f"{tail(LOG_DIR / name)}\nfull output: {LOG_DIR / name}")


def summarise(orch: dict, limit: int = 12) -> list[str]:
    """Lines naming the failed states: the causes first, states that only failed because a
    requisite did after them, counted."""
    fails = results.failures(orch)
    causes = [f for f in fails if not f[3].startswith(REQUISITE)]
    lines = []
    for _step, host, state, comment in causes[:limit]:
        short = results.shorten(comment).replace("\n", "\n        ")
        lines.append(f"  {host}: {state}\n        {short}")
    if len(causes) > limit:
        lines.append(f"  ... and {len(causes) - limit} more failed states")
    skipped = len(fails) - len(causes)
    if skipped:
        lines.append(f"  ({skipped} more states not run: a requisite failed)")
    return lines


def deploy(extra: list[str]) -> int:
    """sync_all, then state.orchestrate moodle_ha.orch: one line per step and host on the
    terminal; the runner's JSON and messages in log files, failures summarised from them."""
    t0 = time.monotonic()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_path = logfile(f"deploy-{stamp}.json")
    err_path = logfile(f"deploy-{stamp}.log")
    log(f"==> deploy: moodle_ha.orch (full output: {out_path}, messages: {err_path.name})")
    _sync(err_path.name)
    stop = threading.Event()
    watcher = threading.Thread(target=_progress, args=(stop, t0), daemon=True)
    watcher.start()
    try:
        with open(out_path, "w") as out, open(err_path, "a") as err:
            rc = subprocess.run(
                salt_cmd("salt-run", ["state.orchestrate", "moodle_ha.orch", "--out=json",
                                      *extra]),
                stdout=out, stderr=err, stdin=subprocess.DEVNULL,
            ).returncode
    finally:
        stop.set()
        watcher.join(timeout=5)
    took = time.monotonic() - t0
    try:
        orch = json.loads(out_path.read_text() or "{}")
    except json.JSONDecodeError:
        orch = None
    if orch is None or not isinstance(orch, dict):
        log(f"deploy FAILED in {took:.1f} s: the runner gave no JSON ({rc})\n{tail(err_path)}"
            f"\nfull output: {out_path}, {err_path}")
        return rc or 1
    lines = summarise(orch)
    if rc == 0 and not lines:
        log(f"deploy ok in {took:.1f} s: {len(results.changed(orch))} states changed")
        return 0
    log(f"deploy FAILED in {took:.1f} s ({rc}); failed states:")
    for line in lines or ["  (none reported: see the messages)"]:
        log(line)
    log(f"full output: {out_path}\nmessages: {err_path}\n"
        "minion logs: test/lab/lab.py exec HOST cat /var/log/salt/minion")
    return rc or 1

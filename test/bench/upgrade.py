#!/usr/bin/env python3
"""
The upgrade window of a deployed moodle_ha lab: prints figures, asserts nothing.

    .venv/bin/python test/bench/upgrade.py [--json FILE]

Builds the next release of what the lab serves — the fixture app one version up, or, for a
real Moodle archive, the same archive with `$version` in its version.php raised by 0.01 —
points the lab's pillar at it and runs `moodle_ha.orch` while one client asks for a page
through the VIP every 0.05 s (the front page of the fixture, /login/index.php of a real
Moodle). Prints the seconds between the first and the last answer that was not 200, how
many windows there were, the upgrade state's duration and the duration of the orchestration
steps around the window. The lab stays on the new release (Moodle refuses a downgrade).
"""

from __future__ import annotations

import argparse
import decimal
import io
import json
import re
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lab"))

from mhalab import paths, results, testkit  # noqa: E402

VERSION = re.compile(rb"^(\$version\s*=\s*)(\d+\.\d+)(;)", re.M)
STEPS = ("moodle-upgrade-window-opened", "moodle-upgrade-switched",
         "moodle-upgrade-window-closed")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def bumped_archive(src: Path, out: Path) -> str:
    """`src` rewritten into `out` with `$version` of its Moodle version.php raised by 0.01
    (public/version.php from Moodle 5.1, version.php before); the new version."""
    new_version = None
    with tarfile.open(src, "r:gz") as tin, tarfile.open(out, "w:gz", compresslevel=1) as tout:
        for member in tin:
            data = tin.extractfile(member).read() if member.isfile() else None
            parts = member.name.split("/")
            if data is not None and new_version is None and parts[1:] in (
                    ["public", "version.php"], ["version.php"]):
                match = VERSION.search(data)
                if match:
                    new_version = str(decimal.Decimal(match.group(2).decode())
                                      + decimal.Decimal("0.01"))
                    data = (data[:match.start(2)] + new_version.encode()
                            + data[match.end(2):])
                    member.size = len(data)
            tout.addfile(member, io.BytesIO(data) if data is not None else None)
    if new_version is None:
        raise SystemExit(f"no $version in a version.php of {src}")
    return new_version


def next_release() -> tuple[str, str, str]:
    """(kind, version, page) of the next release, built into the lab's file server and set in
    the lab pillar."""
    status, body = testkit.http_get(testkit.site_url("/"), host_header=testkit.topology()["vip"],
                                    timeout=60)
    fixture = status == 200 and body.lstrip().startswith("{") and "code_version" in body
    if fixture:
        version = str(decimal.Decimal(json.loads(body)["version"]) + decimal.Decimal("0.01"))
        out = testkit.fixture_release(version)
        kind, page = "fixture app", "/"
    else:
        src = testkit.moodle_archive()
        out = paths.ARCHIVE.parent / f"moodle-upgrade-{int(time.time())}.tgz"
        log(f"repacking {src.name} with a higher $version")
        version = bumped_archive(src, out)
        kind, page = "Moodle archive", "/login/index.php"
    testkit.use_moodle_archive(out)
    return kind, version, page


def windows(answers: list[tuple]) -> list[tuple[float, float, list[int]]]:
    """Runs of consecutive answers (time, status, ...) that were not 200: (first, last, their
    statuses) each (0: no answer within the client's timeout)."""
    out: list[tuple[float, float, list[int]]] = []
    inside = False
    for when, status, *_ in answers:
        if status == 200:
            inside = False
        elif inside:
            out[-1] = (out[-1][0], when, out[-1][2] + [status])
        else:
            out.append((when, when, [status]))
            inside = True
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    if not testkit.is_up():
        print("no lab is up (make demo)", file=sys.stderr)
        return 1
    kind, version, page = next_release()
    log(f"upgrading to {version} ({kind}); polling {page} through the VIP")
    with testkit.Poller(page) as poll:
        time.sleep(2)
        started = time.monotonic()
        run = testkit.orchestrate()
        time.sleep(8)
    steps = results.orch_states(run.output)
    durations = {sid: steps.get(f"salt_|-moodle_ha-orch-{sid}_|-moodle_ha-orch-{sid}_|-state",
                                {}).get("duration") for sid in STEPS}
    upgrade = next((r["duration"] for _, _, key, r in results.minion_states(run.output)
                    if "_|-moodle_ha-moodle-switch-upgraded_|-" in key), None)
    down = windows(poll.answers)
    # Moodle's own maintenance answers (503) apart from requests that outlasted the client's
    # timeout (0), which cold caches right after the purge can cause.
    maint = [when for when, status, *_ in poll.answers if status == 503]
    figures = {
        "release": kind, "version": version, "orchestrate_s": round(run.seconds, 1),
        "failed_states": len(run.failed), "answers": len(poll.answers),
        "windows": len(down), "window_s": round(sum(last - first for first, last, _ in down), 1),
        "answers_not_200": sum(len(statuses) for _, _, statuses in down),
        "first_to_last_503_s": round(maint[-1] - maint[0], 1) if maint else 0.0,
        "window_list": [{"at_s": round(first - started, 1), "s": round(last - first, 1),
                         "statuses": {str(c): statuses.count(c) for c in sorted(set(statuses))}}
                        for first, last, statuses in down],
        "upgrade_state_s": None if upgrade is None else round(upgrade / 1000, 1),
        "steps_s": {sid: None if ms is None else round(ms / 1000, 1)
                    for sid, ms in durations.items()},
    }
    print(f"{'upgrade to ' + version + ' (' + kind + ')':<44} orchestrate {run.seconds:.0f} s,"
          f" {len(run.failed)} failed states")
    print(f"{'answers other than 200':<44} {figures['window_s']} s in {len(down)} window(s),"
          f" {figures['answers_not_200']} of {len(poll.answers)} answers")
    print(f"{'  first to last 503 (maintenance)':<44} {figures['first_to_last_503_s']} s")
    for window in figures["window_list"]:
        print(f"{'  window at ' + str(window['at_s']) + ' s of the run':<44} {window['s']} s,"
              f" answers {window['statuses']}")
    print(f"{'upgrade state (upgrade.php and purge)':<44} {figures['upgrade_state_s']} s")
    for sid, secs in figures["steps_s"].items():
        print(f"{'  step ' + sid:<44} {secs} s")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(main())

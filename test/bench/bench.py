#!/usr/bin/env python3
"""
Benchmarks of a moodle_ha lab: prints figures, asserts nothing (tests stay functional).

    .venv/bin/python test/bench/bench.py            # no-op re-run + failovers on the lab as it is
    .venv/bin/python test/bench/bench.py --cold     # lab down+up first: cold converge

Figures: orchestrate wall time and number of changed states (cold and no-op), the failover
probes of test/bench/failover.py, then the upgrade window of test/bench/upgrade.py (the lab
stays on the next release it builds; --no-upgrade skips it).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lab"))  # run as a script: the lab's package, mhalab

from mhalab.testkit import lab_run, orchestrate  # noqa: E402


def figure(name: str, value: str) -> None:
    print(f"{name:<40} {value}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold", action="store_true", help="rebuild the lab, measure cold run")
    parser.add_argument("--no-failover", action="store_true", help="skip the failover probes")
    parser.add_argument("--no-upgrade", action="store_true", help="skip the upgrade window")
    args = parser.parse_args()

    if args.cold:
        lab_run("down")
        start = time.monotonic()
        up = lab_run("up")
        if up.returncode != 0:
            print(up.stdout, up.stderr)
            return 1
        figure("lab up (hosts answering)", f"{time.monotonic() - start:.1f} s")
        run = orchestrate()
        figure("cold orchestrate", f"{run.seconds:.1f} s, {len(run.changed)} changed states,"
               f" {len(run.failed)} failures")
        if run.failed:
            print("\n".join(run.failed[:20]))
            return 1
    run = orchestrate()
    figure("no-op orchestrate", f"{run.seconds:.1f} s, {len(run.changed)} changed states")
    for line in run.changed[:20]:
        print("   changed:", line)

    rc = 0
    probes = [] if args.no_failover else ["failover.py"]
    probes += [] if args.no_upgrade else ["upgrade.py"]
    for probe in probes:
        rc |= subprocess.run([sys.executable, str(HERE / probe)], check=False).returncode
    return rc


if __name__ == "__main__":
    sys.exit(main())

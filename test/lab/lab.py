#!/usr/bin/env python3
"""The moodle_ha lab: five systemd-nspawn Debian hosts, a salt-master and an apt proxy.

Run as root with the project's venv python (it provides salt-master):

    .venv/bin/python test/lab/lab.py up [--release bookworm|trixie] [--pillar FILE]
    .venv/bin/python test/lab/lab.py deploy|info|status|exec HOST|down|salt ...|...

The code is the package beside this file (mhalab/): paths and state (paths.py), processes and
cgroups (procs.py), the bridge (network.py), apt proxy and salt-master (daemons.py), the hosts
(hosts.py), salt and deploy (saltctl.py), the image recipe (image.py), the verbs (cli.py).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mhalab.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(doc=__doc__))

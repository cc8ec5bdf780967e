"""Shared pytest configuration for the moodle_ha test tree."""

import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent


# Test helpers (render/renderlib.py, saltmodules.py, ...) import as top-level modules of test/;
# the lab's package (test/lab/mhalab: lab tool, testkit for the lab suite) as `mhalab`.
sys.path.insert(0, str(REPO / "test"))
sys.path.insert(0, str(REPO / "test" / "lab"))

"""Shared pytest configuration for the moodle_ha test tree."""

import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
# Custom execution modules are importable as plain Python for unit tests.
sys.path.insert(0, str(REPO / "_modules"))
sys.path.insert(0, str(REPO / "_states"))


# Test helpers (render/renderlib.py, lab/...) import as top-level packages of test/.
sys.path.insert(0, str(REPO / "test"))

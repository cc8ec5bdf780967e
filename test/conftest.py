"""Shared pytest configuration for the moodle_ha test tree."""

import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent


# Test helpers (render/renderlib.py, lab/...) import as top-level packages of test/.
sys.path.insert(0, str(REPO / "test"))

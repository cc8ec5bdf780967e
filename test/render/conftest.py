"""Render fixtures (see renderlib.Renderer)."""

import os

import pytest

from render.renderlib import Renderer


@pytest.fixture(scope="session")
def renderer(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    # Under pytest-xdist each worker's base is a directory of this session's: its parent is
    # shared by the workers of this session only.
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return Renderer(tmp_path_factory.mktemp("render"), cache_dir=shared / "render-cache")

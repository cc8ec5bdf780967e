"""Render fixtures (see renderlib.Renderer)."""

import pytest

from render.renderlib import Renderer


@pytest.fixture(scope="session")
def renderer(tmp_path_factory):
    return Renderer(tmp_path_factory.mktemp("render"))

"""Load the formula's custom modules/states as plain Python modules for unit tests.

_modules/x.py and _states/x.py share names, so they are loaded by path under distinct names
rather than imported from sys.path.
"""

import importlib.util

from render.renderlib import REPO


def load(path, name):
    """Load REPO/path as a fresh module called name (the tests set __salt__/__opts__ on it)."""
    spec = importlib.util.spec_from_file_location(name, REPO / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

"""The merged moodle_ha map built in-process the way moodle_ha/map.jinja builds it, for unit
tests that call the validation (``_modules/moodle_ha.py`` post_map) without rendering."""

import copy

import yaml

from render.renderlib import REPO, merge

# A patch value that removes its key.
DELETE = object()


def known_tree(release="Debian-13"):
    """defaults.yaml, os_family/Debian.yaml and osfinger/<release>.yaml merged (map.jinja's
    `known` tree, whose keys are the known keys)."""
    tree = {}
    for name in ("defaults", "os_family/Debian", f"osfinger/{release}"):
        path = REPO / "moodle_ha" / "parameters" / f"{name}.yaml"
        merge(tree, yaml.safe_load(path.read_text())["values"])
    return tree


def patched(tree, patch):
    """A copy of `tree` with `patch` ({"a:b": value or DELETE}) applied."""
    tree = copy.deepcopy(tree)
    for path, value in (patch or {}).items():
        keys = path.split(":")
        node = tree
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        if value is DELETE:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = copy.deepcopy(value)
    return tree


def post_map(validation, known, pillar, minion_id, roles=None):
    """`validation.post_map` of the moodle_ha `pillar` (the tree under moodle_ha:) with the
    arguments map.jinja passes; the roles grain defaults to the minion's pillar roles (as
    renderlib.Renderer.call sets it)."""
    if roles is None:
        roles = pillar["topology"]["hosts"].get(minion_id, {}).get("roles", [])
    config = {k: v for k, v in pillar.items() if k != "lookup"}
    data = merge(merge(copy.deepcopy(known), pillar.get("lookup") or {}), config)
    return validation.post_map(data, minion_id, roles, copy.deepcopy(known))

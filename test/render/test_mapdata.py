"""The merged map per platform equals its golden file (test/render/golden/mapdata/).

The golden files are what `moodle_ha._mapdata` writes for moodle1 of pillar.example (secrets
masked). A deliberate change to parameters or map.jinja shows here as a diff; regenerate with
MOODLE_HA_REGOLD=1 and review the diff in the commit.
"""

import os

import pytest
import yaml

from render.renderlib import PLATFORMS, REPO

GOLDEN = REPO / "test" / "render" / "golden" / "mapdata"


def _mapdata(renderer, platform, **kwargs):
    out = renderer.show_sls("moodle_ha._mapdata", minion_id="moodle1", platform=platform,
                            **kwargs)
    state = out["moodle_ha-mapdata-file-managed"]["file"]
    contents = next(arg["contents"] for arg in state if isinstance(arg, dict)
                    and "contents" in arg)
    return yaml.safe_load(contents)


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_mapdata_matches_golden_file(renderer, platform):
    got = _mapdata(renderer, platform)
    path = GOLDEN / f"{platform}.yaml"
    if os.environ.get("MOODLE_HA_REGOLD"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(got, sort_keys=True, default_flow_style=False))
    assert path.exists(), f"no golden file {path}: run with MOODLE_HA_REGOLD=1"
    assert got == yaml.safe_load(path.read_text())


def test_mapdata_masks_every_secret(renderer):
    got = _mapdata(renderer, "Debian-13")
    assert got["values"]["secrets"]
    assert set(got["values"]["secrets"].values()) == {"<masked>"}


@pytest.mark.parametrize("platform,php", [("Debian-13", "8.4"), ("Debian-12", "8.2")])
def test_release_parameters_reach_the_map(renderer, platform, php):
    values = _mapdata(renderer, platform)["values"]
    assert values["web"]["php_version"] == php
    assert f"php{php}-mysql" in values["pkgs"]["web"]
    assert values["web"]["php_bin"] == f"/usr/bin/php{php}"
    assert all(f"/etc/php/{php}/" in d for d in values["web"]["php_conf_dirs"])
    assert not any("{php_version}" in str(v) for v in values["pkgs"]["web"])


def test_lookup_overrides_the_release(renderer):
    values = _mapdata(renderer, "Debian-13",
                      patch={"moodle_ha:lookup:web:php_version": "8.3"})["values"]
    assert values["web"]["php_bin"] == "/usr/bin/php8.3"


@pytest.mark.parametrize("grains,name", [
    ({"osfinger": "Debian-11", "osmajorrelease": 11}, "Debian-11"),
    ({"os": "Ubuntu", "osfinger": "Ubuntu-24.04"}, "Ubuntu-24.04"),
    ({"os": "Rocky", "os_family": "RedHat", "osfinger": "Rocky Linux-9"}, "Rocky Linux-9"),
])
def test_unsupported_release_fails_the_render_naming_it(renderer, grains, name):
    text = renderer.render_error("moodle_ha.hosts", minion_id="moodle1", grains=grains)
    assert f"moodle_ha: {name} is not supported (Debian-13, Debian-12)" in text

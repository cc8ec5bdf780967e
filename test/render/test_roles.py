"""Every role's highstate and every SLS render from pillar.example; rendered YAML lints clean."""

import pathlib
import subprocess
import sys

import pytest
import yaml

from render.renderlib import PLATFORMS, REPO, example_pillar

TOPOLOGY = example_pillar()["moodle_ha"]["topology"]["hosts"]
# The layers (top-level SLS) each role applies, as top.sls promises.
ROLE_LAYERS = {
    "galera": {"moodle_ha.galera"},
    "gluster": {"moodle_ha.gluster"},
    "web": {"moodle_ha.web", "moodle_ha.moodle"},
    "lb": {"moodle_ha.lb"},
    # No host of pillar.example has it (test_garbd_layer.py renders arbitrator topologies).
    "garbd": {"moodle_ha.garbd"},
}
# SLS that are not host states (run by the master's orchestrate runner).
RUNNER_SLS = {"moodle_ha.orch"}


def _all_sls():
    out = []
    for path in sorted((REPO / "moodle_ha").rglob("*.sls")):
        rel = path.relative_to(REPO).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "init":
            parts.pop()
        name = ".".join(parts)
        if name not in RUNNER_SLS:
            out.append(name)
    return out


def _host_for(sls):
    """A host of pillar.example whose roles make this SLS meaningful."""
    layer = sls.split(".")[1] if "." in sls else ""
    for role, layers in ROLE_LAYERS.items():
        if any(sls == lay or sls.startswith(lay + ".") for lay in layers) or layer == role:
            for name, spec in sorted(TOPOLOGY.items()):
                if role in spec["roles"]:
                    return name
    return "moodle1"


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
@pytest.mark.parametrize("host", sorted(TOPOLOGY))
def test_highstate_renders_for_every_host(renderer, host, platform):
    code, out = renderer.call("state.show_highstate", minion_id=host, platform=platform)
    assert code == 0 and isinstance(out, dict), f"highstate of {host} failed: {out}"
    sls_seen = {state["__sls__"] for sid, state in out.items() if not sid.startswith("__")}
    expected = {"moodle_ha.hosts", "moodle_ha.metrics"}  # every host, whatever its roles
    for role in TOPOLOGY[host]["roles"]:
        expected |= ROLE_LAYERS.get(role, set())
    for layer in expected:
        assert any(s == layer or s.startswith(layer + ".") for s in sls_seen), (
            f"{host} misses layer {layer}; got {sorted(sls_seen)}"
        )
    for layer in set().union(*ROLE_LAYERS.values()) - expected:
        assert not any(s == layer or s.startswith(layer + ".") for s in sls_seen), (
            f"{host} applies {layer} although it lacks the role"
        )


def _sls_path(sls):
    path = "salt://" + sls.replace(".", "/")
    return path + (".sls" if (REPO / (sls.replace(".", "/") + ".sls")).exists() else "/init.sls")


@pytest.fixture(scope="session")
def rendered_sls(renderer):
    """{(host, platform): {sls: rendertest.render_each entry}}, one salt-call per host and
    platform for every SLS that host renders, made when a test first asks for it."""
    batches = {}

    def get(sls, platform):
        host = _host_for(sls)
        if (host, platform) not in batches:
            names = [name for name in _all_sls() if _host_for(name) == host]
            code, out = renderer.call("rendertest.render_each", ",".join(names),
                                      ",".join(_sls_path(name) for name in names),
                                      minion_id=host, platform=platform)
            assert code == 0 and isinstance(out, dict), f"rendering as {host} failed: {out}"
            batches[(host, platform)] = out
        return batches[(host, platform)][sls]

    return get


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
@pytest.mark.parametrize("sls", _all_sls())
def test_sls_renders_and_rendered_yaml_lints(rendered_sls, sls, platform, tmp_path):
    entry = rendered_sls(sls, platform)
    assert isinstance(entry["show"], dict), f"render of {sls} failed: {entry['show']}"
    text = entry["text"]
    assert entry["error"] is None and isinstance(text, str), entry["error"]
    yaml.safe_load(text)  # valid YAML after Jinja
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(text)
    lint = subprocess.run(
        [str(pathlib.Path(sys.executable).parent / "yamllint"), "-c",
         str(REPO / ".yamllint"), str(rendered)],
        capture_output=True, text=True, check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr

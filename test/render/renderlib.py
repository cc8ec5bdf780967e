"""
Render fixtures: masterless ``salt-call --local`` against the repo's file roots with a pillar
built from pillar.example (optionally patched), for any minion id and roles grain.
"""

import copy
import hashlib
import json
import os
import pathlib
import subprocess
import sys

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
SALT_CALL = pathlib.Path(sys.executable).parent / "salt-call"


def example_pillar():
    with open(REPO / "pillar.example", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def lab_topology_pillar(name):
    """test/lab/topologies/<name>.yaml as the lab deploys it: with the certificates and keys
    the lab makes (galera:tls; the site's come from pillar.example), here made by certlib."""
    from certlib import galera_tls_pillar
    with open(REPO / "test" / "lab" / "topologies" / f"{name}.yaml", encoding="utf-8") as fh:
        return merge(yaml.safe_load(fh), galera_tls_pillar())


def merge(base, over):
    """Recursive dict merge into `base`, as map.jinja's slsutil.merge (lists and scalars
    replaced); returns `base`."""
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def _deep_set(data, path, value):
    keys = path.split(":")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    if value is _DELETE:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = value


_DELETE = object()

# Grains of each supported release (what salt reports on a real host of it); render tests
# run as the default platform unless they ask for another.
PLATFORMS = {
    "Debian-13": {"os": "Debian", "os_family": "Debian", "osfinger": "Debian-13",
                  "osrelease": "13", "osmajorrelease": 13, "oscodename": "trixie"},
    "Debian-12": {"os": "Debian", "os_family": "Debian", "osfinger": "Debian-12",
                  "osrelease": "12", "osmajorrelease": 12, "oscodename": "bookworm"},
}
DEFAULT_PLATFORM = "Debian-13"
# What a master serves of this repository.
FORMULA_PATHS = ("moodle_ha", "_modules", "_states", "_runners", "_output", "top.sls")


# Functions whose answer depends on nothing but their arguments, the pillar, the grains and
# the formula's files: their answers are kept for the rest of the test session.
PURE = ("state.show_sls", "state.show_highstate", "state.show_lowstate", "slsutil.renderer",
        "rendertest.render_each")
# Test-only execution modules of the render tests (rendertest: many SLS in one salt-call).
TEST_MODULES = pathlib.Path(__file__).resolve().parent / "_modules"


class Renderer:
    """Render SLS files of the formula as a given minion.

    Answers of the functions in PURE are cached by their whole input in `cache_dir` (one
    session's; shared by pytest-xdist's workers), so a render several tests read runs once."""

    DELETE = _DELETE

    def __init__(self, root, cache_dir=None):
        self.root = pathlib.Path(root)
        self.cache_dir = pathlib.Path(cache_dir) if cache_dir else self.root / "cache"
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def _config(self, minion_id, roles, pillar, grains, platform):
        self.count += 1
        conf = self.root / f"case{self.count}"
        pillar_dir = conf / "pillar"
        pillar_dir.mkdir(parents=True)
        (pillar_dir / "top.sls").write_text("base:\n  '*':\n    - case\n")
        (pillar_dir / "case.sls").write_text(yaml.safe_dump(pillar))
        # A stand-in Moodle archive where pillar.example's salt:// source points.
        srv = conf / "srv" / "moodle_ha_source"
        srv.mkdir(parents=True)
        (srv / "moodle.tgz").write_bytes(b"render-test stand-in archive")
        # The formula alone as file root (linked): the repo itself would make salt's file list
        # walk everything under it, a running lab's host disks in .lab included (minutes).
        formula = conf / "formula"
        formula.mkdir()
        for name in FORMULA_PATHS:
            if (REPO / name).exists():
                (formula / name).symlink_to(REPO / name)
        all_grains = {"roles": roles, **PLATFORMS[platform]}
        all_grains.update(grains or {})
        minion = {
            "file_client": "local",
            "file_roots": {"base": [str(formula), str(conf / "srv")]},
            "pillar_roots": {"base": [str(pillar_dir)]},
            "module_dirs": [str(REPO / "_modules"), str(TEST_MODULES)],
            "states_dirs": [str(REPO / "_states")],
            "root_dir": str(conf / "root"),
            "id": minion_id,
            "grains": all_grains,
            "log_level_logfile": "quiet",
            "pki_dir": str(conf / "pki"),
            "cachedir": str(conf / "cache"),
            # As the lab's minions (README: "Salt setting for run time").
            "lazy_loader_strict_matching": True,
        }
        (conf / "minion").write_text(yaml.safe_dump(minion))
        return conf

    def call(self, fun, *args, minion_id="moodle1", roles=None, pillar=None, patch=None,
             grains=None, platform=DEFAULT_PLATFORM):
        """Run a salt-call function as a minion of `platform`; return (retcode, 'local')."""
        if pillar is None:
            pillar = example_pillar()
        pillar = copy.deepcopy(pillar)
        for path, value in (patch or {}).items():
            _deep_set(pillar, path, value)
        if roles is None:
            roles = pillar["moodle_ha"]["topology"]["hosts"].get(minion_id, {}).get("roles", [])
        cached = None
        if fun in PURE:
            key = json.dumps([fun, args, minion_id, roles, pillar, grains, platform],
                             sort_keys=True, default=str)
            cached = self.cache_dir / (hashlib.sha256(key.encode()).hexdigest() + ".json")
            if cached.exists():
                answer = json.loads(cached.read_text())
                return answer["code"], answer["out"]
        conf = self._config(minion_id, roles, pillar, grains, platform)
        cmd = [str(SALT_CALL), "--local", "-c", str(conf), "--out=json", "--retcode-passthrough",
               fun, *args]
        env = dict(os.environ)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        try:
            out = json.loads(proc.stdout)["local"]
        except (ValueError, KeyError):
            out = proc.stdout + proc.stderr
        if cached is not None:
            partial = cached.with_suffix(f".{os.getpid()}")
            partial.write_text(json.dumps({"code": proc.returncode, "out": out}))
            partial.replace(cached)
        return proc.returncode, out

    def show_sls(self, sls, **kwargs):
        """Render one SLS; return the dict of state IDs or fail with the render error."""
        code, out = self.call("state.show_sls", sls, **kwargs)
        assert code == 0 and isinstance(out, dict), f"render of {sls} failed: {out}"
        return out

    def template(self, layer, name, tmp_path, minion_id="moodle1", context=None, **kwargs):
        """moodle_ha/<layer>/files/<name> rendered as file.managed renders it (cp.get_template
        with tpldir and `context`); its text."""
        tmp_path.mkdir(parents=True, exist_ok=True)
        dest = tmp_path / f"{minion_id}-{name}"
        args = [f"{k}={v}" for k, v in {"tpldir": f"moodle_ha/{layer}", **(context or {})}.items()]
        code, out = self.call("cp.get_template", f"salt://moodle_ha/{layer}/files/{name}",
                              str(dest), *args, minion_id=minion_id, **kwargs)
        assert code == 0 and dest.exists(), f"{name} did not render: {out}"
        return dest.read_text()

    def render_error(self, sls, **kwargs):
        """Render one SLS expecting failure; return the error text."""
        code, out = self.call("state.show_sls", sls, **kwargs)
        assert code != 0 or not isinstance(out, dict), f"{sls} rendered although invalid"
        return out if isinstance(out, str) else json.dumps(out)


def state_args(state):
    """The arguments of a rendered state (state.show_sls) as one dict, requisites included."""
    fun_args = next(value for key, value in state.items() if not key.startswith("__"))
    return {k: v for item in fun_args if isinstance(item, dict) for k, v in item.items()}


def config_section(text, header):
    """Lines of one section of an haproxy-style config (from its header to the next
    unindented line), stripped, without blank lines and comments."""
    lines = text.splitlines()
    start = lines.index(header)
    body = []
    for line in lines[start + 1:]:
        if line and not line[0].isspace():
            break
        if line.strip() and not line.strip().startswith("#"):
            body.append(line.strip())
    return body


def assert_yaml_lints(text, tmp_path):
    """The rendered SLS text parses as YAML and passes the repository's yamllint config."""
    assert yaml.safe_load(text)
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(text)
    lint = subprocess.run(
        [str(pathlib.Path(sys.executable).parent / "yamllint"), "-c", str(REPO / ".yamllint"),
         str(rendered)], capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr

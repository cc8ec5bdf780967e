"""Shell scripts the formula renders onto hosts pass shellcheck once rendered."""

import pathlib
import subprocess
import sys

import pytest

SHELLCHECK = pathlib.Path(sys.executable).parent / "shellcheck"
SCRIPTS = [
    ("moodle_ha/galera/files/clustercheck.jinja", "moodle1", {"tpldir": "moodle_ha/galera"}),
    ("moodle_ha/lb/files/moodle_ha-keepalived-config-test.jinja", "lb1",
     {"tpldir": "moodle_ha/lb", "binary": "/usr/sbin/keepalived"}),
]


@pytest.mark.parametrize("template,host,context", SCRIPTS)
def test_rendered_shell_script_passes_shellcheck(renderer, tmp_path, template, host, context):
    dest = tmp_path / pathlib.Path(template).stem
    args = [f"{key}={value}" for key, value in context.items()]
    code, out = renderer.call("cp.get_template", f"salt://{template}", str(dest), *args,
                              minion_id=host)
    assert code == 0 and dest.exists(), f"{template} did not render: {out}"
    proc = subprocess.run([str(SHELLCHECK), str(dest)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr

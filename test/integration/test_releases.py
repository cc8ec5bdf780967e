"""
Lab: old Moodle releases are pruned on the web nodes (moodle.releases_pruned in
moodle_ha.moodle.code): with two older marked releases beside the current one, applying the
state keeps the current one and the newest other (moodle:releases_keep 2), removes the
oldest, leaves a directory without the release marker alone, and a second run changes
nothing.
"""

import json

import pytest

from mhalab import testkit
from mhalab.testkit import host_exec

pytestmark = pytest.mark.lab

STATE_ID = "moodle_ha-moodle-code-releases-pruned"


def _apply(host):
    proc = testkit.lab_run("salt", host, "state.sls_id", STATE_ID, "moodle_ha.moodle",
                           "--out=json", "--static", "-t300", timeout=600)
    result = json.loads(proc.stdout)[host]
    assert isinstance(result, dict), result
    (ret,) = [v for k, v in result.items() if f"_|-{STATE_ID}_|-" in k]
    return ret


def test_old_releases_are_pruned_and_the_current_one_stays(deployed):
    pillar = testkit.pillar().get("moodle", {})
    releases = pillar.get("releases_dir", "/var/www/moodle-releases")
    dirroot = pillar.get("dirroot", "/var/www/moodle")
    host = sorted(n for n, h in testkit.topology()["hosts"].items() if "web" in h["roles"])[-1]
    made = host_exec(host, (
        f"set -e; cd {releases}; for r in lab-old-1 lab-old-2; do mkdir -p $r/moodle;"
        " echo $r > $r/.moodle_ha-release; done;"
        " touch -d '2 days ago' lab-old-1/.moodle_ha-release;"
        " touch -d '1 day ago' lab-old-2/.moodle_ha-release; mkdir -p lab-unmarked"))
    assert made.returncode == 0, made.stderr
    try:
        current = host_exec(host, ["readlink", "-f", dirroot]).stdout.strip()
        ret = _apply(host)
        assert ret["result"] is True, ret
        assert "lab-old-1" in ret["changes"]["removed"], ret
        left = host_exec(host, ["ls", releases]).stdout.split()
        assert "lab-old-1" not in left and "lab-unmarked" in left, left
        assert current.startswith(f"{releases}/") and current.split("/")[4] in left, left
        assert testkit.http_get(testkit.site_url("/"))[0] == 200
        again = _apply(host)
        assert again["result"] is True and again["changes"] == {}, again
        print(f"\n{host}: {ret['comment']}; then {again['comment']}")
    finally:
        host_exec(host, f"cd {releases} && rm -rf lab-old-1 lab-old-2 lab-unmarked")

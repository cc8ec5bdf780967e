"""
Lab, fixture app: a Moodle upgrade through `moodle_ha.orch` while clients keep asking. A
fixture archive with a higher `$version` is built and put into the lab pillar; one
orchestrate run stages it on every web node while the old release serves, opens the upgrade
window (CLI maintenance in the shared dataroot), switches every node in one job with
upgrade.php once on the primary node, and closes the window. A client polling the site
through the VIP records every answer (which node, the database's version, the code's
version): no node ever answers 200 with code that differs from the database, the window
is measured, and afterwards every node serves the new release. The lab stays on the new
release (a downgrade is refused); its pillar says so.

Skipped on the real Moodle (the fixture's front page reports both versions).
"""

import decimal
import json
import time

import pytest

from mhalab import results, testkit

pytestmark = pytest.mark.lab

def _versions(status, body):
    """(web node, database version, code version) of one answer of the fixture's front page."""
    if status != 200:
        return None, None, None
    data = json.loads(body)
    return data.get("web_node"), data.get("version"), data.get("code_version")


def _front_page():
    status, body = testkit.http_get(testkit.site_url("/"), host_header=testkit.topology()["vip"])
    assert status == 200, body[:200]
    return json.loads(body)


def _state_of(run, host, sid):
    """The result of state ID `sid` in `host`'s part of the orchestration (None when absent)."""
    for _, minion, key, result in results.minion_states(run.output):
        if minion == host and f"_|-{sid}_|-" in key:
            return result
    return None


@pytest.fixture(scope="module")
def upgraded(deployed, topology):
    before = _front_page()
    if "code_version" not in before:
        pytest.skip("not the fixture app (its front page does not report the code's version)")
    version = str(decimal.Decimal(before["version"]) + decimal.Decimal("0.01"))
    testkit.use_moodle_archive(testkit.fixture_release(version))
    with testkit.Poller("/", read=_versions) as poll:
        time.sleep(2)
        run = testkit.orchestrate()
        time.sleep(8)
    return {"before": before, "version": version, "run": run, "answers": poll.answers}


def test_upgrade_orchestrate_succeeds(upgraded):
    assert not upgraded["run"].failed, "\n".join(upgraded["run"].failed[:20])


def test_no_node_ever_serves_code_against_a_database_of_another_version(upgraded):
    answers = upgraded["answers"]
    ok = [a for a in answers if a[1] == 200]
    mixed = [a for a in ok if a[3] != a[4]]
    assert ok, "no successful answer while polling"
    assert mixed == [], mixed[:10]
    served = {(a[3], a[4]) for a in ok}
    old = upgraded["before"]["version"]
    assert (old, old) in served and (upgraded["version"],) * 2 in served, served


def test_the_upgrade_window_is_short_and_held_once(upgraded, topology):
    answers = upgraded["answers"]
    down = [a for a in answers if a[1] != 200]
    assert down, "no answer was a 503: the upgrade went live without a maintenance window"
    first, last = down[0][0], down[-1][0]
    # One window: every answer between its first and last failure failed too.
    inside = [a for a in answers if first <= a[0] <= last]
    assert all(a[1] != 200 for a in inside), "the site came back and went down again"
    run = upgraded["run"]
    primary = testkit.pillar().get("moodle", {}).get("primary_node") or sorted(
        n for n, h in topology["hosts"].items() if "web" in h["roles"])[0]
    opened = _state_of(run, primary, "moodle_ha-moodle-upgrade-window-opened")
    installed = _state_of(run, primary, "moodle_ha-moodle-switch-upgraded")
    closed = _state_of(run, primary, "moodle_ha-moodle-upgrade-window-closed")
    assert opened and opened["changes"].get("maintenance") == {"old": False, "new": True}
    assert closed and closed["changes"].get("maintenance") == {"old": True, "new": False}
    assert installed["changes"]["version"]["new"] == upgraded["version"]
    upgrade_s = installed["duration"] / 1000
    window = last - first
    print(f"\nupgrade to {upgraded['version']}: orchestrate {run.seconds:.0f} s; no answer but"
          f" 503 for {window:.1f} s ({len(down)} of {len(answers)} answers), upgrade.php state"
          f" {upgrade_s:.1f} s")


def test_every_node_switches_inside_the_window_in_one_step(upgraded, topology):
    webs = sorted(n for n, h in topology["hosts"].items() if "web" in h["roles"])
    steps = {}
    for step, minion, key, result in results.minion_states(upgraded["run"].output):
        if "_|-moodle_ha-moodle-switch-release-activated_|-" in key and result["changes"]:
            steps[minion] = step
    assert sorted(steps) == webs, steps
    assert len(set(steps.values())) == 1, steps


def test_every_node_serves_the_new_release_after_the_window(upgraded, topology):
    webs = sorted(n for n, h in topology["hosts"].items() if "web" in h["roles"])
    seen = {}
    for _ in range(6 * len(webs)):
        page = _front_page()
        seen[page["web_node"]] = (page["version"], page["code_version"])
    assert set(seen) == set(webs), seen
    assert set(seen.values()) == {(upgraded["version"], upgraded["version"])}, seen
    dataroot = testkit.pillar().get("moodle", {}).get("dataroot", "/var/moodledata")
    flag = testkit.host_exec(webs[0], ["test", "-e", f"{dataroot}/climaintenance.html"])
    assert flag.returncode != 0, "the maintenance flag is still in the dataroot"

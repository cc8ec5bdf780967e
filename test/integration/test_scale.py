"""
Lab: scale-out of the web tier while the site serves. One more host with role `web` only is
booted into the running lab (`lab.py add`), its topology entry added to the pillar, and one
`moodle_ha.orch` run brings it in: Apache/PHP, the dataroot mount, Moodle's code and config,
then HAProxy's web farm. Steady HTTP load through the VIP sees no failed request; the new node
answers requests that came through the load balancers; a second run changes nothing.

Runs on the arbitrator topology's lab (test/run.sh, after test_garbd.py), so the default
five-host suite keeps its shape.
"""

import json
import time

import pytest
import yaml

from mhalab import paths, testkit

pytestmark = [pytest.mark.lab, pytest.mark.lab_topology_changing]

NEW_HOST = "web4"
ACCESS_LOG = "/var/log/apache2/moodle-access.log"


def _scaled_pillar(topology):
    data = yaml.safe_load(paths.PILLAR_COPY.read_text())
    data["moodle_ha"]["topology"]["hosts"][NEW_HOST] = {"ip": testkit.free_ip(topology),
                                                        "roles": ["web"]}
    out = paths.LAB_DIR / "scale-out.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


@pytest.fixture(scope="module")
def scaled_out(topology, request):
    if not any("garbd" in h["roles"] for h in topology["hosts"].values()):
        pytest.skip("runs on the arbitrator topology (make test-garbd)")
    request.getfixturevalue("deployed")
    pillar_file = _scaled_pillar(topology)
    vip = topology["vip"]
    lbs = sorted(n for n, h in topology["hosts"].items() if "lb" in h["roles"])
    with testkit.Load(vip) as load:
        time.sleep(2)
        booted, run, up = testkit.add_and_orchestrate([NEW_HOST], pillar_file, lbs, NEW_HOST)
        took = booted + run.seconds
        time.sleep(3)
    print(f"\nscale-out to {NEW_HOST} (web): boot {booted:.0f} s, orchestrate {run.seconds:.0f} s"
          f" ({len(run.changed)} changes), {took:.0f} s in all; under load {load.requests}"
          f" requests, {len(load.failures)} failed")
    if run.failed:
        pytest.fail("orchestrate failed:\n" + "\n".join(run.failed[:20]))
    return {"run": run, "load": load, "up": up, "lbs": lbs}


def test_web_node_joins_without_a_failed_request(scaled_out):
    assert scaled_out["up"], "the new node never came UP in HAProxy's web backend"
    assert scaled_out["load"].failures == [], scaled_out["load"].failures[:20]


def test_web_node_serves_through_the_load_balancers(scaled_out, topology):
    lb_ips = {topology["hosts"][lb]["ip"] for lb in scaled_out["lbs"]}
    vip = topology["vip"]
    before = testkit.host_exec(NEW_HOST, ["wc", "-l", ACCESS_LOG]).stdout.split()
    for _ in range(30):
        status, _ = testkit.http_get(testkit.site_url("/"), host_header=vip)
        assert status == 200
    log = testkit.host_exec(NEW_HOST, ["cat", ACCESS_LOG]).stdout.splitlines()
    skip = int(before[0]) if before else 0
    clients = {line.split(" ", 1)[0] for line in log[skip:]}
    assert clients & lb_ips, f"no request from the LBs {sorted(lb_ips)} in {ACCESS_LOG}"


def test_web_node_mounts_the_shared_dataroot(scaled_out, topology):
    gluster = sorted(n for n, h in topology["hosts"].items() if "gluster" in h["roles"])
    dataroot = testkit.pillar().get("moodle", {}).get("dataroot", "/var/moodledata")
    marker = f"{dataroot}/scale-out-{int(time.time())}"
    proc = testkit.host_exec(gluster[0], ["sh", "-c", f"echo seen > {marker}"])
    assert proc.returncode == 0, proc.stderr
    seen = testkit.until(lambda: testkit.host_exec(NEW_HOST, ["cat", marker]).stdout.strip()
                         == "seen", timeout=15, interval=1)
    testkit.host_exec(gluster[0], ["rm", "-f", marker])
    assert seen, f"{NEW_HOST} does not see {marker} written on {gluster[0]}"


def test_existing_hosts_change_only_what_the_new_member_needs(scaled_out, topology):
    # Each changed state, as "<host>: <state id>"; the existing hosts may change their host
    # list, their firewall (admitting the new member), the load balancers' HAProxy config,
    # the time servers' chrony.conf (serving it) and the volume's auth.allow (it mounts the
    # dataroot), nothing else.
    allowed = ("moodle_ha-hosts-", "moodle_ha-firewall-ruleset-", "moodle_ha-firewall-service-",
               "moodle_ha-lb-haproxy-", "moodle_ha-metrics-",
               "moodle_ha-gluster-volume-options-set")
    lbs = [h for h, spec in topology["hosts"].items() if "lb" in spec["roles"]]
    others = [c for c in scaled_out["run"].changed
              if not c.startswith(f"{NEW_HOST}:") and not any(a in c for a in allowed)
              and not (c.split(":")[0] in lbs and "moodle_ha-chrony-" in c)]
    assert others == [], json.dumps(others, indent=1)


def test_second_run_after_scale_out_changes_nothing(scaled_out):
    run = testkit.orchestrate()
    print(f"\nno-op orchestrate after scale-out: {run.seconds:.0f} s, {len(run.changed)} changes")
    assert not run.failed, run.failed[:20]
    assert run.changed == [], run.changed[:20]

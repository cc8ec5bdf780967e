"""
Lab: a whole app node and an arbitrator join the running default cluster, and leave it again.

Scale-out: moodle4 (galera, gluster, web) and arb1 (garbd) are booted into the lab
(`lab.py add`), their entries added to the pillar, and one `moodle_ha.orch` run brings them
in while pages are fetched and rows written through the VIP: moodle4 joins Galera by state
transfer (never bootstrapping), its brick joins the volume as a fourth replica and is healed,
it enters HAProxy's web farm and DB backends; garbd joins as the fifth vote. Then two
pillars that must be refused (an even number of voters; a brick leaving without
gluster:remove_bricks) change nothing, and scale-in marks both hosts decommission with the
brick confirmed: one run drains, leaves, removes the brick, with no failed request and no
acknowledged row or file lost. Each run is followed by a re-run that changes nothing.

Runs on the default topology and, changing it, last in the lab session (conftest orders it).
"""

import json
import os
import time

import pytest
import yaml

from mhalab import paths, testkit

pytestmark = [pytest.mark.lab, pytest.mark.lab_topology_changing]

APP, ARB = "moodle4", "arb1"
TABLE = "moodle_ha_scale_probe"
FILES = 40
BRICK_ROOT = "/srv/gluster"


def _pillar():
    return yaml.safe_load(paths.PILLAR_COPY.read_text())


def _hosts(data):
    return data["moodle_ha"]["topology"]["hosts"]


def _galera_status(host, name):
    rows = testkit.host_exec(host, ["mariadb", "-N", "-B", "-e",
                                    f"SHOW GLOBAL STATUS LIKE '{name}'"]).stdout.split()
    return rows[1] if len(rows) > 1 else None


def _volume_bricks(host="moodle1"):
    volume = testkit.pillar().get("gluster", {}).get("volume", "moodledata")
    out = testkit.host_exec(host, ["gluster", "--mode=script", "volume", "info", volume]).stdout
    return [line.split(":", 1)[1].strip() for line in out.splitlines()
            if line.startswith("Brick") and line[5:6].isdigit()]


def _files_digest(host, path):
    proc = testkit.host_exec(host, ["sh", "-c", f"cd {path} && cat scale-probe-* | sha256sum"])
    return proc.stdout.split()[0] if proc.returncode == 0 else proc.stderr


@pytest.fixture(scope="module")
def before(topology, request):
    if os.environ.get("MOODLE_HA_LAB_SCALE") != "1":
        pytest.skip("make test-scale (MOODLE_HA_LAB_SCALE=1): ~12 min, kept out of make test"
                    " for CI's time budget")
    if any("garbd" in h["roles"] for h in topology["hosts"].values()):
        pytest.skip("runs on the default topology (test_scale.py covers the arbitrator one)")
    request.getfixturevalue("deployed")
    original = _pillar()
    dataroot = testkit.pillar().get("moodle", {}).get("dataroot", "/var/moodledata")
    write = (f"for i in $(seq 1 {FILES}); do head -c 4096 /dev/urandom"
             f" > {dataroot}/scale-probe-$i; done")
    proc = testkit.host_exec("moodle1", ["sh", "-c", write])
    assert proc.returncode == 0, proc.stderr
    testkit.db_query(f"CREATE TABLE IF NOT EXISTS {TABLE} (id BIGINT AUTO_INCREMENT PRIMARY"
                     " KEY, note VARCHAR(16) NOT NULL)")
    yield {"pillar": original, "dataroot": dataroot,
           "digest": _files_digest("moodle1", dataroot)}


@pytest.fixture(scope="module")
def scaled_out(before, topology):
    data = before["pillar"]
    _hosts(data)[APP] = {"ip": testkit.free_ip(topology, "web"),
                         "roles": ["galera", "gluster", "web"]}
    _hosts(data)[ARB] = {"ip": testkit.free_ip(topology, "lb"), "roles": ["garbd"]}
    data["moodle_ha"].setdefault("gluster", {})["replica"] = None
    # The default backup node is the last galera+web host by name, which moodle4 would
    # become: pinned, as README's scale-out section says to, so the backups stay put.
    backup = data["moodle_ha"].get("backup", {}).get("node") or sorted(
        n for n, h in topology["hosts"].items() if {"galera", "web"} <= set(h["roles"]))[-1]
    data["moodle_ha"].setdefault("backup", {})["node"] = backup
    pillar_file = paths.LAB_DIR / "scale-out-app.yaml"
    pillar_file.write_text(yaml.safe_dump(data, sort_keys=False))
    lbs = sorted(n for n, h in topology["hosts"].items() if "lb" in h["roles"])
    with testkit.Load(topology["vip"], TABLE) as load:
        time.sleep(2)
        booted, run, up = testkit.add_and_orchestrate([APP, ARB], pillar_file, lbs, APP)
        time.sleep(3)
    print(f"\nscale-out {APP} (galera, gluster, web) + {ARB} (garbd): boot {booted:.0f} s,"
          f" orchestrate {run.seconds:.0f} s ({len(run.changed)} changes); under load"
          f" {load.summary()}")
    if run.failed:
        pytest.fail("orchestrate failed:\n" + "\n".join(run.failed[:20]))
    return {"run": run, "load": load, "up": up, "lbs": lbs, "pillar": data}


def _lost(acked):
    rows = {r[0] for r in testkit.db_query(f"SELECT id FROM {TABLE}")}
    return sorted(set(acked) - rows)


def test_app_node_joins_without_a_failed_request_or_a_lost_row(scaled_out):
    # Failed writes are counted and printed, not asserted: on this 2-core lab the writer's
    # clustercheck sometimes misses HAProxy's 1 s check timeout under the orchestration's
    # load, and the writer's sessions are cut (the failover issue's subject). A row whose
    # INSERT was acknowledged must never be missing.
    load = scaled_out["load"]
    assert scaled_out["up"], f"{APP} never came UP in HAProxy's web farm"
    assert load.failures == [], load.failures[:20]
    assert load.acked, "no row was written during the scale-out"
    lost = _lost(load.acked)
    assert lost == [], f"{len(lost)} acknowledged rows missing: {lost[:20]}"


def test_galera_counts_five_members_and_the_new_node_is_synced(scaled_out):
    assert _galera_status("moodle1", "wsrep_cluster_size") == "5"
    assert _galera_status(APP, "wsrep_local_state_comment") == "Synced"
    assert _galera_status(APP, "wsrep_cluster_status") == "Primary"
    garb = testkit.host_exec(ARB, ["systemctl", "is-active", "garb"]).stdout.strip()
    assert garb == "active"


def test_new_node_is_a_reader_and_a_writer_backup(scaled_out):
    for lb in scaled_out["lbs"]:
        assert testkit.backend_status(lb, "db-readers").get(APP) == "UP"
        assert testkit.backend_status(lb, "db-writer").get(APP) == "UP"
    conn = testkit.db_connect()
    with conn.cursor() as cur:
        cur.execute("SELECT @@hostname")
        writer = cur.fetchone()[0]
    conn.close()
    assert writer != APP, "the new node took the writer role"


def test_new_brick_holds_every_file(scaled_out, before):
    brick = f"{BRICK_ROOT}/{testkit.pillar().get('gluster', {}).get('volume', 'moodledata')}"
    bricks = _volume_bricks()
    assert len(bricks) == 4 and any(b.startswith(scaled_out["pillar"]["moodle_ha"]["topology"]
                                                 ["hosts"][APP]["ip"]) for b in bricks), bricks
    healed = testkit.until(lambda: _files_digest(APP, brick) == before["digest"], timeout=120,
                           interval=3)
    assert healed, f"{APP}'s brick {brick} does not hold the {FILES} probe files"


def test_new_node_serves_through_the_load_balancers(scaled_out, topology):
    log = "/var/log/apache2/moodle-access.log"
    lb_ips = {topology["hosts"][lb]["ip"] for lb in scaled_out["lbs"]}
    for _ in range(30):
        status, _ = testkit.http_get(testkit.site_url("/"), host_header=topology["vip"])
        assert status == 200
    clients = {line.split(" ", 1)[0] for line in
               testkit.host_exec(APP, ["cat", log]).stdout.splitlines()}
    assert clients & lb_ips, f"no request from the LBs in {APP}'s {log}"


def test_existing_hosts_change_only_what_the_new_members_need(scaled_out, topology):
    # "<host>: <state id>" of every change on a host that was there before: its host list and
    # firewall (admitting the new hosts), HAProxy (new backends), chrony on the time servers,
    # the gluster pool and volume (probe, add-brick, auth.allow), the dataroot mount's backup
    # volfile servers (fstab only, no remount), Galera's config file (cluster address, no
    # restart) and the backup configuration's node list (its timer restarted). Nothing else.
    allowed = ("moodle_ha-hosts-", "moodle_ha-firewall-ruleset-", "moodle_ha-firewall-service-",
               "moodle_ha-lb-haproxy-", "moodle_ha-metrics-", "moodle_ha-gluster-peer-",
               "moodle_ha-gluster-volume-", "moodle_ha-gluster-client-dataroot-mounted",
               "moodle_ha-galera-config-file-managed", "moodle_ha-backup-config-file-managed",
               "moodle_ha-backup-timer-running")
    lbs = scaled_out["lbs"]
    others = [c for c in scaled_out["run"].changed
              if c.split(":")[0] in topology["hosts"] and not any(a in c for a in allowed)
              and not (c.split(":")[0] in lbs and "moodle_ha-chrony-" in c)]
    assert others == [], json.dumps(others, indent=1)


def _no_op(after):
    run = testkit.orchestrate()
    print(f"\nno-op orchestrate after {after}: {run.seconds:.0f} s, {len(run.changed)} changes")
    assert not run.failed, run.failed[:20]
    assert run.changed == [], run.changed[:20]


def test_second_run_after_scale_out_changes_nothing(scaled_out):
    _no_op("the app-node scale-out")


def _refused(scaled_out, patch):
    data = json.loads(json.dumps(scaled_out["pillar"]))
    patch(data)
    testkit.set_pillar(data)
    try:
        run = testkit.orchestrate()
    finally:
        testkit.set_pillar(scaled_out["pillar"])
    return run, json.dumps(run.output)


def test_leaving_an_even_number_of_voters_is_refused_and_changes_nothing(scaled_out):
    def patch(data):
        _hosts(data)[APP]["decommission"] = True
        data["moodle_ha"]["gluster"]["remove_bricks"] = [APP]
    run, text = _refused(scaled_out, patch)
    assert "3 galera node(s) and 1 arbitrator(s): Galera needs an odd number" in text, text[:3000]
    assert f"counting without {APP}, marked decommission" in text
    assert run.changed == [], run.changed[:20]
    assert _galera_status("moodle1", "wsrep_cluster_size") == "5"


def test_removing_a_brick_without_the_flag_is_refused_naming_it(scaled_out):
    def patch(data):
        _hosts(data)[APP]["decommission"] = True
        _hosts(data)[ARB]["decommission"] = True
    run, text = _refused(scaled_out, patch)
    assert f"moodle_ha:gluster:remove_bricks: {APP} is marked decommission" in text, text[:3000]
    assert f"moodle_ha:gluster:remove_bricks: [{APP}]" in text
    assert run.changed == [], run.changed[:20]
    assert len(_volume_bricks()) == 4


@pytest.fixture(scope="module")
def scaled_in(scaled_out, topology):
    data = json.loads(json.dumps(scaled_out["pillar"]))
    _hosts(data)[APP]["decommission"] = True
    _hosts(data)[ARB]["decommission"] = True
    data["moodle_ha"]["gluster"]["remove_bricks"] = [APP]
    testkit.set_pillar(data)
    with testkit.Load(topology["vip"], TABLE) as load:
        time.sleep(2)
        run = testkit.orchestrate()
        time.sleep(3)
    print(f"\nscale-in of {APP} + {ARB}: orchestrate {run.seconds:.0f} s"
          f" ({len(run.changed)} changes); under load {load.summary()}")
    if run.failed:
        pytest.fail("orchestrate failed:\n" + "\n".join(run.failed[:20]))
    return {"run": run, "load": load}


def test_scale_in_without_a_failed_request(scaled_in):
    load = scaled_in["load"]
    assert load.failures == [], load.failures[:20]


def test_after_scale_in_three_members_three_bricks_and_nothing_lost(scaled_in, scaled_out,
                                                                    before):
    assert _galera_status("moodle1", "wsrep_cluster_size") == "3"
    bricks = _volume_bricks()
    assert len(bricks) == 3, bricks
    assert _files_digest("moodle2", before["dataroot"]) == before["digest"]
    lost = _lost(scaled_out["load"].acked + scaled_in["load"].acked)
    assert lost == [], f"{len(lost)} acknowledged rows missing: {lost[:20]}"


def test_leaving_hosts_run_nothing_and_keep_their_data(scaled_in):
    for unit in ("apache2", "mariadb", "glusterd", "moodle_ha-clustercheck"):
        state = testkit.host_exec(APP, ["systemctl", "is-active", unit]).stdout.strip()
        enabled = testkit.host_exec(APP, ["systemctl", "is-enabled", unit]).stdout.strip()
        assert state != "active" and enabled != "enabled", (unit, state, enabled)
    assert testkit.host_exec(ARB, ["systemctl", "is-active", "garb"]).stdout.strip() != "active"
    datadir = testkit.host_exec(APP, ["test", "-s", "/var/lib/mysql/grastate.dat"])
    assert datadir.returncode == 0, "the leaving node's datadir is gone"
    mounted = testkit.host_exec(APP, ["findmnt", "-n", testkit.pillar().get("moodle", {})
                                      .get("dataroot", "/var/moodledata")])
    assert mounted.stdout.strip() == "", mounted.stdout


def test_second_run_after_scale_in_changes_nothing(scaled_in):
    _no_op("the scale-in")

"""
Lab, arbitrator topology (test/lab/topologies/garbd.yaml, `make test-garbd`): two Galera
nodes and garbd beside HAProxy on lb1 converge, the arbitrator is a member, and the cluster
stays Primary and writable through VIP:3307 when either Galera host is killed. Skipped on a
lab without a garbd host (the default five hosts).
"""

import json

import pytest

from mhalab import testkit
from mhalab.testkit import lab_run, until

pytestmark = pytest.mark.lab


def _with_role(topology, role):
    return sorted(n for n, h in topology["hosts"].items() if role in h["roles"])


@pytest.fixture(scope="module", autouse=True)
def roles(lab):
    """(galera hosts, arbitrators) of the running lab; skips without an arbitrator."""
    topology = testkit.topology()
    if not _with_role(topology, "garbd"):
        pytest.skip("the lab's topology has no garbd host (make test-garbd)")
    return _with_role(topology, "galera"), _with_role(topology, "garbd")


def _db_write(topology, secrets, note):
    import pymysql
    conn = pymysql.connect(host=topology["vip"], port=3307, user="moodle",
                           password=secrets["moodle_db_password"].encode(), database="moodle",
                           connect_timeout=2, read_timeout=2, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS mha_garbd_probe"
                        " (id BIGINT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(64))")
            cur.execute("INSERT INTO mha_garbd_probe (note) VALUES (%s)", (note,))
            cur.execute("SELECT @@hostname")
            return cur.fetchone()[0]
    finally:
        conn.close()


def _try_write(topology, secrets, note):
    try:
        return _db_write(topology, secrets, note)
    except Exception:  # noqa: BLE001 - not writable yet
        return None


def test_arbitrator_topology_converges_and_reruns_clean(deployed, redeployed):
    assert deployed.failed == [], "\n".join(deployed.failed)
    assert redeployed.failed == [] and redeployed.changed == [], "\n".join(
        redeployed.failed + redeployed.changed)


def test_arbitrator_is_a_member_and_status_shows_it(deployed, lab_salt, roles):
    galera, arbiters = roles
    for node in galera:
        status = lab_salt(node, "galera.status")
        assert status["wsrep_cluster_size"] == str(len(galera) + len(arbiters)), status
        assert status["wsrep_cluster_status"] == "Primary"
    proc = lab_run("salt-run", "moodle_ha.status", "--out=json", timeout=120)
    data = json.loads(proc.stdout)
    lines = {(c["host"], c["layer"]): c for c in data["checks"]}
    for arb in arbiters:
        assert lines[(arb, "garbd")]["ok"] is True, lines[(arb, "garbd")]
    assert proc.returncode == 0, data["verdict"]


@pytest.mark.parametrize("victim_index", [1, 0], ids=["non-writer", "writer"])
def test_killing_a_galera_host_leaves_the_other_primary_and_writable(
        deployed, lab_salt, topology, secrets, roles, victim_index):
    galera, arbiters = roles
    victim = galera[victim_index]
    survivor = next(n for n in galera if n != victim)
    assert lab_run("kill", victim).returncode == 0
    try:
        took, host = until(lambda: _try_write(topology, secrets, f"{victim} killed"), 30)
        assert took is not None, f"VIP:3307 not writable after killing {victim}"
        assert host == survivor
        status = lab_salt(survivor, "galera.status")
        assert status["wsrep_cluster_status"] == "Primary", status
        assert status["wsrep_cluster_size"] == str(len(galera) + len(arbiters) - 1)
        print(f"\n{victim} killed: writes through VIP:3307 on {survivor} after {took:.1f} s")
    finally:
        assert lab_run("start", victim).returncode == 0
        run = testkit.orchestrate()
        assert not run.failed, "\n".join(run.failed[:20])
    assert lab_salt(victim, "galera.status")["wsrep_local_state_comment"] == "Synced"

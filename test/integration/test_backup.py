"""
Lab: a backup taken under write and HTTP load costs no write and no request; a restore brings
back rows and dataroot files deleted after the backup, and is refused without confirmation.
"""

import time

import pytest

from mhalab.testkit import Load, db_query, host_exec, lab_run, orchestrate, salt_value, until

pytestmark = pytest.mark.lab

PROBE = "moodle.mha_backup_probe"


def _backup_now():
    proc = lab_run("salt-run", "moodle_ha.backup_now", "--out=json", timeout=900)
    import json
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"backup_now gave no JSON: {proc.stdout}{proc.stderr}") from None
    return proc.returncode, data


@pytest.fixture(scope="module")
def probe_table(deployed, topology, secrets):
    db_query(f"CREATE TABLE IF NOT EXISTS {PROBE} (id BIGINT AUTO_INCREMENT"
             " PRIMARY KEY, note VARCHAR(64) NOT NULL)")
    return PROBE


def test_backup_under_write_and_http_load_fails_nothing(probe_table, topology, secrets):
    with Load(topology["vip"], PROBE) as load:
        time.sleep(2)
        rc, data = _backup_now()
        time.sleep(3)
    assert rc == 0 and data["result"], data
    assert data["node"] == "moodle3" and data["name"] in data["path"]
    print(f"\n{data['comment']}; under load: {load.summary()}")
    assert len(load.acked) > 50 and load.requests > 20
    assert load.write_errors == [], load.write_errors[:5]
    assert load.failures == [], load.failures[:10]
    listed = salt_value("moodle3", "moodle_ha_backup.list")
    newest = listed["backups"][0]
    assert newest["name"] == data["name"] and newest["verified"]
    assert salt_value("moodle3", "moodle_ha_backup.verify", data["name"])["result"]


def test_restore_brings_back_deleted_rows_and_files_and_needs_confirmation(
        probe_table, topology, secrets, vip_http):
    db_query(f"INSERT INTO {PROBE} (note) VALUES ('before-backup')")
    host_exec("moodle1", ["sh", "-c", "echo kept > /var/moodledata/mha-restore-probe.txt"])
    rc, data = _backup_now()
    assert rc == 0, data
    name = data["name"]
    # The mistakes a restore undoes: a row deleted, a file deleted; and a row written later.
    db_query(f"DELETE FROM {PROBE} WHERE note = 'before-backup'")
    db_query(f"INSERT INTO {PROBE} (note) VALUES ('after-backup')")
    host_exec("moodle2", ["rm", "-f", "/var/moodledata/mha-restore-probe.txt"])

    refused = orchestrate(sls="moodle_ha.orch_restore",
                          pillar={"moodle_ha": {"restore": {"backup": name}}})
    assert refused.failed and any("restore refused" in f for f in refused.failed), refused.failed
    assert not refused.changed
    assert db_query(f"SELECT COUNT(*) FROM {PROBE} WHERE note = 'after-backup'")[0][0] == 1, \
        "the refused restore changed the database"

    run = orchestrate(sls="moodle_ha.orch_restore",
                      pillar={"moodle_ha": {"restore": {"backup": name, "confirm": name}}})
    print(f"\nrestore of {name}: {run.seconds:.0f} s")
    assert not run.failed, "\n".join(run.failed[:20])
    notes = [r[0] for r in db_query(f"SELECT note FROM {PROBE} WHERE note != 'load'")]
    assert notes == ["before-backup"], notes
    for host in ("moodle1", "moodle2", "moodle3"):
        out = host_exec(host, ["cat", "/var/moodledata/mha-restore-probe.txt"])
        assert out.returncode == 0 and out.stdout.strip() == "kept", (host, out.stderr)
        assert salt_value(host, "galera.status")["wsrep_cluster_size"] == "3"
    took, _ = until(lambda: vip_http("/")[0] == 200, 30)
    assert took is not None, "Moodle does not answer 200 on the VIP after the restore"
    # The node's old datadir is kept beside the restored one.
    kept = host_exec("moodle3", ["sh", "-c", "ls -d /var/lib/mysql.before-restore-*"])
    assert name in kept.stdout

    again = orchestrate(sls="moodle_ha.orch_restore",
                        pillar={"moodle_ha": {"restore": {"backup": name, "confirm": "yes"}}})
    assert again.failed and any("restore refused" in f for f in again.failed), again.failed
    assert not again.changed


def test_status_shows_the_newest_backup(probe_table):
    import json
    proc = lab_run("salt-run", "moodle_ha.status", "--out=json", timeout=120)
    data = json.loads(proc.stdout)
    line = next(c for c in data["checks"] if c["layer"] == "backup")
    assert line["host"] == "moodle3" and line["ok"] is True and "newest" in line["text"]

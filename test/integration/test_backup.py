"""
Lab: a backup taken under write and HTTP load costs no write and no request; a restore brings
back rows and dataroot files deleted after the backup, and is refused without confirmation.
"""

import threading
import time

import pytest

from mhalab.testkit import host_exec, http_get, lab_run, orchestrate, salt_value, site_url, until

pytestmark = pytest.mark.lab

PROBE = "moodle.mha_backup_probe"


def _db(topology, secrets, port=3307, timeout=3):
    import pymysql
    return pymysql.connect(host=topology["vip"], port=port, user="moodle",
                           password=secrets["moodle_db_password"].encode(), database="moodle",
                           connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout,
                           autocommit=True)


def _sql(topology, secrets, statement, args=None):
    conn = _db(topology, secrets)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, args)
            return cur.fetchall()
    finally:
        conn.close()


class _Load:
    """Rows written through VIP:3307 and pages fetched through the VIP, in threads, counting
    what failed (a reconnect after an error counts as one more failure, never as success)."""

    def __init__(self, topology, secrets):
        self.topology, self.secrets = topology, secrets
        self.stop = threading.Event()
        self.writes = self.write_errors = self.requests = 0
        self.request_errors = []
        self.errors = []
        self.threads = [threading.Thread(target=self._write, daemon=True),
                        threading.Thread(target=self._fetch, daemon=True)]

    def _write(self):
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = _db(self.topology, self.secrets)
                with conn.cursor() as cur:
                    cur.execute(f"INSERT INTO {PROBE} (note) VALUES ('load')")
                self.writes += 1
            except Exception as exc:  # noqa: BLE001 - any failure is counted
                self.write_errors += 1
                self.errors.append(repr(exc)[:200])
                conn = None
            time.sleep(0.02)

    def _fetch(self):
        vip = self.topology["vip"]
        while not self.stop.is_set():
            try:
                status, _ = http_get(site_url("/"), host_header=vip, timeout=5)
            except OSError as exc:
                status = repr(exc)[:100]
            self.requests += 1
            if status != 200:
                self.request_errors.append(status)
            time.sleep(0.1)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(10)


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
    _sql(topology, secrets, f"CREATE TABLE IF NOT EXISTS {PROBE} (id BIGINT AUTO_INCREMENT"
                            " PRIMARY KEY, note VARCHAR(64) NOT NULL)")
    return PROBE


def test_backup_under_write_and_http_load_fails_nothing(probe_table, topology, secrets):
    with _Load(topology, secrets) as load:
        time.sleep(2)
        rc, data = _backup_now()
        time.sleep(3)
    assert rc == 0 and data["result"], data
    assert data["node"] == "moodle3" and data["name"] in data["path"]
    print(f"\n{data['comment']}; under load: {load.writes} rows written,"
          f" {load.requests} requests")
    assert load.writes > 50 and load.requests > 20
    assert load.write_errors == 0, load.errors[:5]
    assert load.request_errors == [], load.request_errors[:10]
    listed = salt_value("moodle3", "moodle_ha_backup.list")
    newest = listed["backups"][0]
    assert newest["name"] == data["name"] and newest["verified"]
    assert salt_value("moodle3", "moodle_ha_backup.verify", data["name"])["result"]


def test_restore_brings_back_deleted_rows_and_files_and_needs_confirmation(
        probe_table, topology, secrets, vip_http):
    _sql(topology, secrets, f"INSERT INTO {PROBE} (note) VALUES ('before-backup')")
    host_exec("moodle1", ["sh", "-c", "echo kept > /var/moodledata/mha-restore-probe.txt"])
    rc, data = _backup_now()
    assert rc == 0, data
    name = data["name"]
    # The mistakes a restore undoes: a row deleted, a file deleted; and a row written later.
    _sql(topology, secrets, f"DELETE FROM {PROBE} WHERE note = 'before-backup'")
    _sql(topology, secrets, f"INSERT INTO {PROBE} (note) VALUES ('after-backup')")
    host_exec("moodle2", ["rm", "-f", "/var/moodledata/mha-restore-probe.txt"])

    refused = orchestrate(sls="moodle_ha.orch_restore",
                          pillar={"moodle_ha": {"restore": {"backup": name}}})
    assert refused.failed and any("restore refused" in f for f in refused.failed), refused.failed
    assert not refused.changed
    assert _sql(topology, secrets, f"SELECT COUNT(*) FROM {PROBE} WHERE note = 'after-backup'"
                )[0][0] == 1, "the refused restore changed the database"

    run = orchestrate(sls="moodle_ha.orch_restore",
                      pillar={"moodle_ha": {"restore": {"backup": name, "confirm": name}}})
    print(f"\nrestore of {name}: {run.seconds:.0f} s")
    assert not run.failed, "\n".join(run.failed[:20])
    notes = [r[0] for r in _sql(topology, secrets, f"SELECT note FROM {PROBE}"
                                                   " WHERE note != 'load'")]
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

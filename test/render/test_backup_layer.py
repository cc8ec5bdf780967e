"""moodle_ha.backup renders on the backup node only, with no secret in its state data;
moodle_ha.orch_restore refuses without confirmation and otherwise sequences the restore."""

import json

import pytest

from render.renderlib import PLATFORMS

KEY = "backup-key-with-quote'\"-and-$dollar"


def _ids(out):
    return sorted(out)


def _arg(state, key):
    for item in next(iter(v for k, v in state.items() if k != "__sls__" and k != "__env__")):
        if isinstance(item, dict) and key in item:
            return item[key]
    return None


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_backup_node_gets_script_config_and_timer(renderer, platform):
    out = renderer.show_sls("moodle_ha.backup", minion_id="moodle3", platform=platform)
    assert {"moodle_ha-backup-package-installed", "moodle_ha-backup-script-file-managed",
            "moodle_ha-backup-config-file-managed", "moodle_ha-backup-timer-running",
            "moodle_ha-backup-service-file-managed", "moodle_ha-backup-key-file-absent",
            "moodle_ha-backup-target-dir-managed"} <= set(out)
    dataset = _arg(out["moodle_ha-backup-config-file-managed"], "dataset")
    assert dataset["node"] == "moodle3" and dataset["encryption_key_file"] is None
    assert [n["name"] for n in dataset["galera_nodes"]] == ["moodle1", "moodle2", "moodle3"]
    assert dataset["mariabackup"] == "/usr/bin/mariadb-backup"
    assert dataset["clustercheck"]["drain_file"] == "/etc/moodle_ha/clustercheck.drain"


@pytest.mark.parametrize("minion", ["moodle1", "moodle2"])
def test_other_galera_nodes_only_stop_the_timer_and_drop_the_config(renderer, minion):
    out = renderer.show_sls("moodle_ha.backup", minion_id=minion)
    assert _ids(out) == ["moodle_ha-backup-config-file-absent", "moodle_ha-backup-timer-dead"]


def test_default_backup_node_is_the_last_galera_web_host(renderer):
    out = renderer.show_sls("moodle_ha.backup", minion_id="moodle3",
                            patch={"moodle_ha:backup:node": renderer.DELETE})
    assert "moodle_ha-backup-timer-running" in out


def test_disabled_backups_render_no_schedule_anywhere(renderer):
    out = renderer.show_sls("moodle_ha.backup", minion_id="moodle3",
                            patch={"moodle_ha:backup:enabled": False})
    assert _ids(out) == ["moodle_ha-backup-config-file-absent", "moodle_ha-backup-timer-dead"]


def test_encryption_key_goes_to_its_file_only_never_into_state_data(renderer):
    patch = {"moodle_ha:secrets:backup_encryption_key": KEY, "moodle_ha:backup:compression": "zstd"}
    out = renderer.show_sls("moodle_ha.backup", minion_id="moodle3", patch=patch)
    assert "moodle_ha-backup-key-file-managed" in out
    assert KEY not in json.dumps(out)
    pkgs = _arg(out["moodle_ha-backup-package-installed"], "pkgs")
    assert "zstd" in pkgs and "openssl" in pkgs
    dataset = _arg(out["moodle_ha-backup-config-file-managed"], "dataset")
    assert dataset["encryption_key_file"] == "/etc/moodle_ha/backup.key"


def test_key_file_template_renders_the_key_byte_exact(renderer, tmp_path):
    patch = {"moodle_ha:secrets:backup_encryption_key": KEY}
    dest = tmp_path / "backup.key"
    code, _ = renderer.call("cp.get_template", "salt://moodle_ha/backup/files/backup.key.jinja",
                            str(dest), "tpldir=moodle_ha/backup", minion_id="moodle3", patch=patch)
    assert code == 0
    assert dest.read_text().rstrip("\n") == KEY


BAD = [
    ({"moodle_ha:backup:node": "lb1"},
     "moodle_ha:backup:node: 'lb1' is not a host with roles galera and web"),
    ({"moodle_ha:backup:retention": 0}, "moodle_ha:backup:retention: 0 is not an integer >= 1"),
    ({"moodle_ha:backup:compression": "xz"},
     "moodle_ha:backup:compression: 'xz' is not one of gzip, zstd, none"),
    ({"moodle_ha:backup:target_dir": "/var/moodledata"},
     "moodle_ha:backup:target_dir: '/var/moodledata' is not an absolute directory of its own"),
    ({"moodle_ha:secrets:backup_encryption_key": "short"},
     "moodle_ha:secrets:backup_encryption_key: must be one line of at least 16 characters"),
    ({"moodle_ha:secrets:backup_encryption_key": "a-long-key-with\na-newline"},
     "moodle_ha:secrets:backup_encryption_key: must be one line"),
    ({"moodle_ha:restore:backup": "../../etc"},
     "moodle_ha:restore:backup: '../../etc' is not a backup name"),
]


@pytest.mark.parametrize("patch, message", BAD)
def test_invalid_backup_pillar_names_its_key(renderer, patch, message):
    text = renderer.render_error("moodle_ha.hosts", patch=patch)
    assert message in text


# --------------------------------------------------------------------------- orch_restore

NAME = "20261201T023000Z"


def _restore_steps(renderer, restore):
    out = renderer.show_sls("moodle_ha.orch_restore", minion_id="master", roles=[],
                            patch={"moodle_ha:restore": restore})
    return [(k, v) for k, v in sorted(out.items(), key=lambda kv: next(
        i["order"] for i in next(iter(v for kk, v in kv[1].items() if not kk.startswith("__")))
        if isinstance(i, dict) and "order" in i))]


@pytest.mark.parametrize("restore", [{"backup": NAME}, {"backup": NAME, "confirm": "yes"},
                                     {"backup": None, "confirm": None}])
def test_restore_without_confirmation_is_one_failing_step_that_changes_nothing(renderer, restore):
    steps = _restore_steps(renderer, restore)
    assert [k for k, _ in steps] == ["moodle_ha-orch-restore-refused"]
    state = steps[0][1]
    assert "test" in state and "fail_without_changes" in state["test"]
    assert "restore refused, nothing changed" in _arg(state, "comment")


def test_confirmed_restore_sequences_maintenance_database_rejoin_dataroot_and_check(renderer):
    steps = _restore_steps(renderer, {"backup": NAME, "confirm": NAME})
    names = [k.removeprefix("moodle_ha-orch-") for k, _ in steps]
    assert names == [
        "modules-synced", "backup-moodle3-verified", "moodle-maintenance-enabled",
        "moodle-cron-stopped", "galera-stopped", "database-moodle3-restored",
        "galera-others-rejoin-prepared", "galera-applied", "dataroot-moodle3-restored",
        "moodle-caches-purged", "moodle-maintenance-disabled", "moodle-moodle1-applied",
        "check-moodle1-passed", "check-others-passed",
    ]
    by_name = dict(steps)
    restore = by_name["moodle_ha-orch-database-moodle3-restored"]
    assert _arg(restore, "name") == "moodle_ha_backup.restore_database"
    assert _arg(restore, "arg") == [NAME] and _arg(restore, "kwarg") == {"confirm": NAME}
    rejoin = by_name["moodle_ha-orch-galera-others-rejoin-prepared"]
    assert _arg(rejoin, "tgt") == "moodle1,moodle2"
    for (prev, _), (_, state) in zip(steps, steps[1:], strict=False):
        assert _arg(state, "require") == [{"salt": prev}]
        assert _arg(state, "failhard") is True

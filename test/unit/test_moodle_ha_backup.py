"""
The backup script (moodle_ha/backup/files/moodle_ha-backup.py) and its Salt wrapper
(_modules/moodle_ha_backup.py): pure decisions on recorded lab outputs
(test/data/backup/*.debian13-lab*), and archives written and read back with the real tar,
gzip and openssl of this machine.
"""

import argparse
import json
import os
import shutil
import subprocess

import pytest

from render.renderlib import REPO
from saltmodules import load

script = load("moodle_ha/backup/files/moodle_ha-backup.py", "moodle_ha_backup_script_under_test")
module = load("_modules/moodle_ha_backup.py", "moodle_ha_backup_module_under_test")
galera = load("_modules/galera.py", "galera_for_backup_under_test")
DATA = REPO / "test" / "data" / "backup"
ORDER = ["moodle1", "moodle2", "moodle3"]


# --------------------------------------------------------------------------- positions


def test_galera_info_of_mariadb_11_is_uuid_seqno_and_gtid_domain():
    text = (DATA / "mariadb_backup_galera_info.debian13-lab").read_text()
    assert script.parse_galera_info(text) == {
        "uuid": "97a2251c-eddc-11f1-b5ba-d260a60d91f2", "seqno": 23}


@pytest.mark.parametrize("text", ["", "garbage", "97a2251c-eddc-11f1-b5ba-d260a60d91f2",
                                  "97a2251c-eddc-11f1-b5ba-d260a60d91f2:x 0"])
def test_galera_info_without_a_position_is_none(text):
    assert script.parse_galera_info(text) is None


def test_restored_grastate_reads_back_as_the_backup_position_safe_to_bootstrap():
    manifest = json.loads((DATA / "manifest.debian13-lab.json").read_text())
    state = galera.parse_grastate(script.grastate_text(manifest["galera"]))
    assert state["uuid"] == manifest["galera"]["uuid"]
    assert state["seqno"] == manifest["galera"]["seqno"]
    assert state["safe_to_bootstrap"] == 1


# --------------------------------------------------------------------------- decisions


def test_last_node_drains_when_the_nodes_before_it_are_healthy():
    drain, reason = script.drain_decision("moodle3", ORDER, {"moodle1": 200, "moodle2": 200})
    assert drain and "moodle1, moodle2 serve" in reason


def test_the_active_writer_stays_in_the_pools():
    drain, reason = script.drain_decision("moodle3", ORDER, {"moodle1": None, "moodle2": 503})
    assert not drain and "no other healthy node" in reason
    drain, reason = script.drain_decision("moodle1", ORDER, {"moodle2": 200, "moodle3": 200})
    assert not drain and "active writer" in reason
    drain, reason = script.drain_decision("moodle2", ORDER, {"moodle1": 503, "moodle3": 200})
    assert not drain and "active writer" in reason


def test_a_node_behind_a_healthy_writer_drains_even_with_a_peer_down():
    drain, reason = script.drain_decision("moodle3", ORDER, {"moodle1": None, "moodle2": 200})
    assert drain and "moodle2 serve" in reason


def test_a_node_alone_stays_in_the_pools():
    drain, reason = script.drain_decision("moodle3", ["moodle3"], {})
    assert not drain and "no other healthy node" in reason


def _entries(*spec):
    return [{"name": n, "verified": v} for n, v in spec]


def test_retention_keeps_the_newest_verified_and_removes_only_older_verified():
    entries = _entries(("20261201T020000Z", True), ("20261202T020000Z", False),
                       ("20261130T020000Z", True), ("20261129T020000Z", True))
    assert script.retention_plan(entries, 2) == ["20261129T020000Z"]


@pytest.mark.parametrize("keep", [0, -3, 1])
def test_retention_never_removes_the_newest_verified_backup(keep):
    entries = _entries(("20261201T020000Z", True), ("20261130T020000Z", True))
    assert script.retention_plan(entries, keep) == ["20261130T020000Z"]


def test_manifest_problems_name_missing_and_truncated_archives(tmp_path):
    manifest = json.loads((DATA / "manifest.debian13-lab.json").read_text())
    first, second = manifest["archives"]
    (tmp_path / first["file"]).write_bytes(b"x" * first["bytes"])
    assert script.manifest_problems(manifest, str(tmp_path)) == [f"{second['file']}: missing"]
    (tmp_path / second["file"]).write_bytes(b"short")
    assert script.manifest_problems(manifest, str(tmp_path)) == [
        f"{second['file']}: 5 bytes, manifest says {second['bytes']}"]


# --------------------------------------------------------------------------- archives


def _tree(root):
    (root / "filedir" / "ab").mkdir(parents=True)
    (root / "filedir" / "ab" / "abcdef").write_bytes(os.urandom(4096))
    (root / "cache").mkdir()
    (root / "cache" / "junk").write_text("rebuilt by Moodle")
    (root / "top.txt").write_text("kept")
    return root


def _files(root):
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("encrypted", [False, True])
@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_archive_reads_back_byte_for_byte_without_the_excluded_directories(
        tmp_path, compression, encrypted):
    if encrypted and not shutil.which("openssl"):
        pytest.skip("openssl missing")
    src = _tree(tmp_path / "src")
    cfg = {"compression": compression}
    if encrypted:
        key = tmp_path / "key"
        key.write_text("a-long-enough-key-for-tests")
        cfg["encryption_key_file"] = str(key)
    _, _, suffix = script._pipeline(cfg)
    dest = tmp_path / ("dataroot" + suffix)
    written = script.write_archive(cfg, str(src), str(dest), excludes=["cache"])
    assert written["bytes"] == dest.stat().st_size
    if encrypted:
        assert b"kept" not in dest.read_bytes()
    out = tmp_path / "out"
    out.mkdir()
    got = script.read_archive(cfg, str(dest), extract_to=str(out))
    assert got["sha256"] == written["sha256"]
    assert _files(out) == {k: v for k, v in _files(src).items() if not k.startswith("cache")}


def test_archive_with_the_wrong_key_fails_clearly(tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("openssl missing")
    src = _tree(tmp_path / "src")
    key = tmp_path / "key"
    key.write_text("the-right-key-0123456789")
    cfg = {"compression": "gzip", "encryption_key_file": str(key)}
    dest = tmp_path / "dataroot.tar.gz.enc"
    script.write_archive(cfg, str(src), str(dest))
    key.write_text("the-wrong-key-0123456789")
    with pytest.raises(script.BackupError, match="failed .* reading dataroot.tar.gz.enc"):
        script.read_archive(cfg, str(dest))


def test_a_corrupted_archive_does_not_verify(tmp_path):
    target = tmp_path / "backups"
    name = "20261201T231640Z"
    (target / name).mkdir(parents=True)
    cfg = {"compression": "gzip", "target_dir": str(target)}
    src = _tree(tmp_path / "src")
    archive = script.write_archive(cfg, str(src), str(target / name / "dataroot.tar.gz"))
    manifest = {"format": script.FORMAT, "verified": True,
                "archives": [dict(archive, content="dataroot")]}
    (target / name / "manifest.json").write_text(json.dumps(manifest))
    args = argparse.Namespace(name=name)
    assert script.cmd_verify(cfg, args)["result"]
    path = target / name / "dataroot.tar.gz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(script.BackupError):
        script.cmd_verify(cfg, args)


# --------------------------------------------------------------------------- inventory


def test_inventory_and_prune_keep_verified_remove_older_and_partials(tmp_path):
    names = ["20261128T020000Z", "20261129T020000Z", "20261130T020000Z"]
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text(json.dumps({"verified": True}))
    (tmp_path / "20261201T020000Z.partial").mkdir()
    (tmp_path / "not-a-backup").mkdir()
    found = script.inventory(str(tmp_path))
    assert [e["name"] for e in found] == ["20261201T020000Z"] + names[::-1]
    removed = script.prune({"target_dir": str(tmp_path), "retention": 2})
    assert removed == ["20261128T020000Z", "20261201T020000Z.partial"]
    assert sorted(os.listdir(tmp_path)) == names[1:] + ["not-a-backup"]


# --------------------------------------------------------------------------- restore guards


def _cfg(tmp_path):
    return {"target_dir": str(tmp_path), "node": "moodle3", "galera_nodes": [],
            "datadir": str(tmp_path / "mysql"), "replication_port": 4567}


def test_restore_without_the_confirmation_refuses_before_reading_anything(tmp_path):
    recorded = json.loads((DATA / "restore-db-unconfirmed.stdout.debian13-lab.json").read_text())
    args = argparse.Namespace(name="20261201T231640Z", confirm=None)
    with pytest.raises(script.BackupError) as err:
        script.cmd_restore_db(_cfg(tmp_path), args)
    assert str(err.value) == recorded["error"]
    with pytest.raises(script.BackupError, match="refused"):
        script.cmd_restore_dataroot(_cfg(tmp_path), args)


def _empty_backup(tmp_path, name="20261201T231640Z"):
    (tmp_path / name).mkdir()
    (tmp_path / name / "manifest.json").write_text(json.dumps(
        {"format": script.FORMAT, "verified": True, "archives": []}))
    return name


def test_restore_refuses_while_mariadb_runs_here(tmp_path, monkeypatch):
    name = _empty_backup(tmp_path)
    monkeypatch.setattr(script, "server_running", lambda cfg: True)
    args = argparse.Namespace(name=name, confirm=name)
    with pytest.raises(script.BackupError, match="MariaDB runs on moodle3"):
        script.cmd_restore_db(_cfg(tmp_path), args)


def test_restore_refuses_while_galera_answers_on_another_node(tmp_path, monkeypatch):
    name = _empty_backup(tmp_path)
    cfg = dict(_cfg(tmp_path), galera_nodes=[{"name": "moodle1", "ip": "172.30.77.11"},
                                             {"name": "moodle3", "ip": "172.30.77.13"}])
    monkeypatch.setattr(script, "server_running", lambda cfg: False)
    monkeypatch.setattr(script, "port_open", lambda host, port: host == "172.30.77.11")
    args = argparse.Namespace(name=name, confirm=name)
    with pytest.raises(script.BackupError, match="Galera still runs on moodle1"):
        script.cmd_restore_db(cfg, args)


def test_unknown_backup_name_is_refused(tmp_path):
    with pytest.raises(script.BackupError, match="not a backup name"):
        script.find_backup(_cfg(tmp_path), "../etc")
    with pytest.raises(script.BackupError, match="no backup 20261201T000000Z"):
        script.find_backup(_cfg(tmp_path), "20261201T000000Z")


def test_main_answers_json_and_exit_1_for_a_missing_config(tmp_path, capsys):
    assert script.main(["--config", str(tmp_path / "none.json"), "--json", "list"]) == 1
    answer = json.loads(capsys.readouterr().out)
    assert answer["result"] is False and "cannot read the configuration" in answer["error"]


def test_script_runs_as_a_program_with_python3(tmp_path):
    proc = subprocess.run(["python3", str(REPO / "moodle_ha/backup/files/moodle_ha-backup.py"),
                           "--config", str(tmp_path / "none.json"), "--json", "list"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and json.loads(proc.stdout)["result"] is False


# --------------------------------------------------------------------------- Salt wrapper


class _Runs:
    def __init__(self, stdout, retcode=0, stderr=""):
        self.calls = []
        self.ret = {"stdout": stdout, "stderr": stderr, "retcode": retcode}

    def __call__(self, cmd, **kwargs):
        self.calls.append((cmd, kwargs))
        return self.ret


def test_module_returns_the_scripts_recorded_answer(tmp_path, monkeypatch):
    exe = tmp_path / "moodle_ha-backup"
    exe.write_text("")
    runs = _Runs((DATA / "run.stdout.debian13-lab.json").read_text(), stderr="moodle_ha-backup: x")
    monkeypatch.setattr(module, "__salt__", {"cmd.run_all": runs}, raising=False)
    answer = module.run(script=str(exe), config="/etc/moodle_ha/backup.json")
    assert answer["result"] and answer["drained"] and answer["galera"]["seqno"] == 37
    cmd, kwargs = runs.calls[0]
    assert cmd == [str(exe), "--config", "/etc/moodle_ha/backup.json", "--json", "run"]
    assert kwargs["python_shell"] is False


def test_module_raises_the_scripts_refusal(tmp_path, monkeypatch):
    exe = tmp_path / "moodle_ha-backup"
    exe.write_text("")
    recorded = (DATA / "restore-db-unconfirmed.stdout.debian13-lab.json").read_text()
    monkeypatch.setattr(module, "__salt__", {"cmd.run_all": _Runs(recorded, 1)}, raising=False)
    with pytest.raises(module.CommandExecutionError, match="pass --confirm"):
        module.restore_database("20261201T231640Z", script=str(exe))


def test_module_on_a_host_without_the_script_says_so(tmp_path):
    with pytest.raises(module.CommandExecutionError, match="not the backup node"):
        module.list_(script=str(tmp_path / "absent"))


def test_prepare_rejoin_sets_the_saved_state_aside_and_refuses_when_running(tmp_path, monkeypatch):
    for entry in ("grastate.dat", "galera.cache", "ibdata1"):
        (tmp_path / entry).write_text(entry)
    monkeypatch.setattr(module, "__salt__", {"galera.is_running": lambda: True}, raising=False)
    with pytest.raises(module.CommandExecutionError, match="MariaDB runs here"):
        module.prepare_rejoin("20261201T231640Z", "20261201T231640Z", datadir=str(tmp_path))
    with pytest.raises(module.CommandExecutionError, match="refused"):
        module.prepare_rejoin("20261201T231640Z", None, datadir=str(tmp_path))
    monkeypatch.setattr(module, "__salt__", {"galera.is_running": lambda: False}, raising=False)
    ret = module.prepare_rejoin("20261201T231640Z", "20261201T231640Z", datadir=str(tmp_path))
    assert sorted(ret["changes"]) == ["galera.cache", "grastate.dat"]
    left = sorted(os.listdir(tmp_path))
    assert "grastate.dat" not in left and "galera.cache" not in left and "ibdata1" in left
    assert len([n for n in left if ".before-restore-20261201T231640Z-" in n]) == 2

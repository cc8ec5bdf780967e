"""Unit tests for release pruning: moodle.releases, moodle.current_release,
moodle.release_plan (_modules/moodle.py) and the moodle.releases_pruned state, on a real
directory tree laid out as moodle_ha.moodle.code lays it out (release directories with the
marker, dirroot a symlink into the current one)."""

import os

import pytest

from saltmodules import load

MODULE = load("_modules/moodle.py", "moodle_module_for_releases")
STATE = load("_states/moodle.py", "moodle_state_for_releases")


@pytest.fixture
def tree(tmp_path):
    """releases/r1..r4 (marker mtimes 100..400), a stray directory without a marker, a file;
    dirroot -> releases/r2/moodle."""
    releases = tmp_path / "releases"
    for index, name in enumerate(("r1", "r2", "r3", "r4"), 1):
        code = releases / name / "moodle"
        code.mkdir(parents=True)
        (code / "index.php").write_text("<?php\n")
        marker = releases / name / MODULE.RELEASE_MARKER
        marker.write_text(name)
        os.utime(marker, (index * 100, index * 100))
    (releases / "operator-copy").mkdir()
    (releases / "notes.txt").write_text("kept\n")
    dirroot = tmp_path / "moodle"
    dirroot.symlink_to(releases / "r2" / "moodle")
    return releases, dirroot


def _state(test=False):
    STATE.__opts__ = {"test": test}
    STATE.__salt__ = {"moodle.releases": MODULE.releases,
                      "moodle.current_release": MODULE.current_release,
                      "moodle.release_plan": MODULE.release_plan}
    return STATE


def test_releases_are_the_marked_directories_newest_first(tree):
    releases, _ = tree
    assert [name for name, _ in MODULE.releases(str(releases))] == ["r4", "r3", "r2", "r1"]
    assert MODULE.releases(str(releases / "absent")) == []


def test_current_release_follows_the_dirroot_link(tree, tmp_path):
    releases, dirroot = tree
    assert MODULE.current_release(str(releases), str(dirroot)) == "r2"
    plain = tmp_path / "plain"
    plain.mkdir()
    assert MODULE.current_release(str(releases), str(plain)) is None
    outside = tmp_path / "elsewhere"
    outside.symlink_to(tmp_path)
    assert MODULE.current_release(str(releases), str(outside)) is None


@pytest.mark.parametrize(("current", "keep", "kept", "removed"), [
    ("r4", 2, ["r4", "r3"], ["r2", "r1"]),
    ("r2", 2, ["r2", "r4"], ["r3", "r1"]),  # after a rollback: the newest other stays
    ("r4", 1, ["r4"], ["r3", "r2", "r1"]),
    ("r4", 9, ["r4", "r3", "r2", "r1"], []),
])
def test_plan_keeps_the_current_and_the_newest_others(current, keep, kept, removed):
    found = [("r4", 400), ("r3", 300), ("r2", 200), ("r1", 100)]
    assert MODULE.release_plan(found, current, keep) == (kept, removed)


def test_plan_refuses_keeping_nothing():
    with pytest.raises(ValueError, match="keep must be at least 1"):
        MODULE.release_plan([("r1", 1)], "r1", 0)


def test_state_removes_only_old_marked_releases_and_reruns_clean(tree):
    releases, dirroot = tree
    ret = _state().releases_pruned(str(releases), str(dirroot), keep=2)
    assert ret["result"] is True, ret
    assert ret["changes"] == {"removed": ["r3", "r1"], "kept": ["r2", "r4"]}
    assert sorted(os.listdir(releases)) == ["notes.txt", "operator-copy", "r2", "r4"]
    assert (dirroot / "index.php").exists()
    again = _state().releases_pruned(str(releases), str(dirroot), keep=2)
    assert again["result"] is True and again["changes"] == {}, again


def test_state_removes_the_component_maps_of_removed_releases_only(tree, tmp_path):
    releases, dirroot = tree
    maps = tmp_path / "component"
    maps.mkdir()
    for name in ("r1", "r2", "r3", "r4", "other"):
        (maps / f"{name}.php").write_text("<?php\n")
    ret = _state().releases_pruned(str(releases), str(dirroot), keep=2,
                                   component_cache_dir=str(maps))
    assert ret["result"] is True, ret
    assert sorted(os.listdir(maps)) == ["other.php", "r2.php", "r4.php"]


def test_state_in_test_mode_removes_nothing(tree):
    releases, dirroot = tree
    ret = _state(test=True).releases_pruned(str(releases), str(dirroot), keep=2)
    assert ret["result"] is None and ret["changes"]["removed"] == ["r3", "r1"]
    assert sorted(p for p in os.listdir(releases) if p.startswith("r")) == [
        "r1", "r2", "r3", "r4"]


def test_state_removes_nothing_when_dirroot_is_no_release_link(tree, tmp_path):
    releases, dirroot = tree
    dirroot.unlink()
    dirroot.mkdir()
    ret = _state().releases_pruned(str(releases), str(dirroot), keep=1)
    assert ret["result"] is True and ret["changes"] == {}
    assert "no release removed" in ret["comment"]
    assert len([p for p in os.listdir(releases) if p.startswith("r")]) == 4

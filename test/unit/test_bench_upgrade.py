"""
The upgrade bench's parts that need no lab: the next release of a real Moodle archive (its
version.php raised by 0.01, every other member byte for byte) and the 503 windows of a poll.
"""

import io
import sys
import tarfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))

import upgrade  # noqa: E402

VERSION_PHP = (b"<?php\ndefined('MOODLE_INTERNAL') || die();\n"
               b"$version  = 2025100600.02;              // 20251006 = branching date\n"
               b"$release  = '5.1+ (Build: 20251010)';\n")


def _archive(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            if data is None:
                info = tarfile.TarInfo(name)
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))


def _members(path):
    with tarfile.open(path) as tar:
        return {m.name: (tar.extractfile(m).read() if m.isfile() else None) for m in tar}


@pytest.mark.parametrize("where", ["moodle/public/version.php", "moodle/version.php"])
def test_bumped_archive_raises_moodles_version_and_keeps_everything_else(tmp_path, where):
    src, out = tmp_path / "src.tgz", tmp_path / "out.tgz"
    other = b"<?php\n$version = 2024100700; // a plugin's, not Moodle's\n"
    _archive(src, [("moodle/", None), ("moodle/mod/forum/version.php", other),
                   (where, VERSION_PHP), ("moodle/index.php", b"<?php echo 1;\n")])
    assert upgrade.bumped_archive(src, out) == "2025100600.03"
    members = _members(out)
    assert members[where] == VERSION_PHP.replace(b"2025100600.02", b"2025100600.03")
    assert members["moodle/mod/forum/version.php"] == other
    assert members["moodle/index.php"] == b"<?php echo 1;\n"
    assert list(members) == list(_members(src))


def test_bumped_archive_refuses_an_archive_without_moodles_version(tmp_path):
    src = tmp_path / "src.tgz"
    _archive(src, [("moodle/lib/setup.php", b"<?php\n")])
    with pytest.raises(SystemExit, match="no \\$version"):
        upgrade.bumped_archive(src, tmp_path / "out.tgz")


def test_windows_are_runs_of_answers_that_were_not_200():
    answers = [(0.0, 200), (1.0, 503), (1.5, 503), (2.0, 0), (2.5, 200), (3.0, 503), (4.0, 200)]
    assert upgrade.windows(answers) == [(1.0, 2.0, [503, 503, 0]), (3.0, 3.0, [503])]
    assert upgrade.windows([(0.0, 200), (1.0, 200)]) == []

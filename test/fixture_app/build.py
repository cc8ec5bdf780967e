#!/usr/bin/env python3
"""
Build the fixture Moodle archive used in CI and the lab instead of the real Moodle code.

The archive is deterministic (sorted entries, fixed mtimes, root owner, normalised modes, gzip
header without name or time), so its sha256 only changes when the fixture's files change.
Its top directory is ``moodle/``, like download.moodle.org's archives.

    build.py --out PATH [--version 2025100600]   # prints the archive's sha256

``--version`` overrides ``$version`` in public/version.php (to exercise an upgrade).
"""

import argparse
import gzip
import hashlib
import io
import re
import sys
import tarfile
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "moodle"
TOP = "moodle"
MTIME = 1759708800  # 2025-10-06, the 5.1 branching date


def _info(name, size=None, directory=False):
    info = tarfile.TarInfo(name)
    info.mtime = MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if directory:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.size = size
        info.mode = 0o644
    return info


def _content(path, version):
    data = path.read_bytes()
    if version and path.relative_to(SOURCE).as_posix() == "public/version.php":
        text, count = re.subn(
            r"^\$version\s*=\s*[0-9.]+;", f"$version  = {version};", data.decode(), flags=re.M
        )
        if count != 1:
            raise SystemExit("public/version.php has no $version line")
        data = text.encode()
    return data


def build(out, version=None):
    """Write the archive to ``out`` and return its sha256 (hex)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_info(TOP, directory=True))
        for path in sorted(SOURCE.rglob("*"), key=lambda p: p.relative_to(SOURCE).as_posix()):
            if "__pycache__" in path.parts:
                continue
            name = f"{TOP}/{path.relative_to(SOURCE).as_posix()}"
            if path.is_dir():
                tar.addfile(_info(name, directory=True))
            else:
                data = _content(path, version)
                tar.addfile(_info(name, size=len(data)), io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    data = packed.getvalue()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--out", required=True, help="archive path to write (.tgz)")
    parser.add_argument("--version", help="override $version in public/version.php")
    args = parser.parse_args(argv)
    if args.version and not re.fullmatch(r"[0-9]{10}(\.[0-9]{2})?", args.version):
        parser.error("--version must look like 2025100600 or 2025100600.01")
    print(build(args.out, args.version))
    return 0


if __name__ == "__main__":
    sys.exit(main())

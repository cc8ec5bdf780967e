"""Base image recipe for the lab: Debian 12 + systemd + salt-minion in /opt/salt.

The image cache key is the sha256 of this file plus the requirement files it installs, so any
change here (or to requirements.txt / constraints.txt) builds a new image. Keep everything that
shapes the image in this file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SUITE = "bookworm"

# Packages of the base image. Only what every host needs to boot, be reached and run salt;
# the formula installs everything else through the apt proxy.
INCLUDE = [
    "systemd",
    "systemd-sysv",
    "dbus",
    "iproute2",
    "iputils-ping",
    "procps",
    "python3",
    "python3-venv",
    "ca-certificates",
    "curl",
    "gnupg",
    "less",
    "netbase",
    "kmod",
]

SALT_UNIT = """\
[Unit]
Description=The Salt Minion (lab image, /opt/salt venv)
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
KillMode=process
LimitNOFILE=8192
ExecStart=/opt/salt/bin/salt-minion
Restart=on-failure
RestartSec=3

[Install]
WantedBy=multi-user.target
"""

# Release files of the host's mirror may be older than their Valid-Until (snapshot mirrors).
APT_CONF = 'Acquire::Check-Valid-Until "false";\nAcquire::Languages "none";\n'


def recipe_files() -> list[Path]:
    return [Path(__file__).resolve(), REPO / "requirements.txt", REPO / "constraints.txt"]


def recipe_hash() -> str:
    digest = hashlib.sha256()
    for path in recipe_files():
        digest.update(path.name.encode())
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()[:16]


def host_mirrors() -> dict[str, str]:
    """Debian mirror URLs the host's own apt sources use: {"debian": url, "security": url}."""
    found: dict[str, str] = {}
    deb822 = Path("/etc/apt/sources.list.d/debian.sources")
    stanzas: list[tuple[list[str], list[str]]] = []
    if deb822.exists():
        for block in deb822.read_text().split("\n\n"):
            fields: dict[str, str] = {}
            for line in block.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if "uris" in fields and "suites" in fields:
                stanzas.append((fields["uris"].split(), fields["suites"].split()))
    listfile = Path("/etc/apt/sources.list")
    if listfile.exists():
        for line in listfile.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb":
                rest = [p for p in parts[1:] if not p.startswith("[")]
                stanzas.append(([rest[0]], [rest[1]]))
    for uris, suites in stanzas:
        for suite in suites:
            kind = "security" if suite.endswith("-security") else "debian"
            found.setdefault(kind, uris[0].rstrip("/"))
    found.setdefault("debian", "http://deb.debian.org/debian")
    found.setdefault("security", "http://deb.debian.org/debian-security")
    return found


def _run(cmd: list[str], **kw) -> None:
    print("    $", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def _chroot(root: Path, cmd: list[str]) -> None:
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "DEBIAN_FRONTEND": "noninteractive",
        "LC_ALL": "C.UTF-8",
        "HOME": "/root",
    }
    _run(["chroot", str(root), *cmd], env=env)


def sources_list(mirrors: dict[str, str]) -> str:
    return (
        f"deb {mirrors['debian']} {SUITE} main\n"
        f"deb {mirrors['debian']} {SUITE}-updates main\n"
        f"deb {mirrors['security']} {SUITE}-security main\n"
    )


def build_wheelhouse(dest: Path, python: str) -> None:
    """Wheels for the minion venv, built on the host (the image has no compiler)."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [python, "-m", "pip", "wheel", "-q", "-w", str(dest)]
    cmd += ["-r", str(REPO / "requirements.txt")]
    if (REPO / "constraints.txt").exists():
        cmd += ["-c", str(REPO / "constraints.txt")]
    _run(cmd)


def build(dest: Path, python: str = sys.executable) -> None:
    """Build the base rootfs into dest (must not exist); atomic via a temp dir + rename."""
    mirrors = host_mirrors()
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".build-", dir=dest.parent))
    root = tmp / "rootfs"
    mounted: list[Path] = []
    try:
        t0 = time.monotonic()
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=" + ",".join(INCLUDE),
                SUITE,
                str(root),
                mirrors["debian"],
            ]
        )
        print(f"    debootstrap: {time.monotonic() - t0:.0f} s", flush=True)
        (root / "etc/apt/sources.list").write_text(sources_list(mirrors))
        (root / "etc/apt/apt.conf.d/90lab").write_text(APT_CONF)
        policy = root / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        shutil.copy2("/etc/resolv.conf", root / "etc/resolv.conf")
        for fs, target in (("proc", "proc"), ("sysfs", "sys")):
            _run(["mount", "-t", fs, fs, str(root / target)])
            mounted.append(root / target)
        _chroot(root, ["apt-get", "update"])
        _chroot(root, ["apt-get", "-y", "-o", "Dpkg::Options::=--force-confold", "dist-upgrade"])
        _chroot(root, ["apt-get", "clean"])

        wheels = root / "tmp/wheelhouse"
        build_wheelhouse(wheels, python)
        shutil.copy2("/etc/ssl/certs/ca-certificates.crt", root / "tmp/host-ca.crt")
        _chroot(root, ["python3", "-m", "venv", "/opt/salt"])
        shutil.copy2(REPO / "requirements.txt", wheels / "requirements.txt")
        _chroot(
            root,
            [
                "/opt/salt/bin/pip",
                "install",
                "-q",
                "--cert",
                "/tmp/host-ca.crt",
                "--no-index",
                "--find-links",
                "/tmp/wheelhouse",
                "-r",
                "/tmp/wheelhouse/requirements.txt",
            ],
        )
        shutil.rmtree(wheels)
        (root / "tmp/host-ca.crt").unlink()
        for tool in ("salt-call", "salt-minion"):
            link = root / "usr/local/bin" / tool
            link.symlink_to(f"/opt/salt/bin/{tool}")

        unit = root / "etc/systemd/system/salt-minion.service"
        unit.write_text(SALT_UNIT)
        wants = root / "etc/systemd/system/multi-user.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        (wants / "salt-minion.service").symlink_to("/etc/systemd/system/salt-minion.service")
        (root / "etc/salt/minion.d").mkdir(parents=True, exist_ok=True)
        _chroot(root, ["systemctl", "enable", "systemd-networkd"])
        (root / "etc/systemd/system/run-rpc_pipefs.mount").symlink_to("/dev/null")

        # Per-host identity is written into each host's upper dir at boot time.
        for name in ("etc/hostname", "etc/resolv.conf"):
            (root / name).unlink(missing_ok=True)
        (root / "etc/machine-id").write_text("")
        (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
        policy.unlink()
        for path in reversed(mounted):
            _run(["umount", "-l", str(path)])
        mounted.clear()
        (tmp / "recipe").write_text(recipe_hash() + "\n")
        os.rename(tmp, dest)
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", "-l", str(path)], check=False)
        mounts = Path("/proc/mounts").read_text().splitlines()
        still_mounted = any(str(tmp) in line for line in mounts)
        if tmp.exists() and not still_mounted:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    target = Path(sys.argv[1])
    build(target)

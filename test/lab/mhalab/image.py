"""Base image recipe for the lab: Debian (one image per release) + systemd + salt-minion in
/opt/salt.

The image cache key is the release plus the sha256 of this file and the requirement files it
installs, so any change here (or to requirements.txt / constraints.txt) builds a new image.
Keep everything that shapes the image in this file.

Salt's wheels are built for the image's own Python (3.11 on bookworm, 3.13 on trixie) in a
throwaway overlay of the image with Debian's compiler added (timelib has no wheel): the image
itself has no compiler, and nothing but the Debian mirror and PyPI is used.
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

REPO = Path(__file__).resolve().parents[3]

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
# Per release: packages beyond INCLUDE, units that fail in a container (masked).
RELEASES = {
    "bookworm": {"include": [], "mask": ["run-rpc_pipefs.mount"]},
    "trixie": {"include": [], "mask": ["run-rpc_pipefs.mount"]},
}
# What the wheel builder adds to its overlay of the image (never to the image).
BUILD_DEPS = ["gcc", "libc6-dev", "python3-dev"]

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


def recipe_hash(release: str) -> str:
    digest = hashlib.sha256(release.encode())
    for path in recipe_files():
        digest.update(path.name.encode())
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()[:16]


def image_name(release: str) -> str:
    """The cache dir name of the release's image for the current recipe."""
    return f"base-{release}-{recipe_hash(release)}"


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


def debian_sources(release: str, mirrors: dict[str, str]) -> str:
    """deb822 sources of the release, its updates and its security suite."""
    return (
        f"Types: deb\nURIs: {mirrors['debian']}\nSuites: {release} {release}-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        f"Types: deb\nURIs: {mirrors['security']}\nSuites: {release}-security\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )


class Builder:
    """Runs the build's commands with their output in one log file."""

    def __init__(self, log: Path):
        self.log = log

    def run(self, cmd: list, **kw) -> None:
        with open(self.log, "a") as out:
            out.write("$ " + " ".join(str(c) for c in cmd) + "\n")
            out.flush()
            proc = subprocess.run([str(c) for c in cmd], stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, **kw)
        if proc.returncode != 0:
            lines = self.log.read_text(errors="replace").splitlines()[-15:]
            raise SystemExit(
                f"\nimage build: {' '.join(str(c) for c in cmd[:5])} ... failed"
                f" ({proc.returncode}):\n" + "\n".join("    | " + line for line in lines)
                + f"\nfull output: {self.log}"
            )

    def chroot(self, root: Path, cmd: list, **env) -> None:
        base = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "DEBIAN_FRONTEND": "noninteractive",
            "LC_ALL": "C.UTF-8",
            "HOME": "/root",
        }
        self.run(["chroot", root, *cmd], env={**base, **env})

    def note(self, text: str) -> None:
        with open(self.log, "a") as out:
            out.write(f"# {text}\n")


def _proxy_env() -> dict[str, str]:
    """The host's proxy settings, if any, for pip in the wheel builder."""
    names = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
    return {n: os.environ[n] for n in names if n in os.environ}


def build_wheelhouse(b: Builder, root: Path, work: Path, dest: Path) -> None:
    """Wheels of requirements.txt (+ constraints.txt) for the image's Python, built in an
    overlay of the image with a compiler added; the image itself stays as it is."""
    upper, wdir, merged = work / "upper", work / "work", work / "merged"
    for d in (upper, wdir, merged):
        d.mkdir(parents=True)
    mounted: list[Path] = []
    try:
        b.run(["mount", "-t", "overlay", "overlay", "-o",
               f"lowerdir={root},upperdir={upper},workdir={wdir}", merged])
        mounted.append(merged)
        for fs, target in (("proc", "proc"), ("sysfs", "sys")):
            b.run(["mount", "-t", fs, fs, merged / target])
            mounted.append(merged / target)
        req = merged / "tmp/req"
        req.mkdir(parents=True)
        for name in ("requirements.txt", "constraints.txt"):
            if (REPO / name).exists():
                shutil.copy2(REPO / name, req / name)
        shutil.copy2("/etc/ssl/certs/ca-certificates.crt", req / "host-ca.crt")
        b.chroot(merged, ["apt-get", "install", "-y", "-q", "--no-install-recommends",
                          *BUILD_DEPS])
        b.chroot(merged, ["python3", "-m", "venv", "/tmp/wheel-venv"])
        cmd = ["/tmp/wheel-venv/bin/pip", "wheel", "-q", "--disable-pip-version-check",
               "-w", "/tmp/wheelhouse", "-r", "/tmp/req/requirements.txt"]
        if (req / "constraints.txt").exists():
            cmd += ["-c", "/tmp/req/constraints.txt"]
        # The host's CA bundle, through the environment so that pip's isolated build
        # environments (setuptools for timelib) use it too.
        ca = "/tmp/req/host-ca.crt"
        b.chroot(merged, cmd, PIP_NO_INPUT="1", PIP_CERT=ca, SSL_CERT_FILE=ca,
                 **_proxy_env())
        shutil.copytree(merged / "tmp/wheelhouse", dest)
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", "-l", str(path)], check=False)
    shutil.rmtree(work, ignore_errors=True)


def build(dest: Path, release: str, log: Path) -> None:
    """Build the release's base rootfs into dest (must not exist); atomic via a temp dir +
    rename. Every command's output goes to `log`."""
    b = Builder(log)
    spec = RELEASES[release]
    mirrors = host_mirrors()
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".build-", dir=dest.parent))
    root = tmp / "rootfs"
    mounted: list[Path] = []
    try:
        t0 = time.monotonic()
        b.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=" + ",".join(INCLUDE + spec["include"]),
                release,
                root,
                mirrors["debian"],
            ]
        )
        b.note(f"debootstrap: {time.monotonic() - t0:.0f} s")
        (root / "etc/apt/sources.list").unlink(missing_ok=True)
        (root / "etc/apt/sources.list.d/debian.sources").write_text(
            debian_sources(release, mirrors))
        (root / "etc/apt/apt.conf.d/90lab").write_text(APT_CONF)
        policy = root / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        (root / "etc/resolv.conf").unlink(missing_ok=True)
        shutil.copy2("/etc/resolv.conf", root / "etc/resolv.conf")
        for fs, target in (("proc", "proc"), ("sysfs", "sys")):
            b.run(["mount", "-t", fs, fs, root / target])
            mounted.append(root / target)
        b.chroot(root, ["apt-get", "update", "-q"])
        b.chroot(root, ["apt-get", "-y", "-q", "-o", "Dpkg::Options::=--force-confold",
                        "dist-upgrade"])

        t1 = time.monotonic()
        wheels = root / "tmp/wheelhouse"
        build_wheelhouse(b, root, tmp / "wheel-build", wheels)
        b.note(f"wheelhouse: {time.monotonic() - t1:.0f} s")
        b.chroot(root, ["apt-get", "clean"])
        b.chroot(root, ["python3", "-m", "venv", "/opt/salt"])
        shutil.copy2(REPO / "requirements.txt", wheels / "requirements.txt")
        b.chroot(root, ["/opt/salt/bin/pip", "install", "-q", "--disable-pip-version-check",
                        "--no-index", "--find-links", "/tmp/wheelhouse",
                        "-r", "/tmp/wheelhouse/requirements.txt"])
        shutil.rmtree(wheels)
        for tool in ("salt-call", "salt-minion"):
            (root / "usr/local/bin" / tool).symlink_to(f"/opt/salt/bin/{tool}")

        (root / "etc/systemd/system/salt-minion.service").write_text(SALT_UNIT)
        wants = root / "etc/systemd/system/multi-user.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        (wants / "salt-minion.service").symlink_to("/etc/systemd/system/salt-minion.service")
        (root / "etc/salt/minion.d").mkdir(parents=True, exist_ok=True)
        b.chroot(root, ["systemctl", "enable", "systemd-networkd"])
        for unit in spec["mask"]:
            (root / "etc/systemd/system" / unit).symlink_to("/dev/null")

        # Per-host identity is written into each host's upper dir at boot time.
        for name in ("etc/hostname", "etc/resolv.conf"):
            (root / name).unlink(missing_ok=True)
        (root / "etc/machine-id").write_text("")
        (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
        policy.unlink()
        for path in reversed(mounted):
            b.run(["umount", "-l", path])
        mounted.clear()
        (tmp / "recipe").write_text(f"{release} {recipe_hash(release)}\n")
        os.rename(tmp, dest)
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", "-l", str(path)], check=False)
        mounts = Path("/proc/mounts").read_text()
        if tmp.exists() and str(tmp) not in mounts:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    build(Path(sys.argv[2]), sys.argv[1], Path(sys.argv[3]) if len(sys.argv) > 3 else
          Path(f"/tmp/image-{sys.argv[1]}.log"))

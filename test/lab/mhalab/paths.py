"""Where the lab keeps its state, and what it is made of: lab dir, topology, release, pillar.

Everything is named once here. Overrides (environment):
  MOODLE_HA_LAB_DIR      the lab dir (default <repo>/.lab): state, configs, logs, host disks
  MOODLE_HA_LAB_CACHE    the base image cache (default /var/cache/moodle_ha-lab)
  MOODLE_HA_LAB_PILLAR   the pillar file the topology comes from (default <repo>/pillar.example)
  MOODLE_HA_LAB_RELEASE  the Debian release of the hosts (default trixie)
  MOODLE_HA_LAB_BRIDGE, MOODLE_HA_LAB_CGROUP  bridge and cgroup names (a second, private lab)
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path

import yaml  # the venv's (salt depends on PyYAML)

REPO = Path(__file__).resolve().parents[3]
LAB_DIR = Path(os.environ.get("MOODLE_HA_LAB_DIR", REPO / ".lab")).resolve()
CACHE_DIR = Path(os.environ.get("MOODLE_HA_LAB_CACHE", "/var/cache/moodle_ha-lab"))
BRIDGE = os.environ.get("MOODLE_HA_LAB_BRIDGE", "mhalab0")
CGROUP_NAME = os.environ.get("MOODLE_HA_LAB_CGROUP", "moodle_ha-lab")
DEFAULT_PILLAR = REPO / "pillar.example"
RELEASES = ("bookworm", "trixie")
DEFAULT_RELEASE = "trixie"

STATE_FILE = LAB_DIR / "state.json"
SALT_CONF_DIR = LAB_DIR / "etc" / "salt"
PING_CONF_DIR = LAB_DIR / "etc" / "salt-ping"
PILLAR_DIR = LAB_DIR / "pillar"
SRV_DIR = LAB_DIR / "srv"
LOG_DIR = LAB_DIR / "log"
HOSTS_DIR = LAB_DIR / "hosts"
FORMULA_ROOT = LAB_DIR / "formula"
ARCHIVE = SRV_DIR / "moodle_ha_source" / "moodle.tgz"
SECRETS_FILE = PILLAR_DIR / "lab_secrets.sls"
# The lab's copy of the topology's pillar file, served as pillar `moodle_ha`.
PILLAR_COPY = PILLAR_DIR / "moodle_ha.sls"
ACNG_PORT = 3142
# Held by the benchmarks for their whole run, so no state run changes the hosts under a probe.
LAB_LOCK = "/tmp/moodle_ha-lab.lock"
# The lab's own CA (its key never leaves the lab dir) and the site certificate it signs for
# the VIP, given to the formula as lb:tls:certificate and secrets:tls_key.
TLS_DIR = LAB_DIR / "tls"
TLS_CA = TLS_DIR / "ca.pem"


def load_state(lab_dir: Path = LAB_DIR) -> dict:
    path = lab_dir / STATE_FILE.name
    if path.exists():
        return json.loads(path.read_text())
    return {}


def save_state(state: dict) -> None:
    LAB_DIR.mkdir(parents=True, exist_ok=True)
    tmp = STATE_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    tmp.replace(STATE_FILE)


def yaml_dump(data) -> str:
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=True)


def pillar_source(explicit: str | Path | None = None, fresh: bool = False) -> Path:
    """The pillar file the topology comes from, in this order: `explicit` (up --pillar), the
    lab's own copy once it is up (unless `fresh`: for `up`), MOODLE_HA_LAB_PILLAR,
    pillar.example."""
    if explicit:
        return Path(explicit).resolve()
    if PILLAR_COPY.exists() and not fresh:
        return PILLAR_COPY
    return Path(os.environ.get("MOODLE_HA_LAB_PILLAR", DEFAULT_PILLAR)).resolve()


def topology(source: str | Path | None = None) -> dict:
    """moodle_ha:topology of the pillar file (default: pillar_source()): the single source of
    names, IPs and roles."""
    path = Path(source).resolve() if source else pillar_source()
    data = yaml.safe_load(path.read_text()) or {}
    try:
        topo = data["moodle_ha"]["topology"]
    except (KeyError, TypeError):
        raise SystemExit(f"{path}: no moodle_ha:topology") from None
    net = ipaddress.ip_network(topo["subnet"])
    return {
        "source": str(path),
        "subnet": str(net),
        "prefix": net.prefixlen,
        "gateway": str(next(net.hosts())),
        "vip": topo["vip"],
        "hosts": {
            name: {"ip": h["ip"], "roles": list(h["roles"])} for name, h in topo["hosts"].items()
        },
    }


def release(explicit: str | None = None) -> str:
    """The Debian release of the hosts: `explicit` (up --release), MOODLE_HA_LAB_RELEASE,
    trixie."""
    name = explicit or os.environ.get("MOODLE_HA_LAB_RELEASE") or DEFAULT_RELEASE
    if name not in RELEASES:
        raise SystemExit(f"unknown release {name!r}: one of {', '.join(RELEASES)}")
    return name


def _merge(dst: dict, src: dict) -> None:
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _merge(dst[key], value)
        else:
            dst[key] = value


def lab_pillar(lab_dir: Path = LAB_DIR) -> dict:
    """The lab's moodle_ha pillar (topology, ports, secrets), merged in the top file's order."""
    merged: dict = {}
    for name in (PILLAR_COPY.name, SECRETS_FILE.name, "lab.sls"):
        path = lab_dir / PILLAR_DIR.name / name
        if path.exists():
            _merge(merged, yaml.safe_load(path.read_text()) or {})
    return merged.get("moodle_ha", {})

"""The lab bridge and the hosts' ports on it (cut/heal)."""

from __future__ import annotations

from .paths import BRIDGE
from .procs import capture, run


def veth_name(host: str) -> str:
    return ("vb-" + host)[:15]


def bridge_exists() -> bool:
    return capture(["ip", "link", "show", "dev", BRIDGE]).returncode == 0


def bridge_up(topo: dict) -> None:
    if not bridge_exists():
        run(["ip", "link", "add", BRIDGE, "type", "bridge"], "network.log")
    run(["ip", "addr", "replace", f"{topo['gateway']}/{topo['prefix']}", "dev", BRIDGE],
        "network.log")
    run(["ip", "link", "set", BRIDGE, "up"], "network.log")


def bridge_down() -> None:
    if bridge_exists():
        capture(["ip", "link", "del", BRIDGE], check=True)


def link_state(host: str) -> str:
    """'up', 'cut' (the host's bridge port is down) or '-' (no port: host not running)."""
    link = capture(["ip", "-o", "link", "show", "dev", veth_name(host)]).stdout
    return "cut" if link and "state DOWN" in link else ("up" if link else "-")


def set_link(host: str, up: bool) -> None:
    capture(["ip", "link", "set", veth_name(host), "up" if up else "down"], check=True)

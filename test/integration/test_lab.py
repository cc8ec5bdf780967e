"""
Lab: the five hosts boot with their topology identity and answer the master; the failure
injections really do what they say (kill = power loss, cut = no traffic either way).
"""

from __future__ import annotations

import subprocess
import time

import pytest

from mhalab.testkit import until

pytestmark = pytest.mark.lab

# A load balancer: the injections below disturb the cluster least there.
VICTIM = "lb2"
PEER = "moodle1"


def host_ping(ip: str) -> bool:
    """One ICMP echo from the lab host (the master's side of the bridge)."""
    return (
        subprocess.run(["ping", "-c1", "-W1", ip], capture_output=True, check=False).returncode == 0
    )


def peer_ping(host_exec, host: str, ip: str) -> bool:
    return host_exec(host, ["ping", "-c1", "-W1", ip], timeout=30).returncode == 0


def test_all_five_minions_answer_the_lab_master(lab, salt):
    assert salt("*", "test.ping") == {host: True for host in lab.hosts}


def test_each_host_has_its_topology_hostname_ip_and_roles(lab, salt, host_exec):
    for host, info in lab.hosts.items():
        name = host_exec(host, ["hostname"])
        assert name.stdout.strip() == host
        addrs = host_exec(host, ["ip", "-4", "-o", "addr", "show", "dev", "host0"])
        assert f"inet {info['ip']}/{lab.topology['prefix']} " in addrs.stdout
    roles = salt("*", "grains.get", "roles")
    assert roles == {host: info["roles"] for host, info in lab.hosts.items()}


def test_hosts_reach_each_other_and_the_apt_proxy(lab, host_exec):
    ip = lab.hosts[VICTIM]["ip"]
    gateway = lab.topology["gateway"]
    assert peer_ping(host_exec, PEER, ip)
    proxy = host_exec(
        VICTIM,
        ["python3", "-c", f"import socket; socket.create_connection(('{gateway}', 3142), 3)"],
    )
    assert proxy.returncode == 0, proxy.stderr


def test_kill_powers_the_host_off_and_start_boots_it_again_on_the_same_disk(lab, salt, host_exec):
    ip = lab.hosts[VICTIM]["ip"]
    nspawn = lab.nspawn_pid(VICTIM)
    assert nspawn and lab.container_pids(VICTIM)
    marker = f"/root/lab-marker-{time.time_ns()}"
    assert host_exec(VICTIM, ["touch", marker]).returncode == 0
    lab.run("kill", VICTIM)
    try:
        assert not host_ping(ip)
        assert until(lambda: lab.container_pids(VICTIM) == [], 15), lab.container_pids(VICTIM)
        assert salt(VICTIM, "test.ping", timeout=3).get(VICTIM) is not True
    finally:
        lab.run("start", VICTIM)
    assert lab.nspawn_pid(VICTIM) != nspawn
    assert host_ping(ip)
    assert salt(VICTIM, "test.ping") == {VICTIM: True}
    assert host_exec(VICTIM, ["rm", marker]).returncode == 0


def test_stop_powers_off_gracefully_and_start_brings_the_minion_back(lab, salt):
    ip = lab.hosts[VICTIM]["ip"]
    lab.run("stop", VICTIM)
    try:
        assert lab.container_pids(VICTIM) == []
        assert not host_ping(ip)
    finally:
        lab.run("start", VICTIM)
    assert salt(VICTIM, "test.ping") == {VICTIM: True}


def test_cut_isolates_the_host_both_ways_and_heal_restores_it(lab, salt, host_exec):
    ip = lab.hosts[VICTIM]["ip"]
    peer_ip = lab.hosts[PEER]["ip"]
    lab.run("cut", VICTIM)
    try:
        assert not host_ping(ip)
        assert not peer_ping(host_exec, PEER, ip)
        assert not peer_ping(host_exec, VICTIM, peer_ip)
        assert not peer_ping(host_exec, VICTIM, lab.topology["gateway"])
        assert salt(VICTIM, "test.ping", timeout=3).get(VICTIM) is not True
    finally:
        lab.run("heal", VICTIM)
    assert until(lambda: host_ping(ip), 15)
    assert until(lambda: peer_ping(host_exec, PEER, ip), 15)
    assert peer_ping(host_exec, VICTIM, peer_ip)
    assert until(lambda: salt(VICTIM, "test.ping", timeout=5) == {VICTIM: True}, 90)

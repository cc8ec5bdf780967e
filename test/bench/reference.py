"""
The throughput bench's reference: a standalone Moodle on one extra lab host (`solo1`), next to
the cluster on the same machine and from the same Moodle archive.

It is what a single-server Moodle looks like when installed by hand from Debian's packages:
Apache with mod_php, MariaDB on the same host over its socket, the dataroot on local disk,
Moodle's own defaults otherwise (file sessions, file cache in the dataroot). PHP gets the same
ini file as the cluster's web nodes (copied from the first one), so the comparison is about the
topology, not about PHP settings. The host's salt-minion is masked: it is no part of the
cluster, the orchestration never sees it, and `lab.py down` removes it with the rest.

Secrets: the database and admin passwords are random per build, go to the host on stdin
(mariadb's SQL, config.php, the installer wrapper of _modules/moodle.py) and stay in the
bench process.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "test" / "lab"))

from mhalab import hosts as labhosts  # noqa: E402
from mhalab import testkit  # noqa: E402
from mhalab.daemons import random_secret  # noqa: E402
from mhalab.paths import ARCHIVE, load_state, save_state  # noqa: E402

HOST = "solo1"
PACKAGES = ["apache2", "libapache2-mod-php", "php-cli", "php-mysql", "php-xml", "php-mbstring",
            "php-curl", "php-zip", "php-gd", "php-intl", "php-soap", "php-opcache",
            "mariadb-server"]
VHOST = """<VirtualHost *:80>
    DocumentRoot /var/www/moodle/public
    <Directory /var/www/moodle/public>
        Options -Indexes +FollowSymLinks
        AllowOverride None
        Require all granted
        AcceptPathInfo On
        DirectoryIndex index.php
        FallbackResource /r.php
    </Directory>
</VirtualHost>
"""
CONFIG = """<?php
unset($CFG);
global $CFG;
$CFG = new stdClass();
$CFG->dbtype    = 'mariadb';
$CFG->dblibrary = 'native';
$CFG->dbhost    = 'localhost';
$CFG->dbname    = 'moodle';
$CFG->dbuser    = 'moodle';
$CFG->dbpass    = '{dbpass}';
$CFG->prefix    = 'mdl_';
$CFG->dboptions = ['dbpersist' => 0, 'dbsocket' => '', 'dbcollation' => 'utf8mb4_unicode_ci'];
$CFG->wwwroot   = 'http://{ip}';
$CFG->dataroot  = '/var/moodledata';
$CFG->admin     = 'admin';
$CFG->directorypermissions = 02770;
$CFG->routerconfigured = true;
require_once(__DIR__ . '/lib/setup.php');
"""


def _password() -> str:
    # Letters and digits (nothing PHP-quoting needs), plus what Moodle's password policy wants.
    return "Ref-" + random_secret(20) + "-1"


def _leader() -> int:
    leader = labhosts.leader_pid(HOST, load_state())
    if not leader:
        raise SystemExit(f"{HOST} is not running")
    return leader


def run(cmd: list[str], stdin: bytes | str | None = None, timeout: float = 600,
        check: bool = True) -> subprocess.CompletedProcess:
    """cmd inside the reference host (nsenter into its init's namespaces)."""
    data = stdin.encode() if isinstance(stdin, str) else stdin
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "LANG": "C.UTF-8", "HOME": "/root", "DEBIAN_FRONTEND": "noninteractive"}
    proc = subprocess.run(["nsenter", "-t", str(_leader()), "-a", *cmd], input=data,
                          capture_output=True, timeout=timeout, env=env, check=False)
    if check and proc.returncode != 0:
        raise SystemExit(f"{HOST}: {' '.join(cmd[:3])} failed ({proc.returncode}):\n"
                         f"{proc.stdout.decode(errors='replace')[-1500:]}"
                         f"{proc.stderr.decode(errors='replace')[-1500:]}")
    return proc


def address(topo: dict) -> str:
    """.41 of the lab subnet (the layout keeps .11+ app, .21+ lb, .31+ arbitrators)."""
    ip = ipaddress.ip_network(topo["subnet"]).network_address + 41
    used = {h["ip"] for h in topo["hosts"].values()} | {topo["vip"]}
    if str(ip) in used:
        raise SystemExit(f"{ip} is a cluster host's address: no room for {HOST}")
    return str(ip)


def running() -> bool:
    return labhosts.leader_pid(HOST, load_state()) is not None


def _install_wrapper() -> str:
    """The installer wrapper of the formula's moodle module (admin password on stdin)."""
    spec = importlib.util.spec_from_file_location("moodle_ha_moodle", REPO / "_modules/moodle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._INSTALL_WRAPPER_PHP


def up(log) -> dict:
    """Boot and install the reference; returns {"base": URL, "password": admin password}."""
    topo = testkit.topology()
    ip = address(topo)
    state = load_state()
    start = time.monotonic()
    labhosts.prepare_upper(HOST, {"ip": ip, "roles": []}, topo)
    unit = labhosts.host_upper(HOST) / "etc/systemd/system/salt-minion.service"
    unit.parent.mkdir(parents=True, exist_ok=True)
    if unit.exists() or unit.is_symlink():
        unit.unlink()
    unit.symlink_to("/dev/null")
    labhosts.boot_host(HOST, Path(state["rootfs"]), state)
    state = load_state()
    state["hosts"][HOST]["leader"] = labhosts.wait_leader(HOST, state)
    state["hosts"][HOST]["reference"] = True
    save_state(state)
    run(["sh", "-c", f"for i in $(seq 300); do ip -4 -o addr show dev host0 | grep -q ' {ip}/'"
         " && exit 0; sleep 0.2; done; exit 1"], timeout=90)
    log(f"{HOST} ({ip}) booted in {time.monotonic() - start:.1f} s")

    run(["apt-get", "update", "-q"], timeout=600)
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES], timeout=1200)
    ini = testkit.host_exec("moodle1", "cat /etc/php/*/mods-available/moodle.ini").stdout
    run(["sh", "-c", "cat > \"$(ls -d /etc/php/*/mods-available)/moodle.ini\" && phpenmod moodle"],
        stdin=ini)
    log(f"{HOST}: packages and the cluster's PHP ini in {time.monotonic() - start:.1f} s")

    with open(ARCHIVE, "rb") as fh:
        run(["sh", "-c", "rm -rf /var/www/moodle && mkdir -p /var/www && tar xzf - -C /var/www"
             " && chown -R root:root /var/www/moodle && chmod -R u=rwX,go=rX /var/www/moodle"
             " && install -d -o www-data -g www-data -m 2770 /var/moodledata"],
            stdin=fh.read(), timeout=600)
    run(["sh", "-c", "cat > /etc/apache2/sites-available/moodle.conf && a2dissite -q 000-default"
         " && a2ensite -q moodle && systemctl restart apache2"], stdin=VHOST)

    dbpass, adminpass = _password(), _password()
    run(["mariadb"], stdin="CREATE DATABASE IF NOT EXISTS moodle DEFAULT CHARACTER SET utf8mb4"
        " COLLATE utf8mb4_unicode_ci;\n"
        f"CREATE OR REPLACE USER 'moodle'@'localhost' IDENTIFIED BY '{dbpass}';\n"
        "GRANT ALL ON moodle.* TO 'moodle'@'localhost';\n")
    run(["sh", "-c", "umask 027 && cat > /var/www/moodle/config.php"
         " && chgrp www-data /var/www/moodle/config.php"],
        stdin=CONFIG.format(dbpass=dbpass, ip=ip))
    run(["runuser", "-u", "www-data", "--", "php", "-r", _install_wrapper(),
         "/var/www/moodle/admin/cli/install_database.php", "--agree-license",
         "--adminuser=admin", "--adminemail=admin@example.invalid", "--fullname=Standalone",
         "--shortname=standalone"], stdin=adminpass + "\n", timeout=1800)
    log(f"{HOST}: Moodle installed in {time.monotonic() - start:.1f} s")
    return {"base": f"http://{ip}", "password": adminpass, "ip": ip}


def down(log) -> None:
    state = load_state()
    if HOST not in state.get("hosts", {}):
        return
    labhosts.stop_host(HOST, state, graceful=True, timeout=20)
    state = load_state()
    state["hosts"].pop(HOST, None)
    save_state(state)
    shutil.rmtree(labhosts.host_dir(HOST), ignore_errors=True)
    for cg in labhosts.cgroup_dirs(HOST):
        try:
            os.rmdir(cg)
        except OSError:
            pass
    log(f"{HOST} removed")


SAVED = labhosts.host_dir(HOST) / "reference.json"


def save(info: dict) -> None:
    """Keeps the reference's URL and admin password for a later run (mode 0600, in the lab
    dir, removed with the host)."""
    fd = os.open(SAVED, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(info, fh)


def saved() -> dict | None:
    try:
        return json.loads(SAVED.read_text())
    except (OSError, ValueError):
        return None

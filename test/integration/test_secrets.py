"""
Lab: every secret reaches every file that carries it byte-exact, read back with the real
parsers on the hosts (my_print_defaults, php, HAProxy's own auth), and the paths that use them
work: clustercheck logs in on every node, the stats page takes the exact password, a node
rejoins by a full state transfer (SST) with the SST account.

The lab's secrets (test/lab/mhalab/daemons.py lab_secret) contain quotes, `#`, spaces,
backslashes, `$`, `${HOME}`, `%`, `:`, `;` and non-ASCII, so a deploy that converges at all
already proves most of this; these tests say which file would be wrong.
"""

import base64
import urllib.error
import urllib.request

import pytest

from mhalab import testkit

pytestmark = pytest.mark.lab

GALERA_CNF = "/etc/mysql/mariadb.conf.d/60-galera.cnf"
CLUSTERCHECK_CNF = "/etc/moodle_ha/clustercheck.cnf"
CONFIG_PHP = "/var/www/moodle/config.php"

# config.php ends by requiring lib/setup.php (which boots Moodle); read the settings without it.
_READ_DBPASS_PHP = r"""
$text = file_get_contents($argv[1]);
$text = preg_replace('/^require_once.*setup\.php.*$/m', '', $text);
eval('?>' . $text);
echo bin2hex($CFG->dbpass);
"""


def _hosts(topology, role):
    return sorted(n for n, spec in topology["hosts"].items() if role in spec["roles"])


def _exec_ok(host, argv, timeout=120):
    proc = testkit.host_exec(host, argv, timeout=timeout)
    assert proc.returncode == 0, f"{host}: {argv[0]} failed:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def _option(host, path, group, name):
    """The value of --NAME in GROUP of PATH as MariaDB's own option parser reads it
    (MariaDB 11 masks passwords unless --show; 10.11 has no --show)."""
    proc = testkit.host_exec(host, ["my_print_defaults", f"--defaults-file={path}", "--show",
                                    group])
    out = proc.stdout if proc.returncode == 0 else _exec_ok(
        host, ["my_print_defaults", f"--defaults-file={path}", group])
    values = [line.split("=", 1)[1] for line in out.splitlines()
              if line.startswith(f"--{name}=")]
    assert values, f"{host}: no {name} in [{group}] of {path}:\n{out}"
    return values[-1]


def test_lab_secrets_are_hard(secrets):
    """Guard: the lab really deploys with the characters that break naive templates."""
    for key in ("moodle_db_password", "sst_password", "clustercheck_password",
                "haproxy_stats_password"):
        # MariaDB's SST donor script cannot carry a backslash (validation refuses it).
        hard = (" ", "#", "'", '"', "$", "é") + (() if key == "sst_password" else ("\\",))
        for char in hard:
            assert char in secrets[key], f"lab secret {key} lacks {char!r}"


def test_option_files_carry_the_exact_sst_and_clustercheck_passwords(deployed, topology,
                                                                      secrets):
    pillar = testkit.pillar()
    sst_user = pillar.get("galera", {}).get("sst_user", "sst")
    check_user = pillar.get("galera", {}).get("clustercheck_user", "clustercheck")
    for host in _hosts(topology, "galera"):
        assert _option(host, GALERA_CNF, "galera", "wsrep_sst_auth") == (
            f"{sst_user}:{secrets['sst_password']}"), host
        assert _option(host, CLUSTERCHECK_CNF, "client", "password") == (
            secrets["clustercheck_password"]), host
        assert _option(host, CLUSTERCHECK_CNF, "client", "user") == check_user, host


def test_clustercheck_logs_in_on_every_node(deployed, topology, clustercheck_http):
    for host in _hosts(topology, "galera"):
        status, body = clustercheck_http(host)
        assert status == 200, f"{host} clustercheck answered {status}: {body[:200]}"


def test_config_php_carries_the_exact_db_password(deployed, topology, secrets):
    for host in _hosts(topology, "web"):
        out = _exec_ok(host, ["php", "-r", _READ_DBPASS_PHP, CONFIG_PHP])
        assert bytes.fromhex(out.strip()) == secrets["moodle_db_password"].encode(), host


def _stats(ip, port, user, password):
    """Status of the stats page with this login (https:// with lb:tls:enabled: it shows the
    site's certificate, made for the VIP, so the CA is checked but not the host IP)."""
    tls = testkit.pillar().get("lb", {}).get("tls", {}).get("enabled", True)
    req = urllib.request.Request(f"{'https' if tls else 'http'}://{ip}:{port}/")
    token = base64.b64encode(user.encode() + b":" + password.encode()).decode()
    req.add_header("Authorization", f"Basic {token}")
    context = testkit.tls_context(check_hostname=False) if tls else None
    try:
        with urllib.request.urlopen(req, timeout=5, context=context) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_stats_page_takes_the_exact_password_and_nothing_else(deployed, topology, secrets):
    haproxy = testkit.pillar().get("lb", {}).get("haproxy", {})
    port, user = haproxy.get("stats_port", 8404), haproxy.get("stats_user", "admin")
    password = secrets["haproxy_stats_password"]
    for host in _hosts(topology, "lb"):
        ip = topology["hosts"][host]["ip"]
        assert _stats(ip, port, user, password) == 200, host
        # What a parser that splits on spaces or stops at `#` would have kept.
        for wrong in (password.split(" ")[0], password.split("#")[0], password + "x"):
            assert _stats(ip, port, user, wrong) == 401, (host, wrong)


def _galera_status(host, name):
    out = _exec_ok(host, ["mariadb", "-N", "-B", "-e", f"SHOW GLOBAL STATUS LIKE '{name}'"])
    parts = out.split("\t")
    return parts[1].strip() if len(parts) == 2 else ""


def test_a_node_rejoins_by_sst_with_the_sst_account(deployed, topology):
    galera = _hosts(topology, "galera")
    # Neither 3307's first server (the usual writer) nor the backup node (the last).
    host = galera[1]
    _exec_ok(host, ["systemctl", "stop", "mariadb"], timeout=300)
    # Without grastate.dat the node knows no position: the donor must send a full snapshot.
    _exec_ok(host, ["sh", "-c", "cd /var/lib/mysql && mv grastate.dat grastate.dat.pre-sst"
                                " && rm -f galera.cache gvwstate.dat"])
    since = _exec_ok(host, ["date", "+%Y-%m-%d %H:%M:%S"]).strip()
    _exec_ok(host, ["systemctl", "start", "mariadb"], timeout=600)
    synced = testkit.until(lambda: _galera_status(host, "wsrep_local_state_comment") == "Synced",
                           timeout=300, interval=2)
    log = testkit.host_exec(host, ["journalctl", "-u", "mariadb", "--since", since,
                                   "--no-pager"]).stdout
    assert synced, f"{host} did not reach Synced after the SST:\n{log[-3000:]}"
    sst = [line for line in log.splitlines() if "SST" in line]
    print(f"\n{host} rejoined by SST in {synced.seconds:.1f} s after start; "
          f"{len(sst)} SST log lines, last: {sst[-1][-160:] if sst else None}")
    assert any("SST" in line and ("complete" in line.lower() or "received" in line.lower())
               for line in sst), log[-3000:]

"""
Lab, Galera over TLS (galera:tls; the arbitrator topology, test/lab/topologies/garbd.yaml,
switches it on and the lab's CA signs the one galera certificate): the replication port of
every voter (galera nodes and garbd) speaks TLS with that certificate and refuses a peer
whose certificate the CA did not sign, and a galera node whose datadir is emptied rejoins
by a state snapshot transfer over TLS (the SST script logs it on joiner and donor) with
every row. Skipped on a lab where galera:tls is off (the default five hosts).
"""

import json
import time

import pytest

from mhalab import testkit
from mhalab.testkit import host_exec, until

pytestmark = pytest.mark.lab

# Run on a lab host: a TLS client to <ip>:<port> trusting <ca>, presenting <cert>/<key>
# ("-": none); prints {"ok", "subject" of the server's certificate, "version", "error"}.
# With TLS 1.3 a server refusing the client's certificate says so at the first read.
CLIENT = r"""
import json, socket, ssl, sys
ip, port, ca, cert, key = sys.argv[1:6]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.load_verify_locations(ca)
if cert != "-":
    ctx.load_cert_chain(cert, key)
out = {"ok": False}
try:
    with socket.create_connection((ip, int(port)), timeout=5) as raw:
        with ctx.wrap_socket(raw) as tls:
            out["version"] = tls.version()
            out["subject"] = dict(x[0] for x in tls.getpeercert()["subject"])
            tls.settimeout(2)
            try:
                tls.recv(1)
            except (TimeoutError, socket.timeout):
                pass
            out["ok"] = True
except (ssl.SSLError, OSError) as exc:
    out["error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


def _hosts(role):
    return sorted(n for n, h in testkit.topology()["hosts"].items() if role in h["roles"])


@pytest.fixture(scope="module")
def tls(lab):
    """galera:tls of the running lab; skips when it is off."""
    tls = testkit.pillar().get("galera", {}).get("tls", {})
    if not tls.get("enabled"):
        pytest.skip("galera:tls is off in the lab's pillar (make test-garbd switches it on)")
    return tls


def _handshake(client, ip, port, ca, cert="-", key="-"):
    proc = host_exec(client, ["python3", "-c", CLIENT, ip, str(port), ca, cert, key])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_voter_speaks_tls_and_refuses_a_stranger(deployed, tls):
    directory = tls.get("dir", "/etc/ssl/moodle_ha-galera")
    ca, cert, key = (f"{directory}/{f}" for f in ("ca.pem", "cert.pem", "key.pem"))
    hosts = testkit.topology()["hosts"]
    voters = _hosts("galera") + _hosts("garbd")
    # A stranger's certificate, made on the asking host (which the firewall lets through).
    stranger = ("/run/moodle_ha-test-stranger.key", "/run/moodle_ha-test-stranger.pem")
    for voter in voters:
        client = next(v for v in voters if v != voter)
        made = host_exec(client, [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-subj", "/CN=stranger", "-days", "1", "-keyout", stranger[0],
            "-out", stranger[1]])
        assert made.returncode == 0, made.stderr
        ip = hosts[voter]["ip"]
        member = _handshake(client, ip, 4567, ca, cert, key)
        assert member["ok"] is True, (voter, member)
        assert member["subject"]["commonName"] == "galera.moodle-ha.internal", member
        assert member["version"] in ("TLSv1.2", "TLSv1.3"), member
        for who, args in (("no certificate", ()), ("a stranger's", stranger[::-1])):
            refused = _handshake(client, ip, 4567, ca, *args)
            assert refused["ok"] is False, f"{voter} accepted a peer with {who}: {refused}"
        print(f"\n{voter}:4567 from {client}: {member['version']} with CN="
              f"{member['subject']['commonName']}; no certificate / a stranger's refused"
              f" ({refused['error'][:80]})")


def _synced(host):
    try:
        status = testkit.salt_value(host, "galera.status", timeout=30)
    except Exception:  # noqa: BLE001 - the minion is busy or the server down
        return False
    return isinstance(status, dict) and status.get("wsrep_local_state_comment") == "Synced"


def test_an_emptied_node_rejoins_by_sst_over_tls_with_every_row(deployed, tls):
    galera = _hosts("galera")
    joiner, donor = galera[-1], galera[0]
    note = f"before-sst-{time.time_ns()}"
    testkit.db_query("CREATE TABLE IF NOT EXISTS mha_tls_probe"
                     " (id BIGINT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(64))")
    testkit.db_query("INSERT INTO mha_tls_probe (note) VALUES (%s)", (note,))
    since = host_exec(joiner, ["date", "+%Y-%m-%d %H:%M:%S"]).stdout.strip()
    wipe = host_exec(joiner, "systemctl stop mariadb && find /var/lib/mysql -mindepth 1 -delete"
                             " && test -z \"$(ls -A /var/lib/mysql)\"")
    assert wipe.returncode == 0, wipe.stdout + wipe.stderr
    started = time.monotonic()
    proc = testkit.lab_run("salt", joiner, "state.apply", "moodle_ha.galera", "--out=json",
                           "--static", "-t600", timeout=900)
    took = time.monotonic() - started
    result = json.loads(proc.stdout)[joiner]
    failed = [k for k, v in result.items() if not v["result"]] if isinstance(result, dict) \
        else [str(result)]
    assert not failed, failed
    assert until(lambda: _synced(joiner), 120), f"{joiner} not Synced after the SST"
    log = host_exec(joiner, ["journalctl", "-u", "mariadb", "--since", since, "--no-pager",
                             "-o", "cat"]).stdout
    donor_log = host_exec(donor, ["journalctl", "-u", "mariadb", "--since", since,
                                  "--no-pager", "-o", "cat"]).stdout
    for where, text in ((joiner, log), (donor, donor_log)):
        assert "Using openssl based encryption with socat: with key and crt" in text, where
        assert "Verifying peer certificate chain for ssl-mode=VERIFY_CA" in text, where
    assert "SST" in log and "mariabackup" in log
    # Read on the joiner itself (root over its socket: 3306 admits no lab host).
    rows = host_exec(joiner, ["mariadb", "-N", "-B", "moodle", "-e",
                              f"SELECT note FROM mha_tls_probe WHERE note = '{note}'"])
    assert rows.stdout.split() == [note], rows.stdout + rows.stderr
    print(f"\n{joiner} emptied and rejoined by SST over TLS from {donor} in {took:.1f} s"
          f" (state.apply moodle_ha.galera); the row written before is there")

"""
Every secret reaches every rendered file that carries it byte for byte: the Galera cnf
(wsrep_sst_auth), the clustercheck option file, haproxy.cfg's stats userlist, config.php and
the backup key, rendered as file.managed renders them (cp.get_template) with secrets made of
every printable ASCII character, spaces at both ends and non-ASCII.

Each value is read back by the program that reads it on a host, where this machine has it
(my_print_defaults, haproxy itself answering a login on loopback, php, openssl), and always by
the readers' rules of test/unit/test_moodle_ha_secrets.py (mysys/my_default.c, PHP's
single-quoted strings).
"""

import base64
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from render.renderlib import config_section
from saltmodules import load

secrets = load("_modules/moodle_ha_secrets.py", "moodle_ha_secrets_for_render")
backup_script = load("moodle_ha/backup/files/moodle_ha-backup.py", "moodle_ha_backup_for_secrets")
# The readers' rules (MariaDB option files, PHP literals), unit-tested there.
readers = load("test/unit/test_moodle_ha_secrets.py", "secret_readers_for_render")

PRINTABLE = "".join(chr(code) for code in range(0x21, 0x7F))
NON_ASCII = "é€😀"
# What each reader treats specially before the rest: a comment sign ahead of any quote,
# backslash sequences the readers would undo, both quotes, a variable.
SPECIAL = "#;\\n\\s\\\\ '\" ${HOME}"


def _tricky(tag):
    return f" {tag} {SPECIAL} {PRINTABLE} {NON_ASCII} "


SECRETS = {
    # MariaDB's SST donor script cannot carry backslashes or surrounding spaces (validation
    # refuses them); everything else it carries.
    "sst_password": _tricky("sst").replace("\\", "/").strip(),
    "clustercheck_password": _tricky("cc"),
    "haproxy_stats_password": _tricky("stats"),
    "moodle_db_password": _tricky("db") + "\\",
    "backup_encryption_key": _tricky("key"),
}
PATCH = {f"moodle_ha:secrets:{name}": value for name, value in SECRETS.items()}
# lb1's own IP comes from its interfaces; the stats page also answers loopback for the
# live login check below.
LB_GRAINS = {"ip4_interfaces": {"lo": ["127.0.0.1"], "host0": ["172.30.77.21"]}}
LB_PATCH = {**PATCH, "moodle_ha:lb:haproxy:stats_allow": ["127.0.0.0/8"]}


def _render(renderer, tmp_path, layer, name, minion_id, patch=PATCH, grains=None):
    """moodle_ha/<layer>/files/<name>.jinja rendered as file.managed does: its bytes."""
    dest = tmp_path / name
    code, out = renderer.call(
        "cp.get_template", f"salt://moodle_ha/{layer}/files/{name}.jinja", str(dest),
        f"tpldir=moodle_ha/{layer}", minion_id=minion_id, patch=patch, grains=grains)
    assert code == 0 and dest.exists(), f"{name} did not render: {out}"
    return dest


@pytest.fixture(scope="module")
def rendered(renderer, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("secrets")
    return {
        "galera": _render(renderer, tmp, "galera", "60-galera.cnf", "moodle1"),
        "clustercheck": _render(renderer, tmp, "galera", "clustercheck.cnf", "moodle1"),
        "haproxy": _render(renderer, tmp, "lb", "haproxy.cfg", "lb1", LB_PATCH, LB_GRAINS),
        "config.php": _render(renderer, tmp, "moodle", "config.php", "moodle1"),
        "backup.key": _render(renderer, tmp, "backup", "backup.key", "moodle3"),
    }


# --------------------------------------------------------------------------- MariaDB


def _my_print_defaults(path, group):
    # MariaDB 11 masks passwords unless --show; 10.11 (Debian 12) has no --show and masks none.
    cmd = ["my_print_defaults", f"--defaults-file={path}", "--show", group]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode and b"unknown option '--show'" in proc.stderr:
        proc = subprocess.run(cmd[:2] + cmd[3:], capture_output=True)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    return dict(line[2:].split(b"=", 1) for line in out.splitlines() if b"=" in line)


def test_galera_cnf_carries_the_exact_sst_user_and_password(rendered):
    options = readers.mariadb_options(rendered["galera"].read_bytes(), "galera")
    assert options["wsrep_sst_auth"] == ("sst:" + SECRETS["sst_password"]).encode()


def test_clustercheck_cnf_carries_the_exact_password(rendered):
    options = readers.mariadb_options(rendered["clustercheck"].read_bytes(), "client")
    assert options["password"] == SECRETS["clustercheck_password"].encode()
    assert options["user"] == b"clustercheck"
    assert options["socket"] == b"/run/mysqld/mysqld.sock"


@pytest.mark.skipif(not shutil.which("my_print_defaults"), reason="MariaDB client not installed")
@pytest.mark.parametrize("file, group, option, expected", [
    ("galera", "galera", b"wsrep_sst_auth", "sst:" + SECRETS["sst_password"]),
    ("clustercheck", "client", b"password", SECRETS["clustercheck_password"]),
])
def test_my_print_defaults_reads_back_the_exact_secret(rendered, file, group, option, expected):
    assert _my_print_defaults(rendered[file], group)[option] == expected.encode()


# --------------------------------------------------------------------------- HAProxy


def test_haproxy_cfg_has_no_stats_password_only_its_hash(rendered):
    text = rendered["haproxy"].read_text(encoding="utf-8")
    password = SECRETS["haproxy_stats_password"]
    assert password.strip() not in text and "stats auth" not in text
    assert "insecure-password" not in text
    users = config_section(text, "userlist moodle_ha_stats")
    assert len(users) == 1
    keyword, name, kind, hashed = users[0].split(" ")
    assert (keyword, name, kind) == ("user", "admin", "password")
    assert hashed.startswith("$6$") and secrets.sha512_crypt(password, hashed) == hashed
    assert secrets.sha512_crypt(password + "x", hashed) != hashed


def test_stats_listener_asks_auth_after_the_network_acl(rendered):
    stats = config_section(rendered["haproxy"].read_text(encoding="utf-8"), "listen stats")
    deny = stats.index("http-request deny unless moodle_ha_stats_net")
    auth = stats.index("http-request auth realm moodle_ha-stats"
                       " unless { http_auth(moodle_ha_stats) }")
    assert deny < auth < stats.index("stats enable")


def test_haproxy_cfg_renders_the_same_hash_twice(renderer, rendered, tmp_path):
    again = _render(renderer, tmp_path, "lb", "haproxy.cfg", "lb1", LB_PATCH, LB_GRAINS)
    assert again.read_bytes() == rendered["haproxy"].read_bytes()


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url, user=None, password=None):
    request = urllib.request.Request(url)
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.skipif(not shutil.which("haproxy"), reason="haproxy not installed")
def test_haproxy_checks_the_config_and_logs_in_with_the_exact_password(rendered, tmp_path):
    subprocess.run(["haproxy", "-c", "-q", "-f", str(rendered["haproxy"])], check=True,
                   capture_output=True)
    # The rendered userlist and stats listener, bound to loopback, answering real logins.
    text = rendered["haproxy"].read_text(encoding="utf-8")
    port = _free_port()
    stats = [line if not line.startswith("bind ") else f"bind 127.0.0.1:{port}"
             for line in config_section(text, "listen stats")]
    users = config_section(text, "userlist moodle_ha_stats")
    conf = tmp_path / "stats.cfg"
    conf.write_text("defaults\n    timeout connect 5s\n    timeout client 5s\n"
                    "    timeout server 5s\n"
                    "userlist moodle_ha_stats\n" + "".join(f"    {u}\n" for u in users)
                    + "listen stats\n" + "".join(f"    {s}\n" for s in stats), encoding="utf-8")
    log = (tmp_path / "haproxy.log").open("wb")
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(conf)], stdout=log, stderr=log)
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        password = SECRETS["haproxy_stats_password"]
        assert _get(url) == 401
        assert _get(url, "admin", password) == 200
        assert _get(url, "admin", password.strip()) == 401
        assert _get(url, "admin", password.split(" ")[1]) == 401
        assert _get(f"http://127.0.0.1:{port}/metrics") == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


# --------------------------------------------------------------------------- PHP


def test_config_php_carries_the_exact_database_password(rendered):
    lines = rendered["config.php"].read_text(encoding="utf-8").splitlines()
    line = next(line for line in lines if line.startswith("$CFG->dbpass "))
    literal = line.split("=", 1)[1].strip().removesuffix(";")
    assert readers.php_single_quoted(literal) == SECRETS["moodle_db_password"]


@pytest.mark.skipif(not shutil.which("php"), reason="php CLI not installed")
def test_php_reads_back_the_exact_database_password(rendered, tmp_path):
    # config.php as Moodle includes it, lib/setup.php replaced by an empty stand-in.
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "setup.php").write_text("<?php\n")
    shutil.copy(rendered["config.php"], tmp_path / "config.php")
    out = subprocess.run(["php", "-r", "include $argv[1]; echo bin2hex($CFG->dbpass);",
                          str(tmp_path / "config.php")], capture_output=True, check=True,
                         text=True).stdout
    assert bytes.fromhex(out) == SECRETS["moodle_db_password"].encode()


# --------------------------------------------------------------------------- backup key


def test_backup_key_file_is_the_key_and_one_newline(rendered):
    key = SECRETS["backup_encryption_key"].encode()
    assert rendered["backup.key"].read_bytes() == key + b"\n"
    assert backup_script.read_key(str(rendered["backup.key"])) == key


@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl not installed")
def test_archive_encrypted_with_the_key_file_opens_with_the_exact_key(rendered, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "file").write_bytes(b"moodle")
    dest = tmp_path / "dataroot.tar.enc"
    cfg = {"compression": "none", "encryption_key_file": str(rendered["backup.key"])}
    backup_script.write_archive(cfg, str(src), str(dest))
    # Decrypted with the pillar's key given as it is, not through the key file.
    plain = subprocess.run(
        ["openssl", "enc", "-d", "-aes-256-cbc", "-pbkdf2", "-iter", "200000",
         "-pass", "pass:" + SECRETS["backup_encryption_key"], "-in", str(dest)],
        capture_output=True, check=True).stdout
    listing = subprocess.run(["tar", "-t"], input=plain, capture_output=True,
                             check=True).stdout.split()
    assert b"./file" in listing


@pytest.mark.parametrize("content, problem", [
    (b"", "it is empty"),
    (b"\n", "it is empty"),
    (b"first-line-of-the-key\nsecond\n", "a second line"),
    (b"a-key-with-a-crlf-end\r\n", "a CR"),
    (b"a-key\0with-a-nul\n", "a NUL byte"),
    (b"k" * 1024 + b"\n", "longer than 1023 bytes"),
])
def test_backup_key_that_openssl_would_read_otherwise_is_refused(tmp_path, content, problem):
    path = tmp_path / "backup.key"
    path.write_bytes(content)
    with pytest.raises(backup_script.BackupError, match=problem):
        backup_script.read_key(str(path))
    with pytest.raises(backup_script.BackupError, match=problem):
        backup_script.write_archive({"compression": "none", "encryption_key_file": str(path)},
                                    str(tmp_path), str(tmp_path / "out.tar.enc"))


def test_backup_key_of_1023_bytes_without_a_newline_is_read_whole(tmp_path):
    path = tmp_path / "backup.key"
    path.write_bytes(b"k" * 1023)
    assert backup_script.read_key(str(path)) == b"k" * 1023

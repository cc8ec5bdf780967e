"""The web and moodle layers render from pillar.example: state IDs, primary-only install and
cron, and the rendered config files (config.php, vhost, PHP ini, cron units)."""

import re
import shutil
import subprocess

import pytest

WEB_IDS = {
    "moodle_ha-web-package-installed",
    "moodle_ha-web-php-ini-file-managed",
    "moodle_ha-web-php-ini-enabled",
    "moodle_ha-web-apache-vhost-file-managed",
    "moodle_ha-web-apache-site-enabled",
    "moodle_ha-web-apache-default-site-disabled",
    "moodle_ha-web-apache-config-checked",
    "moodle_ha-web-apache-service-running",
    "moodle_ha-web-apache-module-rewrite-enabled",
    "moodle_ha-web-apache-module-headers-enabled",
}
MOODLE_IDS = {
    "moodle_ha-moodle-code-archive-extracted",
    "moodle_ha-moodle-code-permissions-fixed",
    "moodle_ha-moodle-code-release-activated",
    "moodle_ha-moodle-config-file-managed",
    "moodle_ha-moodle-health-page-managed",
    "moodle_ha-moodle-localcachedir-dir-managed",
    "moodle_ha-gluster-client-dataroot-mounted",
    "moodle_ha-moodle-cron-service-file-managed",
    "moodle_ha-moodle-cron-timer-file-managed",
    "moodle_ha-moodle-cache-ready-file-managed",
}


def _template(renderer, path, minion_id="moodle1", **kwargs):
    code, text = renderer.call(
        "slsutil.renderer", f"salt://moodle_ha/{path}", "default_renderer=jinja",
        f"tpldir=moodle_ha/{path.rsplit('/', 2)[0]}", minion_id=minion_id, **kwargs)
    assert code == 0 and isinstance(text, str), text
    return text


def _arg(state, key):
    for item in next(v for k, v in state.items() if not k.startswith("__")):
        if isinstance(item, dict) and key in item:
            return item[key]
    return None


def test_web_layer_renders_its_states(renderer):
    out = renderer.show_sls("moodle_ha.web", minion_id="moodle1")
    assert WEB_IDS <= set(out)
    vhost = out["moodle_ha-web-apache-vhost-file-managed"]
    assert "apache2 -t" in _arg(vhost, "check_cmd")


def test_moodle_layer_on_primary_installs_and_runs_cron(renderer):
    out = renderer.show_sls("moodle_ha.moodle", minion_id="moodle1")
    assert MOODLE_IDS <= set(out)
    assert "moodle_ha-moodle-install-installed" in out
    assert "moodle_ha-moodle-cron-timer-running" in out
    assert "moodle_ha-moodle-cron-timer-dead" not in out
    install = out["moodle_ha-moodle-install-installed"]
    assert _arg(install, "dbport") == 3307
    assert _arg(install, "dbhost") == "172.30.77.100"


def test_moodle_layer_on_other_nodes_has_no_install_and_cron_off(renderer):
    out = renderer.show_sls("moodle_ha.moodle", minion_id="moodle2")
    assert "moodle_ha-moodle-install-installed" not in out
    assert "moodle_ha-moodle-cron-timer-running" not in out
    dead = out["moodle_ha-moodle-cron-timer-dead"]
    assert _arg(dead, "enable") is False


def test_release_dir_is_named_by_archive_digest_and_dirroot_flips_to_it(renderer):
    digest = "ab" * 32
    out = renderer.show_sls("moodle_ha.moodle", minion_id="moodle1",
                            patch={"moodle_ha:moodle:source": {
                                "type": "archive", "url": "https://example.org/moodle.tgz",
                                "sha256": digest}})
    extract = out["moodle_ha-moodle-code-archive-extracted"]
    assert _arg(extract, "name") == f"/var/www/moodle-releases/{digest[:16]}"
    assert _arg(extract, "source_hash") == f"sha256={digest}"
    flip = out["moodle_ha-moodle-code-release-activated"]
    assert "symlink" in flip["file"]
    assert _arg(flip, "name") == "/var/www/moodle"
    assert _arg(flip, "target") == f"/var/www/moodle-releases/{digest[:16]}/moodle"
    # One rename(2) over the old link: never a moment without a dirroot.
    assert _arg(flip, "atomic") is True and not _arg(flip, "force")
    config = out["moodle_ha-moodle-config-file-managed"]
    assert _arg(config, "name") == f"/var/www/moodle-releases/{digest[:16]}/moodle/config.php"
    assert _arg(config, "mode") == "0640"
    assert _arg(config, "show_changes") is False


def test_staging_unpacks_and_configures_the_release_without_switching(renderer):
    out = renderer.show_sls("moodle_ha.moodle.stage,moodle_ha.moodle.config",
                            minion_id="moodle2")
    assert {"moodle_ha-moodle-code-archive-extracted", "moodle_ha-moodle-config-file-managed",
            "moodle_ha-moodle-component-cache-built"} <= set(out)
    assert "moodle_ha-moodle-code-release-activated" not in out
    assert "moodle_ha-moodle-install-installed" not in out


def test_switch_waits_for_the_staged_release_and_its_component_map(renderer):
    out = renderer.show_sls("moodle_ha.moodle", minion_id="moodle2")
    requires = _arg(out["moodle_ha-moodle-code-release-activated"], "require")
    assert {"cmd": "moodle_ha-moodle-component-cache-built"} in requires
    assert {"file": "moodle_ha-moodle-config-file-managed"} in requires


@pytest.mark.parametrize("node", ["moodle1", "moodle2"])
def test_switch_inside_the_window_goes_live_and_upgrades_once_only(renderer, node):
    out = renderer.show_sls("moodle_ha.moodle.switch", minion_id=node)
    code = "/var/www/moodle-releases/" + _arg(
        renderer.show_sls("moodle_ha.moodle.stage", minion_id=node)[
            "moodle_ha-moodle-code-archive-extracted"], "name").rsplit("/", 1)[1]
    staged = {_arg(out[sid], "name") for sid in out if sid.endswith("-staged")}
    assert staged == {f"{code}/.moodle_ha-release", f"{code}/moodle/config.php",
                      f"/var/cache/moodle_ha/component/{code.rsplit('/', 1)[1]}.php"}
    flip = out["moodle_ha-moodle-switch-release-activated"]
    assert (_arg(flip, "target"), _arg(flip, "atomic")) == (f"{code}/moodle", True)
    assert {"file": "moodle_ha-moodle-switch-config-staged"} in _arg(flip, "require")
    reload = out["moodle_ha-moodle-switch-apache-reloaded"]
    assert _arg(reload, "watch") == [{"file": "moodle_ha-moodle-switch-release-activated"}]
    # upgrade.php on the primary node only; nothing of the web layer is applied again.
    assert ("moodle_ha-moodle-switch-upgraded" in out) == (node == "moodle1")
    assert {state["__sls__"] for state in out.values()} == {"moodle_ha.moodle.switch"}


def test_switch_is_refused_on_a_host_without_the_web_role(renderer):
    out = renderer.show_sls("moodle_ha.moodle.switch", minion_id="lb1")
    assert list(out) == ["moodle_ha-moodle.switch-role-missing"]


@pytest.mark.parametrize(("sls", "sid"), [("open", "opened"), ("close", "closed")])
def test_upgrade_window_is_the_primary_nodes_and_reads_the_writer(renderer, sls, sid):
    out = renderer.show_sls(f"moodle_ha.moodle.upgrade_window.{sls}", minion_id="moodle1")
    window = out[f"moodle_ha-moodle-upgrade-window-{sid}"]
    assert _arg(window, "dbhost") == "172.30.77.100" and _arg(window, "dbport") == 3307
    assert _arg(window, "dataroot") == "/var/moodledata"
    if sls == "open":
        assert _arg(window, "release").startswith("/var/www/moodle-releases/")
    other = renderer.show_sls(f"moodle_ha.moodle.upgrade_window.{sls}", minion_id="moodle2")
    assert list(other) == [f"moodle_ha-moodle-upgrade_window-{sls}-not-primary"]


def test_git_source_renders_git_latest(renderer):
    out = renderer.show_sls("moodle_ha.moodle", minion_id="moodle1",
                            patch={"moodle_ha:moodle:source": {
                                "type": "git", "url": "https://example.org/moodle.git",
                                "ref": "MOODLE_501_STABLE"}})
    git = out["moodle_ha-moodle-code-git-latest"]
    assert _arg(git, "rev") == "MOODLE_501_STABLE"
    assert _arg(git, "target") == "/var/www/moodle-releases/git-MOODLE_501_STABLE"
    assert "moodle_ha-moodle-code-archive-extracted" not in out


def test_secrets_stay_out_of_template_contexts(renderer):
    out = renderer.show_sls("moodle_ha.moodle", minion_id="moodle1")
    for state_id, state in out.items():
        if state_id == "moodle_ha-moodle-install-installed":
            continue
        assert "example-moodle-db-password" not in str(state), state_id
        assert "Example-Admin-Password-1" not in str(state), state_id


@pytest.fixture(scope="module")
def config_php(renderer):
    return _template(renderer, "moodle/files/config.php.jinja")


def test_config_php_writes_through_writer_port_and_reads_from_reader_port(config_php):
    assert config_php.startswith("<?php")
    assert "$CFG->dbtype    = 'mariadb';" in config_php
    assert "$CFG->dbhost    = '172.30.77.100';" in config_php
    assert "'dbport' => 3307," in config_php
    readonly = config_php[config_php.index("'readonly' => ["):]
    assert re.search(r"'instance' => \[\s*\[\s*'dbhost' => '172.30.77.100',\s*'dbport' => 3308,",
                     readonly)


def test_config_php_settings_for_the_cluster(config_php):
    # HTTPS on the VIP (lb:tls), terminated by HAProxy: Moodle trusts the proxy's scheme.
    assert "$CFG->wwwroot   = 'https://172.30.77.100';" in config_php
    assert "$CFG->sslproxy  = true;" in config_php
    assert "$CFG->dataroot  = '/var/moodledata';" in config_php
    # Client addresses from HAProxy's X-Forwarded-For (never Client-IP), skipping the load
    # balancers and the VIP.
    assert "$CFG->getremoteaddrconf = 1;" in config_php
    assert "$CFG->xsendfile = 'X-Sendfile';" in config_php
    assert ("$CFG->reverseproxyignore = '172.30.77.21,172.30.77.22,172.30.77.100';"
            in config_php)
    assert "$CFG->session_handler_class = '\\\\core\\\\session\\\\database';" in config_php
    assert "$CFG->directorypermissions = 02770;" in config_php
    assert "$CFG->routerconfigured = true;" in config_php
    assert "$CFG->lock_factory" in config_php  # named in the comment saying why it is not set
    assert not re.search(r"^\s*\$CFG->lock_factory\s*=", config_php, re.M)
    last = [line for line in config_php.splitlines() if line.strip() and
            not line.startswith("//")][-1]
    assert last == "require_once(__DIR__ . '/lib/setup.php');"


def test_config_php_escapes_quotes_and_backslashes_in_the_password(renderer):
    text = _template(renderer, "moodle/files/config.php.jinja",
                     patch={"moodle_ha:secrets:moodle_db_password": "a'b\\c$d"})
    assert "$CFG->dbpass    = 'a\\'b\\\\c$d';" in text


@pytest.mark.skipif(not shutil.which("php"), reason="php CLI not installed")
def test_config_php_is_valid_php(config_php, tmp_path):
    path = tmp_path / "config.php"
    path.write_text(config_php)
    subprocess.run(["php", "-l", str(path)], check=True, capture_output=True)


def test_vhost_serves_public_with_router_fallback_and_denies_dataroot(renderer):
    text = _template(renderer, "web/files/moodle.conf.jinja")
    assert "ServerName 172.30.77.100" in text
    public = text[text.index("<IfFile /var/www/moodle/public>"):text.index("</IfFile>")]
    assert "DocumentRoot /var/www/moodle/public" in public
    assert "FallbackResource /r.php" in public
    assert "AcceptPathInfo On" in public
    legacy = text[text.index("<IfFile !/var/www/moodle/public>"):]
    assert "DocumentRoot /var/www/moodle\n" in legacy
    assert re.search(r"<Directory /var/moodledata>\s*Require all denied", text)


def test_vhost_hides_moodles_internal_files_and_sends_files_from_the_dataroot(renderer):
    text = _template(renderer, "web/files/moodle.conf.jinja")
    rule = next(line.strip() for line in text.splitlines() if "RedirectMatch 404" in line)
    pattern = re.compile(rule.split(" ", 2)[2].strip('"'))
    # The paths Moodle's core_publicpaths check expects a 404 for (Moodle 5.1 keeps them
    # under public/), and pages that must stay served.
    for path in ("/blog/tests/behat/delete.feature", "/privacy/tests/fixtures/logo.png",
                 "/lib/db/install.xml", "/mod/resource/readme.txt", "/mod/README.txt",
                 "/composer.json", "/composer.lock", "/vendor/bin/behat",
                 "/admin/environment.xml", "/phpunit.xml.dist", "/UPGRADING.md"):
        assert pattern.search(path), path
    for path in ("/login/index.php", "/my/", "/pluginfile.php/1/user/icon/f1",
                 "/theme/image.php/boost/core/1/t/block", "/lib/javascript.php/1/lib/require.js",
                 "/moodle_ha-health.php", "/r.php/course/view.php"):
        assert not pattern.search(path), path
    assert "XSendFile On" in text and "XSendFilePath /var/moodledata" in text
    off = _template(renderer, "web/files/moodle.conf.jinja",
                    patch={"moodle_ha:web:xsendfile": False})
    assert "XSendFile" not in off


def test_php_ini_carries_moodle_requirements(renderer):
    text = _template(renderer, "web/files/moodle.ini.jinja")
    assert "; priority=90" in text
    values = dict(line.split(" = ", 1) for line in text.splitlines() if " = " in line)
    assert int(values["max_input_vars"]) >= 5000
    assert values["memory_limit"] == "256M"
    assert values["opcache.enable"] == "1"


def test_cron_unit_runs_once_as_web_user(renderer):
    text = _template(renderer, "moodle/files/moodle_ha-cron.service.jinja")
    assert "User=www-data" in text
    assert ("ExecStart=/usr/bin/php8.4 /var/www/moodle/admin/cli/cron.php --keep-alive=0"
            in text)
    assert "Type=oneshot" in text


def test_config_php_without_tls_keeps_plain_http(renderer, tmp_path):
    code, out = renderer.call(
        "cp.get_template", "salt://moodle_ha/moodle/files/config.php.jinja",
        str(tmp_path / "config.php"), "tpldir=moodle_ha/moodle", minion_id="moodle1",
        patch={"moodle_ha:lb:tls:enabled": False})
    assert code == 0, out
    text = (tmp_path / "config.php").read_text()
    assert "$CFG->wwwroot   = 'http://172.30.77.100';" in text
    assert "sslproxy" not in text


def test_vhost_bounds_apaches_workers_by_memory_or_the_pillar(renderer):
    # Each prefork worker may reach PHP's memory_limit: the default is half the host's memory
    # over it (the renderer's grains: mem_total), the pillar's number when set.
    text = _template(renderer, "web/files/moodle.conf.jinja")
    prefork = text[text.index("<IfModule mpm_prefork_module>"):]
    (limit,) = re.findall(r"ServerLimit (\d+)", prefork)
    (workers,) = re.findall(r"MaxRequestWorkers (\d+)", prefork)
    assert limit == workers and 4 <= int(workers) <= 150
    text = _template(renderer, "web/files/moodle.conf.jinja",
                     patch={"moodle_ha:web:apache:max_request_workers": 24})
    assert "    ServerLimit 24\n    MaxRequestWorkers 24\n" in text


# --- The load balancers' health page -------------------------------------------------------

# config.php as the health page includes it: it counts its boots in a file, and its $DB
# answers the version read.
_STAND_IN_CONFIG = """<?php
file_put_contents(__DIR__ . '/booted', 'x', FILE_APPEND);
const MUST_EXIST = 2;
$DB = new class {
    public function get_field($table, $field, $where, $strictness) { return '2025100600.02'; }
};
"""


@pytest.mark.skipif(not shutil.which("php"), reason="php CLI not installed")
def test_health_page_boots_no_moodle_until_the_node_has_its_cache_configuration(renderer,
                                                                                 tmp_path):
    ready = tmp_path / "muc" / "moodle_ha-ready"
    code, page = renderer.call(
        "cp.get_template", "salt://moodle_ha/moodle/files/moodle_ha_health.php.jinja",
        str(tmp_path / "health.php"), "tpldir=moodle_ha/moodle", "config_path=config.php",
        f"ready_file={ready}")
    assert code == 0 and (tmp_path / "health.php").exists(), page
    (tmp_path / "config.php").write_text(_STAND_IN_CONFIG)

    def get():
        return subprocess.run(["php", str(tmp_path / "health.php")], capture_output=True,
                              text=True, timeout=30).stdout

    # Before Salt has written the node's cache configuration: FAIL (503), and Moodle never
    # booted, so no request writes Moodle's default configuration under the shared lock.
    assert get() == "FAIL\n"
    assert not (tmp_path / "booted").exists()
    ready.parent.mkdir()
    ready.write_text("written by Salt")
    assert get() == "OK\n"
    assert (tmp_path / "booted").read_text() == "x"

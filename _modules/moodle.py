"""
Moodle site management for the moodle_ha formula: code and database versions, one-time
install, upgrade, cache purge and CLI maintenance mode.

Every Moodle CLI script runs as the web user with the php CLI. Secrets never reach a command
line: database credentials and the admin password go to php on stdin, and the output of the
commands that see them is not logged.

``admin/cli/install_database.php`` only takes the admin password as ``--adminpass=`` on its
argv, so :py:func:`install` runs it through a small wrapper (``php -r``) that reads the password
from stdin, appends ``--adminpass=`` to ``$_SERVER['argv']`` inside the php process and then
``require``\\ s the installer; ``/proc/<pid>/cmdline`` never carries the password.
"""

import json
import os
import re
import time
from decimal import Decimal, InvalidOperation

import salt.utils.path
from salt.exceptions import CommandExecutionError

__virtualname__ = "moodle"

PHP_CANDIDATES = ("php", "php8.4", "php8.3", "php8.2")

_VERSION_RE = re.compile(r"^\s*\$version\s*=\s*([0-9]+(?:\.[0-9]+)?)\s*;", re.MULTILINE)
_RELEASE_RE = re.compile(r"^\s*\$release\s*=\s*(['\"])(.*?)\1\s*;", re.MULTILINE)

# Reads connection parameters as JSON on stdin and prints what the database holds for the
# given table prefix, as JSON: {"tables": N, "config_table": bool, "version": str|null}.
# Exit 2 with the server's message on stderr when the database cannot be queried, 4 when the
# connection itself failed in a way that passes (no server behind the endpoint yet: HAProxy
# accepting and closing while its checks find no writer, a refused or timed-out connect).
_DB_STATE_PHP = r"""
$c = json_decode(file_get_contents('php://stdin'), true);
if (!is_array($c)) { fwrite(STDERR, "bad input\n"); exit(2); }
mysqli_report(MYSQLI_REPORT_OFF);
$db = mysqli_init();
$db->options(MYSQLI_OPT_CONNECT_TIMEOUT, (int)$c['timeout']);
if (!@$db->real_connect($c['host'], $c['user'], $c['password'], $c['name'], (int)$c['port'])) {
    fwrite(STDERR, 'connect failed: ' . mysqli_connect_error() . "\n");
    exit(in_array(mysqli_connect_errno(), [2002, 2003, 2006, 2013], true) ? 4 : 2);
}
$like = $db->real_escape_string(addcslashes($c['prefix'], '_%\\'));
$r = $db->query("SELECT table_name FROM information_schema.tables"
    . " WHERE table_schema = DATABASE() AND table_name LIKE '" . $like . "%'");
if (!$r) { fwrite(STDERR, 'query failed: ' . $db->error . "\n"); exit(2); }
$tables = [];
while ($row = $r->fetch_row()) { $tables[] = $row[0]; }
$hasconfig = in_array($c['prefix'] . 'config', $tables, true);
$out = ['tables' => count($tables), 'config_table' => $hasconfig, 'version' => null];
if ($out['config_table']) {
    $r = $db->query("SELECT value FROM `" . $c['prefix'] . "config` WHERE name = 'version'");
    if (!$r) { fwrite(STDERR, 'query failed: ' . $db->error . "\n"); exit(2); }
    $row = $r->fetch_row();
    if ($row) { $out['version'] = (string)$row[0]; }
}
echo json_encode($out), "\n";
"""

# argv: [wrapper, <script>, <options...>]; the admin password arrives on stdin and is appended
# as --adminpass= inside this process. The installer is required in the global scope (Moodle's
# setup relies on globals).
_INSTALL_WRAPPER_PHP = r"""
$moodlehascript = $argv[1];
$moodlehapass = rtrim(file_get_contents('php://stdin'), "\r\n");
if ($moodlehapass === '') { fwrite(STDERR, "no admin password on stdin\n"); exit(3); }
$argv = array_merge([$moodlehascript], array_slice($argv, 2), ['--adminpass=' . $moodlehapass]);
$argc = count($argv);
$_SERVER['argv'] = $argv;
$_SERVER['argc'] = $argc;
unset($moodlehapass);
require $moodlehascript;
"""

# Moodle's cache configuration (MUC) brought to what Salt wants, through Moodle's own writer
# API. argv: [-, <dirroot>]; stdin: {"stores": {name: {"plugin", "configuration"}},
# "local_store": name|null, "definitions": {id: [store, ...]}, "modes": {"application" |
# "session" | "request": [store, ...]}, "test": bool}. Mapping rule, for every definition
# Moodle knows: an explicit entry of "definitions"; else the local store for an
# application-mode definition that Moodle marks canuselocalstore; else none (the mode's
# default store). A mode named in "modes" gets these stores as its default (Moodle's mode
# mappings, cache_store::MODE_APPLICATION 1, MODE_SESSION 2, MODE_REQUEST 4); the modes not
# named keep theirs (set_mode_mappings() empties a mode missing from its argument, so it always
# gets all three). Prints {"stores": {name: "added"|"changed"}, "mappings": {id: {"old", "new"}},
# "modes": {mode: {"old", "new"}}} (what changed, or would with "test"; store lists in Moodle's
# order of use, the first the primary); a Moodle exception exits 2 with its message on stderr.
#
# A store's configuration is compared as Moodle's stores read it (moodleha_canon): scalars as
# strings (1, "1" and true alike; 0, "0" and false alike; null as ""), keys in any order, so
# neither JSON's types nor those the admin form stored (PARAM_INT, PARAM_BOOL as 0/1) make a
# change. A "lock" in the configuration is Moodle's store lock, which the writer keeps beside
# the configuration.
_CACHE_CONFIG_PHP = r"""
function moodleha_canon($value) {
    if (is_array($value)) {
        ksort($value);
        return array_map('moodleha_canon', $value);
    }
    if (is_bool($value)) { return $value ? '1' : '0'; }
    return $value === null ? '' : (string)$value;
}
$moodlehawant = json_decode(file_get_contents('php://stdin'), true);
if (!is_array($moodlehawant)) { fwrite(STDERR, "bad input\n"); exit(2); }
define('CLI_SCRIPT', true);
require $argv[1] . '/config.php';
try {
    if (class_exists('\\core_cache\\config_writer')) {
        $writer = \core_cache\config_writer::instance();
    } else {
        require_once($CFG->dirroot . '/cache/locallib.php');
        $writer = \cache_config_writer::instance();
    }
    $dry = !empty($moodlehawant['test']);
    $out = ['stores' => new stdClass(), 'mappings' => new stdClass(), 'modes' => new stdClass()];
    // The writer locks its file with the first lock instance of the configuration (Moodle's
    // default: a file lock in the shared cachedir), although each node's file is its own: a
    // node-local lock instance, first (the default lock of the stores stays Moodle's).
    $lockdir = (string)($moodlehawant['lock_dir'] ?? '');
    if ($lockdir !== '') {
        $prop = new \ReflectionProperty($writer, 'configlocks');
        $prop->setAccessible(true);
        $locks = $prop->getValue($writer);
        $ours = ['name' => 'moodle_ha_node', 'type' => 'cachelock_file', 'dir' => $lockdir,
            'default' => false];
        if (array_key_first($locks) !== 'moodle_ha_node' || $locks['moodle_ha_node'] != $ours) {
            $out['locks'] = ['moodle_ha_node' => $lockdir];
            if (!$dry) {
                if (!is_dir($lockdir) && !mkdir($lockdir, 0770, true)) {
                    throw new \RuntimeException("cannot create the lock directory $lockdir");
                }
                unset($locks['moodle_ha_node']);
                $prop->setValue($writer, ['moodle_ha_node' => $ours] + $locks);
                $save = new \ReflectionMethod($writer, 'config_save');
                $save->setAccessible(true);
                $save->invoke($writer);
            }
        }
    }
    $have = $writer->get_all_stores();
    foreach ($moodlehawant['stores'] ?? [] as $name => $store) {
        $configuration = $store['configuration'] ?? [];
        if (!isset($have[$name])) {
            $out['stores']->$name = 'added';
            if (!$dry) {
                $writer->add_store_instance($name, $store['plugin'], $configuration);
            }
            continue;
        }
        $compare = $configuration;
        unset($compare['lock']);
        $lock = array_key_exists('lock', $configuration)
            && (string)$configuration['lock'] !== (string)($have[$name]['lock'] ?? '');
        $same = moodleha_canon($have[$name]['configuration'] ?? []) === moodleha_canon($compare);
        if ($have[$name]['plugin'] !== $store['plugin'] || $lock || !$same) {
            $out['stores']->$name = 'changed';
            if (!$dry) {
                $writer->edit_store_instance($name, $store['plugin'], $configuration);
            }
        }
    }
    $current = [];
    foreach ($writer->get_definition_mappings() as $m) {
        $current[$m['definition']][(int)$m['sort']] = $m['store'];
    }
    $local = $moodlehawant['local_store'] ?? null;
    $explicit = $moodlehawant['definitions'] ?? [];
    foreach ($writer->get_definitions() as $id => $definition) {
        if (isset($explicit[$id])) {
            $target = array_values($explicit[$id]);
        } else if ($local !== null && !empty($definition['canuselocalstore'])
                && (int)$definition['mode'] === 1) {
            $target = [$local];
        } else {
            $target = [];
        }
        $old = $current[$id] ?? [];
        krsort($old);
        $old = array_values($old);
        if ($old !== $target) {
            $out['mappings']->$id = ['old' => $old, 'new' => $target];
            if (!$dry) { $writer->set_definition_mappings($id, $target); }
        }
    }
    // A mode's stores in Moodle's order of use, the first the primary: by descending sort, as
    // get_mode_mappings() has them. set_mode_mappings() numbers its stores 0, 1, ... (Moodle's
    // defaults have -1), the last one given the highest: it gets each list reversed.
    $modeids = ['application' => 1, 'session' => 2, 'request' => 4];
    $wantmodes = $moodlehawant['modes'] ?? [];
    if ($wantmodes) {
        $bymode = [1 => [], 2 => [], 4 => []];
        foreach ($writer->get_mode_mappings() as $m) {
            $bymode[(int)$m['mode']][] = $m;
        }
        $oldmodes = [];
        foreach ($bymode as $mode => $ms) {
            usort($ms, function($a, $b) { return (int)$b['sort'] <=> (int)$a['sort']; });
            $oldmodes[$mode] = array_column($ms, 'store');
        }
        $newmodes = $oldmodes;
        $stores = $writer->get_all_stores();
        foreach ($wantmodes as $modename => $names) {
            if (!isset($modeids[$modename])) {
                throw new \RuntimeException("Unknown cache mode $modename");
            }
            $mode = $modeids[$modename];
            $newmodes[$mode] = array_values($names);
            foreach ($newmodes[$mode] as $storename) {
                if (isset($stores[$storename]['modes'])
                        && !((int)$stores[$storename]['modes'] & $mode)) {
                    throw new \RuntimeException("The cache store $storename ("
                        . $stores[$storename]['plugin'] . ") does not support the $modename mode");
                }
                if (!isset($stores[$storename]) && !isset($moodlehawant['stores'][$storename])) {
                    throw new \RuntimeException("The instance name for the new mapping does"
                        . " not exist: $storename (mode $modename)");
                }
            }
            if ($newmodes[$mode] !== $oldmodes[$mode]) {
                $out['modes']->$modename = ['old' => $oldmodes[$mode], 'new' => $newmodes[$mode]];
            }
        }
        if (!$dry && (array) $out['modes']) {
            $writer->set_mode_mappings(array_map('array_reverse', $newmodes));
        }
    }
} catch (\Throwable $e) {
    fwrite(STDERR, get_class($e) . ': ' . $e->getMessage() . "\n");
    exit(2);
}
echo json_encode($out), "\n";
"""


def __virtual__():
    if _php_default() is None:
        return (False, "moodle: the php CLI is not installed")
    return __virtualname__


def _php_default():
    for name in PHP_CANDIDATES:
        path = salt.utils.path.which(name)
        if path:
            return path
    return None


def _php(php):
    return php or _php_default()


def _scrub(text, secrets):
    text = text or ""
    for secret in secrets:
        if secret:
            text = text.replace(str(secret), "********")
    return text


def _tail(text, lines=20):
    return "\n".join((text or "").strip().splitlines()[-lines:])


def _cli_path(dirroot, script):
    return os.path.join(dirroot, "admin", "cli", script)


def _run_cli(dirroot, script, args=(), runas="www-data", php=None, timeout=None, stdin=None,
             secrets=(), quiet=False):
    """Run admin/cli/<script> as ``runas``; raise CommandExecutionError on a non-zero exit."""
    cmd = [_php(php), _cli_path(dirroot, script), *args]
    kwargs = {
        "runas": runas,
        "cwd": dirroot,
        "python_shell": False,
        "timeout": timeout,
        "ignore_retcode": True,
    }
    if stdin is not None:
        kwargs["stdin"] = stdin
    if quiet:
        kwargs["output_loglevel"] = "quiet"
    ret = __salt__["cmd.run_all"](cmd, **kwargs)
    if ret["retcode"] != 0:
        out = _scrub(_tail(ret.get("stderr")) or _tail(ret.get("stdout")), secrets)
        raise CommandExecutionError(f"{script} exited with {ret['retcode']}: {out}")
    return ret


def parse_version_php(text):
    """
    Return ``{"version": "2025100600.02", "release": "5.1+ (Build: 20251017)"}`` from the text
    of a Moodle ``version.php`` (``release`` may be None).

    CLI Example:

    .. code-block:: bash

        salt '*' moodle.parse_version_php "$(cat /var/www/moodle/public/version.php)"
    """
    match = _VERSION_RE.search(text or "")
    if not match:
        raise CommandExecutionError("no $version = <number>; line in version.php")
    release = _RELEASE_RE.search(text)
    return {"version": match.group(1), "release": release.group(2) if release else None}


def version_file(dirroot):
    """
    Path of the core version.php: ``<dirroot>/public/version.php`` from Moodle 5.1 on,
    ``<dirroot>/version.php`` before; None when neither exists.

    CLI Example:

    .. code-block:: bash

        salt '*' moodle.version_file /var/www/moodle
    """
    for rel in ("public/version.php", "version.php"):
        path = os.path.join(dirroot, rel)
        if os.path.isfile(path):
            return path
    return None


def code_info(dirroot):
    """
    Version and release of the code in ``dirroot``, read from its version.php (not executed).

    CLI Example:

    .. code-block:: bash

        salt '*' moodle.code_info /var/www/moodle
    """
    path = version_file(dirroot)
    if path is None:
        raise CommandExecutionError(f"no Moodle version.php under {dirroot}")
    with open(path, encoding="utf-8", errors="replace") as handle:
        return parse_version_php(handle.read())


def code_version(dirroot):
    """
    The ``$version`` of the Moodle code in ``dirroot`` (a string such as ``2025100600.02``).

    CLI Example:

    .. code-block:: bash

        salt '*' moodle.code_version /var/www/moodle
    """
    return code_info(dirroot)["version"]


# mysqli connect errors that pass once the endpoint has a server: CR_CONNECTION_ERROR,
# CR_CONN_HOST_ERROR, CR_SERVER_GONE_ERROR, CR_SERVER_LOST (the probe exits 4 on them).
_TRANSIENT_EXIT = 4


def db_state(dbhost, dbport, dbname, dbuser, dbpass, prefix="mdl_", php=None, timeout=5,
             wait=0, interval=2):
    """
    What the database holds for Moodle's table prefix:
    ``{"tables": N, "config_table": bool, "version": "2025100600.02" or None}``.

    Queried with the php CLI's mysqli (the driver Moodle uses) without booting Moodle; the
    credentials go to php on stdin. Raises CommandExecutionError when the database cannot be
    queried: an unreachable database is never taken for an empty one.

    wait
        Seconds to keep retrying (every ``interval`` s) while the connection fails in a way
        that passes: refused, timed out, or accepted and closed (HAProxy's answer while its
        checks find no writer yet). A refused login or a failed query fails at once.

    CLI Example:

    .. code-block:: bash

        salt-call moodle.db_state 172.30.77.100 3307 moodle moodle "$PASS"
    """
    params = {
        "host": str(dbhost),
        "port": int(dbport),
        "name": dbname,
        "user": dbuser,
        "password": dbpass,
        "prefix": prefix,
        "timeout": int(timeout),
    }
    deadline = time.monotonic() + float(wait)
    tries = 0
    while True:
        tries += 1
        ret = __salt__["cmd.run_all"](
            [_php(php), "-r", _DB_STATE_PHP],
            stdin=json.dumps(params),
            python_shell=False,
            ignore_retcode=True,
            output_loglevel="quiet",
        )
        if ret["retcode"] != _TRANSIENT_EXIT or time.monotonic() + interval > deadline:
            break
        time.sleep(interval)
    if ret["retcode"] != 0:
        waited = f" (after {tries} tries in {float(wait):.0f} s)" if tries > 1 else ""
        raise CommandExecutionError(
            f"cannot read the Moodle database {dbuser}@{dbhost}:{dbport}/{dbname}{waited}: "
            f"{_scrub(_tail(ret.get('stderr')), [dbpass])}"
        )
    try:
        state = json.loads(ret["stdout"].strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise CommandExecutionError(f"unexpected output from the database probe: {exc}") from exc
    return {
        "tables": int(state.get("tables", 0)),
        "config_table": bool(state.get("config_table")),
        "version": state.get("version"),
    }


def db_version(dbhost, dbport, dbname, dbuser, dbpass, prefix="mdl_", php=None):
    """
    The core ``version`` stored in ``<prefix>config``, or None when Moodle is not installed.

    CLI Example:

    .. code-block:: bash

        salt-call moodle.db_version 172.30.77.100 3307 moodle moodle "$PASS"
    """
    return db_state(dbhost, dbport, dbname, dbuser, dbpass, prefix=prefix, php=php)["version"]


def is_installed(dbhost, dbport, dbname, dbuser, dbpass, prefix="mdl_", php=None):
    """
    True when the database has Moodle's config table with its version row (decided from the
    database, not from a marker file).

    CLI Example:

    .. code-block:: bash

        salt-call moodle.is_installed 172.30.77.100 3307 moodle moodle "$PASS"
    """
    return db_version(dbhost, dbport, dbname, dbuser, dbpass, prefix=prefix, php=php) is not None


def compare_versions(code, db):
    """
    -1, 0 or 1 as the code version is older than, equal to or newer than the database's.

    CLI Example:

    .. code-block:: bash

        salt '*' moodle.compare_versions 2025100600.02 2025100600
    """
    try:
        left, right = Decimal(str(code)), Decimal(str(db))
    except InvalidOperation as exc:
        raise CommandExecutionError(f"not a Moodle version: {code!r} / {db!r}") from exc
    return (left > right) - (left < right)


def install(
    dirroot,
    adminpass,
    adminuser="admin",
    adminemail="",
    fullname="",
    shortname="",
    lang="en",
    runas="www-data",
    php=None,
    timeout=1800,
):
    """
    Run ``admin/cli/install_database.php`` once (Moodle refuses when tables exist).

    The admin password goes to the php process on stdin, never on a command line, and the
    command's output is not logged. Returns the last lines of the installer's output.

    CLI Example:

    .. code-block:: bash

        salt-call moodle.install /var/www/moodle adminpass="$PASS" adminemail=a@example.org
    """
    if not adminpass:
        raise CommandExecutionError("install: an admin password is required")
    args = [
        "--agree-license",
        f"--lang={lang}",
        f"--adminuser={adminuser}",
        f"--adminemail={adminemail}",
        f"--fullname={fullname}",
        f"--shortname={shortname}",
    ]
    cmd = [_php(php), "-r", _INSTALL_WRAPPER_PHP, "--",
           _cli_path(dirroot, "install_database.php"), *args]
    ret = __salt__["cmd.run_all"](
        cmd,
        runas=runas,
        cwd=dirroot,
        stdin=f"{adminpass}\n",
        python_shell=False,
        ignore_retcode=True,
        output_loglevel="quiet",
        timeout=timeout,
    )
    if ret["retcode"] != 0:
        out = _tail(ret.get("stderr")) or _tail(ret.get("stdout"))
        raise CommandExecutionError(
            f"install_database.php exited with {ret['retcode']}: {_scrub(out, [adminpass])}"
        )
    return _scrub(_tail(ret.get("stdout"), 5), [adminpass])


def maintenance(dirroot, enable=True, runas="www-data", php=None):
    """
    Switch CLI maintenance mode (``admin/cli/maintenance.php --enable|--disable``). Web
    requests then get 503 on every node (the flag file lives in the shared dataroot).

    CLI Example:

    .. code-block:: bash

        salt-call moodle.maintenance /var/www/moodle enable=False
    """
    flag = "--enable" if enable else "--disable"
    _run_cli(dirroot, "maintenance.php", [flag], runas=runas, php=php, timeout=300)
    return True


def upgrade(dirroot, runas="www-data", php=None, timeout=1800, allow_unstable=False,
            maintenance_window=True):
    """
    Upgrade the database to the code: maintenance on, ``admin/cli/upgrade.php
    --non-interactive``, maintenance off. When the upgrade fails the site stays in maintenance
    (a half-upgraded site must not serve) and the error says so.

    maintenance_window
        False when the caller already holds the site in CLI maintenance (the orchestration's
        upgrade window, an administrator's maintenance): upgrade.php runs and the flag stays
        as it is, for its holder to remove.

    CLI Example:

    .. code-block:: bash

        salt-call moodle.upgrade /var/www/moodle
    """
    if maintenance_window:
        maintenance(dirroot, True, runas=runas, php=php)
    args = ["--non-interactive"]
    if allow_unstable:
        args.append("--allow-unstable")
    try:
        ret = _run_cli(dirroot, "upgrade.php", args, runas=runas, php=php, timeout=timeout)
    except CommandExecutionError as exc:
        raise CommandExecutionError(
            f"{exc} (the site stays in CLI maintenance mode; fix and re-run, or run"
            " admin/cli/maintenance.php --disable)"
        ) from exc
    if maintenance_window:
        maintenance(dirroot, False, runas=runas, php=php)
    return _tail(ret.get("stdout"), 5)


def purge_caches(dirroot, runas="www-data", php=None):
    """
    Purge all Moodle caches (``admin/cli/purge_caches.php``).

    CLI Example:

    .. code-block:: bash

        salt-call moodle.purge_caches /var/www/moodle
    """
    _run_cli(dirroot, "purge_caches.php", runas=runas, php=php, timeout=600)
    return True


# Every release directory the formula made carries this file (moodle_ha.moodle.code).
RELEASE_MARKER = ".moodle_ha-release"


def releases(releases_dir):
    """
    The release directories the formula made under ``releases_dir`` (those holding
    RELEASE_MARKER): ``[(name, mtime of the marker)]``, newest first. Anything else there is
    not a release and is never listed.

    CLI Example:

    .. code-block:: bash

        salt 'moodle*' moodle.releases /var/www/moodle-releases
    """
    found = []
    try:
        names = os.listdir(releases_dir)
    except FileNotFoundError:
        return []
    for name in names:
        marker = os.path.join(releases_dir, name, RELEASE_MARKER)
        path = os.path.join(releases_dir, name)
        if os.path.isdir(path) and not os.path.islink(path) and os.path.isfile(marker):
            found.append((name, os.stat(marker).st_mtime))
    return sorted(found, key=lambda item: (-item[1], item[0]))


def current_release(releases_dir, dirroot):
    """The name of the release ``dirroot`` points into (its symlink's target is that release
    or a directory in it), or None when dirroot is no link into ``releases_dir``.

    CLI Example:

    .. code-block:: bash

        salt 'moodle*' moodle.current_release /var/www/moodle-releases /var/www/moodle
    """
    if not os.path.islink(dirroot):
        return None
    target = os.path.realpath(dirroot)
    base = os.path.realpath(releases_dir)
    rel = os.path.relpath(target, base)
    if rel == "." or rel.startswith(".." + os.sep) or rel == "..":
        return None
    return rel.split(os.sep, 1)[0]


def release_plan(found, current, keep):
    """Pure: which releases stay and which go. ``found`` is releases()' list (newest first):
    the current one always stays, then the newest others until ``keep`` stay in all (the one
    before the current, for a rollback, with the default 2). Returns (kept, removed)."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    names = [name for name, _ in found]
    kept = [current] if current in names else []
    for name in names:
        if len(kept) >= keep:
            break
        if name not in kept:
            kept.append(name)
    return kept, [name for name in names if name not in kept]


# Moodle's answer when its cache configuration lock stays taken; cache_config tries again.
CACHE_LOCK_BUSY = "Unable to acquire a lock for caching"
CACHE_LOCK_ATTEMPTS = 4
CACHE_LOCK_PAUSE = 3

# Moodle's cache modes (cache_store::MODE_*), by the names moodle.cache_config takes.
CACHE_MODES = {"application": 1, "session": 2, "request": 4}

# cachestore_redis's configuration as Moodle 5.1 stores it from its admin form
# (public/cache/stores/redis/lib.php config_get_configuration_array(), addinstanceform.php):
# every key of the form, typed as the form cleans it (PARAM_TEXT/PARAM_RAW strings,
# PARAM_INT ints, the advcheckboxes' PARAM_BOOL as 0/1), the form's defaults for the keys not
# given (Redis::SERIALIZER_PHP 1, COMPRESSOR_NONE 0, CONNECTION_TIMEOUT 3). lockwait and
# locktimeout are not on the form; the store reads them as ints.
REDIS_DEFAULTS = {
    "server": "",
    "prefix": "",
    "password": "",
    "serializer": 1,
    "compressor": 0,
    "connectiontimeout": 3,
    "encryption": 0,
    "cafile": "",
    "clustermode": 0,
}
_REDIS_TEXT = ("server", "prefix", "password", "cafile")
_REDIS_INT = ("serializer", "compressor", "connectiontimeout", "lockwait", "locktimeout")
_REDIS_BOOL = ("encryption", "clustermode")
_REDIS_PREFIX_RE = re.compile(r"^[a-zA-Z0-9\-_]+$")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def _redis_configuration(name, configuration):
    """A redis store's configuration as cachestore_redis's admin form would store it."""
    conf = {**REDIS_DEFAULTS, **(configuration or {})}
    if isinstance(conf["server"], (list, tuple)):
        conf["server"] = "\n".join(str(server) for server in conf["server"])
    for key in _REDIS_TEXT:
        conf[key] = "" if conf[key] is None else str(conf[key])
    for key in _REDIS_INT:
        if key in conf:
            try:
                conf[key] = int(conf[key])
            except (TypeError, ValueError):
                raise CommandExecutionError(
                    f"cache store {name}: {key} must be a whole number") from None
    for key in _REDIS_BOOL:
        value = conf[key]
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            conf[key] = int(value.strip().lower() in _TRUE)
        elif isinstance(value, (bool, int)) or value is None:
            conf[key] = int(bool(value))
        else:
            raise CommandExecutionError(f"cache store {name}: {key} must be true or false")
    if not conf["server"].strip():
        raise CommandExecutionError(f"cache store {name}: the redis store needs a server")
    if conf["prefix"] and not _REDIS_PREFIX_RE.match(conf["prefix"]):
        raise CommandExecutionError(
            f"cache store {name}: the key prefix may hold letters, digits, - and _ only")
    return conf


def _cache_stores(stores):
    out = {}
    for name, store in (stores or {}).items():
        store = dict(store or {})
        if not store.get("plugin"):
            raise CommandExecutionError(f"cache store {name}: no plugin named")
        store["configuration"] = dict(store.get("configuration") or {})
        if store.get("plugin") == "redis":
            store["configuration"] = _redis_configuration(name, store["configuration"])
        out[str(name)] = store
    return out


def _cache_modes(modes):
    out = {}
    for mode, stores in (modes or {}).items():
        key = str(mode).lower()
        if key not in CACHE_MODES:
            raise CommandExecutionError(
                f"cache mode {mode!r}: not one of {', '.join(CACHE_MODES)}")
        if isinstance(stores, str):
            stores = [stores]
        stores = list(stores or [])
        if not stores or not all(isinstance(store, str) and store for store in stores):
            raise CommandExecutionError(
                f"cache mode {key}: a list of one or more store instance names is needed")
        if len(set(stores)) != len(stores):
            raise CommandExecutionError(f"cache mode {key}: a store is named twice")
        out[key] = stores
    return out


def _store_secrets(stores):
    return [store["configuration"]["password"] for store in stores.values()
            if store["configuration"].get("password")]


def cache_config(dirroot, stores=None, local_store=None, definitions=None, modes=None,
                 test=False, runas="www-data", php=None, lock_dir=None):
    """
    Bring Moodle's cache configuration on this node to the given stores and mappings, through
    Moodle's cache configuration writer (``\\core_cache\\config_writer``): add or change the
    store instances, map every definition (``definitions``: explicit ``{id: [store, ...]}``;
    else ``local_store`` for the application-mode definitions Moodle marks
    ``canuselocalstore``; else the mode's default), and set the default store of the modes
    named in ``modes`` (``{"application"|"session"|"request": [store, ...]}``, the first the
    primary; the modes not named keep theirs; definition mappings win over mode mappings).
    Store instances not named are left alone. A redis store's configuration is completed and
    typed as Moodle's admin form stores it (:py:data:`REDIS_DEFAULTS`). With ``lock_dir`` (a
    local directory) the writer locks this node's file there: a lock instance
    ``moodle_ha_node`` first in the configuration (Moodle's writer takes the first; the stores'
    default lock stays Moodle's). Returns what changed
    (``test=True``: what would), as ``{"stores": {name: "added"|"changed"}, "mappings": {id:
    {"old": [...], "new": [...]}}, "modes": {mode: {"old": [...], "new": [...]}}, "locks":
    {"moodle_ha_node": lock_dir}}`` (the last when the lock was set). Store
    passwords go to php on stdin and never into the return or an error.

    CLI Example:

    .. code-block:: bash

        salt-call moodle.cache_config /var/www/moodle local_store=moodle_ha_local \\
            stores='{"moodle_ha_local": {"plugin": "file",
                     "configuration": {"path": "/var/cache/m"}}}'
        salt-call moodle.cache_config /var/www/moodle modes='{"application": ["moodle_ha_redis"]}'
    """
    stores = _cache_stores(stores)
    want = {"stores": stores, "local_store": local_store, "definitions": definitions or {},
            "modes": _cache_modes(modes), "test": bool(test)}
    if lock_dir:
        want["lock_dir"] = str(lock_dir)
    secrets = _store_secrets(stores)
    # Moodle's writer takes its lock in the shared cachedir (cachelock_file, dir filelocks),
    # even for a node-local file: web nodes configured at once wait for each other, and one
    # gave up ("Unable to acquire a lock for caching", real Moodle 5.1, two nodes). The script
    # is idempotent: it runs again.
    for attempt in range(1, CACHE_LOCK_ATTEMPTS + 1):
        ret = __salt__["cmd.run_all"](
            [_php(php), "-r", _CACHE_CONFIG_PHP, dirroot],
            runas=runas,
            cwd=dirroot,
            python_shell=False,
            stdin=json.dumps(want),
            ignore_retcode=True,
            output_loglevel="quiet" if secrets else "debug",
            timeout=300,
        )
        if ret["retcode"] == 0 or CACHE_LOCK_BUSY not in (ret.get("stderr") or ""):
            break
        if attempt < CACHE_LOCK_ATTEMPTS:
            time.sleep(CACHE_LOCK_PAUSE)
    if ret["retcode"] != 0:
        said = _tail(ret.get("stderr")) or _tail(ret.get("stdout"))
        raise CommandExecutionError(
            f"Moodle's cache configuration writer failed ({ret['retcode']}):"
            f" {_scrub(said, secrets)}"
        )
    try:
        out = json.loads(ret["stdout"].strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise CommandExecutionError(
            "Moodle's cache configuration writer printed no JSON:"
            f" {_scrub(_tail(ret.get('stdout')), secrets)}"
        ) from None
    changes = {key: dict(out.get(key) or {}) for key in ("stores", "mappings", "modes")}
    if out.get("locks"):
        changes["locks"] = dict(out["locks"])
    return changes

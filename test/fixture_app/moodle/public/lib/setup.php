<?php
// Fixture bootstrap: the parts of Moodle's lib/setup.php the moodle_ha formula depends on.
// - $CFG->dirroot is the web root (public/), as in Moodle 5.1; $CFG->root the top directory.
// - dataroot must exist and be writable (else "Fatal error" and exit 1, as Moodle).
// - climaintenance.html in the dataroot: web requests get 503 before anything else.
// - $DB: writes through the main connection (dbhost:dboptions[dbport]), reads through the
//   first connectable dboptions['readonly']['instance'] (as moodle_read_replica_trait).

if (!isset($CFG) || !is_object($CFG)) {
    echo "Fatal error: config.php does not define \$CFG\n";
    exit(1);
}
if (!defined('MOODLE_INTERNAL')) {
    define('MOODLE_INTERNAL', true);
}
if (!defined('CLI_SCRIPT')) {
    define('CLI_SCRIPT', false);
}
if (!defined('MATURITY_STABLE')) {
    define('MATURITY_STABLE', 200);
}
if (!defined('MUST_EXIST')) {
    define('MUST_EXIST', 2);
    define('IGNORE_MISSING', 0);
}

$CFG->dirroot = dirname(__DIR__);
$CFG->root = dirname(__DIR__, 2);
$CFG->libdir = __DIR__;

if (!isset($CFG->dataroot)) {
    echo "Fatal error: \$CFG->dataroot is not specified in config.php! Exiting.\n";
    exit(1);
}
$CFG->dataroot = realpath($CFG->dataroot);
if ($CFG->dataroot === false) {
    echo "Fatal error: \$CFG->dataroot is not configured properly, directory does not exist or is not accessible! Exiting.\n";
    exit(1);
} else if (!is_writable($CFG->dataroot)) {
    echo "Fatal error: \$CFG->dataroot is not writable, admin has to fix directory permissions! Exiting.\n";
    exit(1);
}
if (!isset($CFG->cachedir)) {
    $CFG->cachedir = "$CFG->dataroot/cache";
}
if (!isset($CFG->localcachedir)) {
    $CFG->localcachedir = "$CFG->dataroot/localcache";
}

// $CFG->alternative_component_cache, as Moodle's core_component: read when it exists; else
// created when its directory is writable; else Moodle stops.
function fixture_component_cache_content() {
    global $CFG;
    return "<?php\n\$cache = " . var_export(['dirroot' => $CFG->dirroot,
        'plugins' => ['core' => $CFG->dirroot . '/lib']], true) . ";\n";
}
if (!defined('ABORT_AFTER_CONFIG') && !empty($CFG->alternative_component_cache)) {
    $fixturecc = $CFG->alternative_component_cache;
    if (!file_exists($fixturecc)) {
        if (!is_writable(dirname($fixturecc))) {
            die('Can not create alternative component cache file defined in '
                . '$CFG->alternative_component_cache, can not continue');
        }
        file_put_contents($fixturecc, fixture_component_cache_content());
    }
    $cache = null;
    include($fixturecc);
    unset($fixturecc, $cache);
}

if (file_exists("$CFG->dataroot/climaintenance.html")) {
    if (!CLI_SCRIPT) {
        header(($_SERVER['SERVER_PROTOCOL'] ?? 'HTTP/1.1') . ' 503 Moodle under maintenance');
        header('Retry-After: 300');
        header('Content-type: text/html; charset=utf-8');
        readfile("$CFG->dataroot/climaintenance.html");
        die;
    }
    if (!defined('CLI_MAINTENANCE')) {
        define('CLI_MAINTENANCE', true);
    }
}

if (defined('ABORT_AFTER_CONFIG')) {
    require_once(__DIR__ . '/clilib.php');
    return;
}

require_once(__DIR__ . '/dml.php');
require_once(__DIR__ . '/cache.php');
require_once(__DIR__ . '/clilib.php');

global $DB;
$DB = new fixture_database($CFG);

// Installed site: load its config rows, as Moodle's initialise_cfg().
$CFG->version = null;
try {
    if (in_array($CFG->prefix . 'config', $DB->get_tables(), true)) {
        foreach ($DB->get_records_menu('config', 'name', 'value') as $name => $value) {
            if (!property_exists($CFG, $name) || $name === 'version') {
                $CFG->$name = $value;
            }
        }
    }
} catch (dml_exception $e) {
    if (CLI_SCRIPT) {
        fwrite(STDERR, 'Database connection failed: ' . $e->getMessage() . "\n");
        exit(1);
    }
    throw $e;
}

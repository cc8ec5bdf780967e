<?php
// Fixture of Moodle's admin/cli/purge_caches.php: empties the shared and the local cache.
define('CLI_SCRIPT', true);

require(__DIR__ . '/../../config.php');

list($options, $unrecognized) = cli_get_params(['help' => false], ['h' => 'help']);
if ($unrecognized) {
    cli_error("Unrecognised options:\n  " . implode("\n  ", $unrecognized));
}
fixture_purge_dir($CFG->cachedir);
fixture_purge_dir($CFG->localcachedir);
exit(0);

<?php
// Fixture of Moodle's admin/cli/upgrade.php: moves the database's version up to the code's.
define('CLI_SCRIPT', true);

require(__DIR__ . '/../../config.php');

list($options, $unrecognized) = cli_get_params(
    ['non-interactive' => false, 'allow-unstable' => false, 'is-pending' => false, 'maintenance' => true,
     'lang' => 'en', 'help' => false],
    ['h' => 'help']
);
if ($unrecognized) {
    cli_error("Unrecognised options:\n  " . implode("\n  ", $unrecognized));
}
if (empty($CFG->version)) {
    cli_error('Database is not yet installed.', 2);
}
require("$CFG->dirroot/version.php");
if ((float)$version < (float)$CFG->version) {
    cli_error("Cannot downgrade from $CFG->version to $version.");
}
if ((float)$version == (float)$CFG->version) {
    if ($options['is-pending']) {
        exit(0);
    }
    echo "No upgrade needed for the installed version $release ($version).\n";
    exit(0);
}
if ($options['is-pending']) {
    exit(2);
}
if (!$options['non-interactive']) {
    cli_error('Use --non-interactive in this fixture.');
}
$DB->set_config('release', $release);
$DB->set_config('version', $version);
echo "Command line upgrade from $CFG->version to $version completed successfully.\n";
exit(0);

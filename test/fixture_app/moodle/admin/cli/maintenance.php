<?php
// Fixture of Moodle's admin/cli/maintenance.php (CLI maintenance: climaintenance.html).
define('CLI_SCRIPT', true);

require(__DIR__ . '/../../config.php');

list($options, $unrecognized) = cli_get_params(['enable' => false, 'disable' => false, 'help' => false],
    ['h' => 'help']);
if ($unrecognized) {
    cli_error("Unrecognised options:\n  " . implode("\n  ", $unrecognized));
}
$flag = "$CFG->dataroot/climaintenance.html";
if ($options['enable']) {
    file_put_contents($flag, "<html><body>Site under maintenance</body></html>\n");
    $DB->set_config('maintenance_enabled', 'cli mode');
    echo "CLI maintenance mode enabled\n";
    exit(0);
}
if ($options['disable']) {
    if (file_exists($flag)) {
        unlink($flag);
    }
    $DB->set_config('maintenance_enabled', '0');
    echo "Maintenance mode disabled\n";
    exit(0);
}
echo file_exists($flag) ? "CLI maintenance mode enabled\n" : "Maintenance mode disabled\n";
exit(0);

<?php
// Fixture of Moodle's admin/cli/cron.php: one run records a heartbeat row, under a GET_LOCK
// taken over the writer connection like Moodle's default lock factory on MariaDB.
define('CLI_SCRIPT', true);

require(__DIR__ . '/../../config.php');

list($options, $unrecognized) = cli_get_params(['keep-alive' => 0, 'help' => false, 'force' => false],
    ['h' => 'help', 'k' => 'keep-alive']);
if ($unrecognized) {
    cli_error("Unrecognised options:\n  " . implode("\n  ", $unrecognized));
}
if (empty($CFG->version)) {
    cli_error('Moodle is not installed.', 1);
}
if (!empty($CFG->maintenance_enabled) && $CFG->maintenance_enabled !== '0' || defined('CLI_MAINTENANCE')) {
    echo "Site is in maintenance mode: cron not run.\n";
    exit(1);
}
$lock = $DB->execute("SELECT GET_LOCK(" . $DB->quote($CFG->dbname . '-cron') . ", 0)")->fetch_row()[0];
if ((string)$lock !== '1') {
    echo "Cron lock held elsewhere: nothing to do.\n";
    exit(0);
}
$DB->execute('INSERT INTO ' . $DB->t('task_log') . ' (hostname, timecreated) VALUES ('
    . $DB->quote(gethostname()) . ', ' . time() . ')');
$DB->set_config('lastcron', (string)time());
$DB->execute("SELECT RELEASE_LOCK(" . $DB->quote($CFG->dbname . '-cron') . ")");
echo "Cron run completed on " . gethostname() . ".\n";
exit(0);

<?php
// Fixture of Moodle's admin/cli/install_database.php: same options, same refusal to run twice.
define('CLI_SCRIPT', true);

if (isset($_SERVER['REMOTE_ADDR'])) {
    exit(1);
}

$configfile = __DIR__ . '/../../config.php';
if (!file_exists($configfile)) {
    fwrite(STDERR, "config.php does not exist, can not continue\n");
    exit(1);
}
require($configfile);

list($options, $unrecognized) = cli_get_params(
    [
        'lang' => 'en',
        'adminuser' => 'admin',
        'adminpass' => '',
        'adminemail' => '',
        'fullname' => '',
        'shortname' => '',
        'summary' => '',
        'supportemail' => '',
        'agree-license' => false,
        'help' => false,
    ],
    ['h' => 'help']
);

if ($unrecognized) {
    cli_error("Unrecognised options:\n  " . implode("\n  ", $unrecognized) . "\nPlease use --help option.");
}
if ($options['help']) {
    echo "Fixture Moodle database installer.\n";
    exit(0);
}
if ($DB->get_tables()) {
    cli_error('Database tables already present; CLI installation cannot continue.');
}
if (!$options['agree-license']) {
    cli_error('You have to agree to the license. --help prints out the help');
}
if ($options['adminpass'] === true || $options['adminpass'] === '') {
    cli_error('You have to specify admin password. --help prints out the help');
}

require("$CFG->dirroot/version.php");

// Optional delay (seconds in <dataroot>/fixture_install_delay) to observe the site during install.
$delayfile = "$CFG->dataroot/fixture_install_delay";
$delay = is_readable($delayfile) ? (int)trim(file_get_contents($delayfile)) : 0;

$DB->execute('CREATE TABLE ' . $DB->t('config') . ' (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,'
    . ' name VARCHAR(190) NOT NULL UNIQUE, value LONGTEXT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4');
$DB->execute('CREATE TABLE ' . $DB->t('user') . ' (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,'
    . ' username VARCHAR(100) NOT NULL UNIQUE, password VARCHAR(255) NOT NULL, email VARCHAR(100) NOT NULL)'
    . ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4');
$DB->execute('CREATE TABLE ' . $DB->t('task_log') . ' (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,'
    . ' hostname VARCHAR(255) NOT NULL, timecreated BIGINT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4');
// Moodle's scheduled tasks (the status view reads faildelay > 0 as a failing task).
$DB->execute('CREATE TABLE ' . $DB->t('task_scheduled') . ' (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,'
    . ' classname VARCHAR(255) NOT NULL UNIQUE, faildelay BIGINT NOT NULL DEFAULT 0)'
    . ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4');
foreach (['\\core\\task\\cache_cron_task', '\\core\\task\\session_cleanup_task'] as $task) {
    $DB->execute('INSERT INTO ' . $DB->t('task_scheduled') . ' (classname) VALUES (' . $DB->quote($task) . ')');
}
if ($delay > 0) {
    sleep($delay);
}
$DB->execute('INSERT INTO ' . $DB->t('user') . ' (username, password, email) VALUES ('
    . $DB->quote($options['adminuser']) . ', '
    . $DB->quote(password_hash($options['adminpass'], PASSWORD_DEFAULT)) . ', '
    . $DB->quote($options['adminemail']) . ')');
foreach ([
    'release' => $release,
    'lang' => $options['lang'],
    'fullname' => $options['fullname'],
    'shortname' => $options['shortname'],
    'maintenance_enabled' => '0',
] as $name => $value) {
    $DB->set_config($name, $value);
}
// The version row comes last: without it the site counts as not (completely) installed.
$DB->set_config('version', $version);

echo "Installation completed successfully.\n";
exit(0);

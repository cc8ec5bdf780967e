<?php
// As in Moodle 5.1: the web root's config.php loads the top-level config.php.
$configfile = __DIR__ . '/../config.php';
if (!file_exists($configfile)) {
    header("Location: install.php");
    die;
}

require($configfile);

<?php
// Fixture of Moodle 5.1's router entry point: the vhost's FallbackResource sends every path that
// is not a file here.
require(__DIR__ . '/config.php');

header('Content-Type: text/plain');
echo 'router: ' . ($_SERVER['REQUEST_URI'] ?? '') . "\n";

<?php
// Fixture file server: hands ?name=<file> under the dataroot's fixture/ directory to Apache by
// an X-Sendfile header when $CFG->xsendfile is set (as Moodle's send_file does), and never
// sends the bytes itself: without mod_xsendfile the body stays empty.
require(__DIR__ . '/config.php');

$name = basename($_GET['name'] ?? '');
$path = "$CFG->dataroot/fixture/$name";
if ($name === '' || !is_file($path)) {
    http_response_code(404);
    exit;
}
header('Content-Type: application/octet-stream');
header('X-Moodle-Ha-Xsendfile: ' . (empty($CFG->xsendfile) ? 'off' : $CFG->xsendfile));
if (!empty($CFG->xsendfile)) {
    header("$CFG->xsendfile: $path");
}

<?php
// Fixture front page: proves the stack end to end. Reads @@hostname through the writer and the
// reader connection, writes a file into the shared dataroot, prints one JSON object.
require(__DIR__ . '/config.php');

header('Content-Type: application/json');
header('Cache-Control: no-store');
if (empty($CFG->version)) {
    http_response_code(503);
    echo json_encode(['installed' => false]), "\n";
    exit;
}
$node = gethostname();
$dir = "$CFG->dataroot/fixture";
if (!is_dir($dir)) {
    @mkdir($dir, $CFG->directorypermissions, true);
}
$file = "$dir/" . $node . '.txt';
$written = file_put_contents($file, date('c') . "\n") !== false;
// The code's own version (version.php), beside the database's: the upgrade test checks that
// no node ever serves one against the other.
$fixturecode = (function () use ($CFG) {
    $version = null;
    include("$CFG->dirroot/version.php");
    return (string)$version;
})();
echo json_encode([
    'installed' => true,
    'version' => $CFG->version,
    'code_version' => $fixturecode,
    'web_node' => $node,
    'writer_host' => $DB->hostname(false),
    'reader_host' => $DB->hostname(true),
    'uses_readonly' => $DB->uses_readonly(),
    'dataroot_write' => $written,
    'dataroot_files' => array_values(array_diff(scandir($dir), ['.', '..'])),
    // What the load balancer told this node about the client (lab TLS and client-IP tests).
    'wwwroot' => $CFG->wwwroot,
    'sslproxy' => !empty($CFG->sslproxy),
    'forwarded_proto' => $_SERVER['HTTP_X_FORWARDED_PROTO'] ?? null,
    'forwarded_for' => $_SERVER['HTTP_X_FORWARDED_FOR'] ?? null,
]), "\n";

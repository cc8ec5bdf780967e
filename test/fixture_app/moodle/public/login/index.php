<?php
// Fixture login check: POST username and password; 200 when they match the stored hash
// (proves the admin password reached the installer intact), 403 otherwise.
require(__DIR__ . '/../config.php');

header('Content-Type: text/plain');
$username = $_POST['username'] ?? '';
$password = $_POST['password'] ?? '';
$hash = $username === '' ? false : $DB->get_field('user', 'password', ['username' => $username], 0, false);
if ($hash !== false && password_verify($password, $hash)) {
    echo "login ok\n";
} else {
    http_response_code(403);
    echo "login failed\n";
}

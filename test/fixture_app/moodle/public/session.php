<?php
// Fixture session page: a visit counter in the session, kept where config.php says Moodle keeps
// sessions. With $CFG->session_handler_class \core\session\redis (as Moodle's redis handler:
// phpredis to session_redis_host:session_redis_port, AUTH session_redis_auth, keys prefixed
// session_redis_prefix) the session lives in Redis, so any web node continues it; otherwise
// it says "database" and keeps nothing. Answers "<store> <node> <visits>".
require(__DIR__ . '/config.php');

header('Content-Type: text/plain');
header('Cache-Control: no-store');
$node = gethostname();
if (($CFG->session_handler_class ?? '') !== '\core\session\redis') {
    echo "database $node 0\n";
    exit;
}
$id = preg_replace('/[^A-Za-z0-9]/', '', $_COOKIE['MoodleSession'] ?? '');
if ($id === '') {
    $id = bin2hex(random_bytes(16));
    setcookie('MoodleSession', $id, 0, '/');
}
try {
    $redis = new Redis();
    $redis->connect($CFG->session_redis_host, (int)$CFG->session_redis_port, 3);
    if (!$redis->auth($CFG->session_redis_auth)) {
        throw new RedisException('Unable to authenticate.');
    }
    $redis->setOption(Redis::OPT_PREFIX, $CFG->session_redis_prefix);
    $visits = $redis->hIncrBy("session_$id", 'visits', 1);
    $redis->expire("session_$id", 7200);
} catch (RedisException $e) {
    http_response_code(503);
    echo "redis $node error: " . $e->getMessage() . "\n";
    exit;
}
echo "redis $node $visits\n";

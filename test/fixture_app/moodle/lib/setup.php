<?php
// As in Moodle 5.1: the top-level lib/setup.php (required by config.php) hands over to the
// web root's lib/setup.php.
require_once(dirname(__DIR__) . '/public/lib/setup.php');

<?php
// Fixture standing in for Moodle 5.1 in CI: same layout and version.php shape as the real code.
defined('MOODLE_INTERNAL') || die();

$version  = 2025100600;                 // YYYYMMDDRR.XX, compared with the database's.
$release  = '5.1 fixture';
$branch   = '501';
$maturity = MATURITY_STABLE;

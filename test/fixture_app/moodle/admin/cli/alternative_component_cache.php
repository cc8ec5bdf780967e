<?php
// Fixture of Moodle's admin/cli/alternative_component_cache.php (--print only): the component
// map of this code, as the PHP file $CFG->alternative_component_cache names.
define('CLI_SCRIPT', true);
define('ABORT_AFTER_CONFIG', true);

require(__DIR__ . '/../../config.php');

list($options, $unrecognized) = cli_get_params(['print' => false, 'help' => false], ['h' => 'help']);
if ($unrecognized || !$options['print']) {
    cli_error("Only --print is supported by the fixture\n", 2);
}
echo fixture_component_cache_content();
exit(0);

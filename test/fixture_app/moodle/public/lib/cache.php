<?php
// Fixture of Moodle's cache configuration (core_cache\config and config_writer): the store
// instances, mode mappings and definition mappings that moodle_ha's moodle.cache_config reads
// and writes, kept as Moodle keeps them, in $CFG->altcacheconfigpath/cacheconfig.php when that
// directory is writable, else dataroot/muc/config.php. Three definitions, two of them
// application caches Moodle marks canuselocalstore (core/string, core/hookcallbacks), one not
// (core/config). As Moodle 5.1 (public/cache/classes/config_writer.php, config.php):
// - the default stores default_application (file), default_session (session) and
//   default_request (static), each its mode's default (mode mapping sort -1);
// - a cache_exception's message is "cache/<the writer's text>" (moodle_exception with an
//   error code that is no language string);
// - add_store_instance() refuses a plugin whose requirements are not met (redis: the php
//   redis extension, class Redis), edit_store_instance() does not check them;
// - get_mode_mappings() and get_definition_mappings() by descending sort, as config::load();
// - set_mode_mappings() empties the modes missing from its argument, refuses an unknown mode
//   or store, checks neither the store's modes nor duplicates (its duplicate test looks a store
//   name up among list keys), numbers each mode's stores 0, 1, ...
// A configuration file written by an older fixture (no mode mappings) gets Moodle's default
// stores and mode mappings, as Moodle's upgrade (update_default_config_stores) would have.
// config_save() locks as Moodle's does: a file lock (fopen xb, 100 tries) in the first lock
// instance's directory (an absolute one as it is, else one in the shared cachedir).

namespace core_cache\exception {
    class cache_exception extends \Exception {
        public function __construct($errorcode, $module = 'cache') {
            parent::__construct($module . '/' . $errorcode);
        }
    }
}

namespace core_cache {
    use core_cache\exception\cache_exception;

    class config_writer {
        const MODE_APPLICATION = 1;
        const MODE_SESSION = 2;
        const MODE_REQUEST = 4;

        /** Plugins the fixture knows: their modes (get_supported_modes()), requirements met. */
        private static function plugins() {
            return [
                'file' => [self::MODE_APPLICATION + self::MODE_SESSION, true],
                'session' => [self::MODE_SESSION, true],
                'static' => [self::MODE_REQUEST, true],
                'redis' => [self::MODE_APPLICATION + self::MODE_SESSION, class_exists('Redis')],
                'apcu' => [self::MODE_APPLICATION + self::MODE_SESSION,
                    extension_loaded('apcu')],
            ];
        }

        private $file;
        private $data;
        /** Lock instances by name, in the configuration's order (Moodle's writer uses the first). */
        protected $configlocks;

        public static function instance() {
            return new self();
        }

        private static function default_stores() {
            $stores = [];
            foreach (['application' => 'file', 'session' => 'session', 'request' => 'static']
                    as $mode => $plugin) {
                $stores['default_' . $mode] = ['name' => 'default_' . $mode, 'plugin' => $plugin,
                    'configuration' => [], 'modes' => self::plugins()[$plugin][0],
                    'default' => true];
            }
            return $stores;
        }

        private static function default_mode_mappings() {
            return [
                ['mode' => self::MODE_APPLICATION, 'store' => 'default_application', 'sort' => -1],
                ['mode' => self::MODE_SESSION, 'store' => 'default_session', 'sort' => -1],
                ['mode' => self::MODE_REQUEST, 'store' => 'default_request', 'sort' => -1],
            ];
        }

        private function __construct() {
            global $CFG;
            $alt = $CFG->altcacheconfigpath ?? '';
            if ($alt !== '' && is_dir($alt) && is_writable($alt)) {
                $this->file = $alt . '/cacheconfig.php';
            } else {
                $this->file = $CFG->dataroot . '/muc/config.php';
            }
            $configuration = null;
            if (file_exists($this->file)) {
                include($this->file);
            }
            $this->data = is_array($configuration) ? $configuration : [
                'stores' => self::default_stores(),
                'modemappings' => self::default_mode_mappings(),
                'definitions' => [
                    'core/string' => ['mode' => 1, 'component' => 'core', 'area' => 'string',
                        'canuselocalstore' => true],
                    'core/hookcallbacks' => ['mode' => 1, 'component' => 'core',
                        'area' => 'hookcallbacks', 'canuselocalstore' => true],
                    'core/config' => ['mode' => 1, 'component' => 'core', 'area' => 'config'],
                ],
                'definitionmappings' => [],
            ];
            $this->configlocks = [];
            foreach ($this->data['locks'] ?? [['name' => 'cachelock_file_default',
                    'type' => 'cachelock_file', 'dir' => 'filelocks', 'default' => true]] as $lock) {
                $this->configlocks[$lock['name']] = $lock;
            }
            if (!isset($this->data['modemappings'])) {
                $this->data['stores'] = array_merge($this->data['stores'], self::default_stores());
                $this->data['modemappings'] = self::default_mode_mappings();
            }
        }

        /** As Moodle's config_save(): under the first lock instance's file lock (cachelock_file:
            an absolute dir as it is, else a directory of the shared cachedir; 100 tries, 1-50 ms
            apart), the configuration's locks saved with it. */
        protected function config_save() {
            global $CFG;
            $dir = dirname($this->file);
            if (!is_dir($dir)) {
                mkdir($dir, 02770, true);
            }
            $lock = reset($this->configlocks);
            $lockdir = $lock['dir'];
            if (strpos($lockdir, '/') === false || strpos($lockdir, '.') === 0 || !is_dir($lockdir)) {
                $lockdir = $CFG->dataroot . '/cache/' . preg_replace('#[^a-zA-Z0-9_]#', '_', $lockdir);
                if (!is_dir($lockdir)) {
                    mkdir($lockdir, 02770, true);
                }
            }
            $lockfile = $lockdir . '/configwrite.lock';
            for ($try = 0; ($handle = @fopen($lockfile, 'xb')) === false; $try++) {
                if ($try >= 100) {
                    throw new cache_exception('Unable to acquire a lock for caching.');
                }
                usleep(rand(1000, 50000));
            }
            fclose($handle);
            $this->data['locks'] = array_values($this->configlocks);
            $tmp = $this->file . '.tmp';
            file_put_contents($tmp, "<?php defined('MOODLE_INTERNAL') || die();\n \$configuration = "
                . var_export($this->data, true) . ";\n");
            rename($tmp, $this->file);
            @unlink($lockfile);
        }

        private static function by_sort(array $mappings) {
            usort($mappings, function($a, $b) {
                return $b['sort'] <=> $a['sort'];
            });
            return $mappings;
        }

        public function get_all_stores() {
            $stores = [];
            foreach ($this->data['stores'] as $name => $store) {
                $stores[$name] = $store + ['lock' => 'cachelock_file_default'];
            }
            return $stores;
        }

        public function get_definitions() {
            return $this->data['definitions'];
        }

        public function get_mode_mappings() {
            return self::by_sort($this->data['modemappings']);
        }

        public function get_definition_mappings() {
            return self::by_sort($this->data['definitionmappings']);
        }

        private function store_record($name, $plugin, array $configuration, $default) {
            $store = ['name' => $name, 'plugin' => $plugin, 'configuration' => $configuration,
                'modes' => self::plugins()[$plugin][0], 'default' => $default];
            if (array_key_exists('lock', $configuration)) {
                $store['lock'] = $configuration['lock'];
                unset($store['configuration']['lock']);
            }
            return $store;
        }

        public function add_store_instance($name, $plugin, array $configuration = []) {
            if (array_key_exists($name, $this->data['stores'])) {
                throw new cache_exception('Duplicate name specificed for cache plugin instance. '
                    . 'You must provide a unique name.');
            }
            if (!array_key_exists($plugin, self::plugins())) {
                throw new cache_exception('Invalid plugin name specified. The plugin does not '
                    . 'exist or is not valid.');
            }
            if (!self::plugins()[$plugin][1]) {
                throw new cache_exception('Unable to add new cache plugin instance. The requested '
                    . 'plugin type is not supported.');
            }
            if ($plugin === 'file' && !empty($configuration['autocreate'])
                    && !is_dir($configuration['path'])) {
                mkdir($configuration['path'], 02770, true);
            }
            $this->data['stores'][$name] = $this->store_record($name, $plugin, $configuration,
                false);
            $this->config_save();
            return true;
        }

        public function edit_store_instance($name, $plugin, $configuration) {
            if (!array_key_exists($name, $this->data['stores'])) {
                throw new cache_exception('The requested instance does not exist.');
            }
            if (!array_key_exists($plugin, self::plugins())) {
                throw new cache_exception('Invalid plugin name specified. The plugin either does '
                    . 'not exist or is not valid.');
            }
            $this->data['stores'][$name] = $this->store_record($name, $plugin, $configuration,
                $this->data['stores'][$name]['default']);
            $this->config_save();
            return true;
        }

        public function set_mode_mappings(array $modemappings) {
            $mappings = [
                self::MODE_APPLICATION => [],
                self::MODE_SESSION => [],
                self::MODE_REQUEST => [],
            ];
            foreach ($modemappings as $mode => $stores) {
                if (!array_key_exists($mode, $mappings)) {
                    throw new cache_exception('The cache mode for the new mapping does not exist');
                }
                $sort = 0;
                foreach ($stores as $store) {
                    if (!array_key_exists($store, $this->data['stores'])) {
                        throw new cache_exception('The instance name for the new mapping does not '
                            . 'exist');
                    }
                    if (array_key_exists($store, $mappings[$mode])) {
                        throw new cache_exception('This cache mapping already exists');
                    }
                    $mappings[$mode][] = ['store' => $store, 'mode' => $mode, 'sort' => $sort++];
                }
            }
            $this->data['modemappings'] = array_merge($mappings[self::MODE_APPLICATION],
                $mappings[self::MODE_SESSION], $mappings[self::MODE_REQUEST]);
            $this->config_save();
            return true;
        }

        public function set_definition_mappings($definition, $mappings) {
            $kept = [];
            foreach ($this->data['definitionmappings'] as $m) {
                if ($m['definition'] !== $definition) {
                    $kept[] = $m;
                }
            }
            $sort = count($mappings);
            foreach ($mappings as $store) {
                $kept[] = ['store' => $store, 'definition' => $definition, 'sort' => $sort--];
            }
            $this->data['definitionmappings'] = $kept;
            $this->config_save();
        }
    }
}

<?php
// Fixture of Moodle's cache configuration (core_cache\config and config_writer): the store
// instances and definition mappings that moodle_ha's moodle.cache_config reads and writes,
// kept as Moodle keeps them, in $CFG->altcacheconfigpath/cacheconfig.php when that directory
// is writable, else dataroot/muc/config.php. Three definitions, two of them application
// caches Moodle marks canuselocalstore (core/string, core/hookcallbacks), one not (core/config).

namespace core_cache;

class config_writer {
    private $file;
    private $data;

    public static function instance() {
        return new self();
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
            'stores' => [
                'default_application' => ['name' => 'default_application', 'plugin' => 'file',
                    'configuration' => [], 'default' => true],
            ],
            'definitions' => [
                'core/string' => ['mode' => 1, 'component' => 'core', 'area' => 'string',
                    'canuselocalstore' => true],
                'core/hookcallbacks' => ['mode' => 1, 'component' => 'core',
                    'area' => 'hookcallbacks', 'canuselocalstore' => true],
                'core/config' => ['mode' => 1, 'component' => 'core', 'area' => 'config'],
            ],
            'definitionmappings' => [],
        ];
    }

    private function save() {
        $dir = dirname($this->file);
        if (!is_dir($dir)) {
            mkdir($dir, 02770, true);
        }
        $tmp = $this->file . '.tmp';
        file_put_contents($tmp, "<?php defined('MOODLE_INTERNAL') || die();\n \$configuration = "
            . var_export($this->data, true) . ";\n");
        rename($tmp, $this->file);
    }

    public function get_all_stores() {
        return $this->data['stores'];
    }

    public function get_definitions() {
        return $this->data['definitions'];
    }

    public function get_definition_mappings() {
        return $this->data['definitionmappings'];
    }

    public function add_store_instance($name, $plugin, array $configuration = []) {
        if (isset($this->data['stores'][$name])) {
            throw new \Exception('Duplicate name specificed for cache plugin instance.');
        }
        if (!in_array($plugin, ['file', 'redis', 'apcu'], true)) {
            throw new \Exception('Invalid plugin name specified. The plugin does not exist or is not valid.');
        }
        if ($plugin === 'file' && !empty($configuration['autocreate']) && !is_dir($configuration['path'])) {
            mkdir($configuration['path'], 02770, true);
        }
        $this->data['stores'][$name] = ['name' => $name, 'plugin' => $plugin,
            'configuration' => $configuration, 'default' => false];
        $this->save();
        return true;
    }

    public function edit_store_instance($name, $plugin, $configuration) {
        $this->data['stores'][$name]['plugin'] = $plugin;
        $this->data['stores'][$name]['configuration'] = $configuration;
        $this->save();
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
        $this->save();
    }
}

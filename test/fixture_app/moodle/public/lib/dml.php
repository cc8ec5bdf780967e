<?php
// Fixture database layer: a writer and a read-only connection, like Moodle's mysqli driver with
// dboptions['readonly'].

class dml_exception extends Exception {
}

class fixture_database {
    /** @var stdClass */
    private $cfg;
    /** @var mysqli|null */
    private $writer = null;
    /** @var mysqli|null|false false: no readonly instance could be reached */
    private $reader = null;

    public function __construct($cfg) {
        $this->cfg = $cfg;
        mysqli_report(MYSQLI_REPORT_OFF);
    }

    private function connect($host, $port, $user, $pass) {
        $db = mysqli_init();
        $timeout = (int)($this->cfg->dboptions['connecttimeout'] ?? 5);
        $db->options(MYSQLI_OPT_CONNECT_TIMEOUT, $timeout > 0 ? $timeout : 5);
        if (!@$db->real_connect($host, $user, $pass, $this->cfg->dbname, (int)$port)) {
            throw new dml_exception("cannot connect to $host:$port: " . mysqli_connect_error());
        }
        $db->set_charset('utf8mb4');
        return $db;
    }

    public function writer() {
        if ($this->writer === null) {
            $this->writer = $this->connect($this->cfg->dbhost, $this->cfg->dboptions['dbport'] ?? 3306,
                $this->cfg->dbuser, $this->cfg->dbpass);
        }
        return $this->writer;
    }

    /** The readonly instance (first connectable), or the writer when none is configured/up. */
    public function reader() {
        if ($this->reader === null) {
            $this->reader = false;
            $ro = $this->cfg->dboptions['readonly'] ?? null;
            if ($ro) {
                $instances = $ro['instance'];
                if (!is_array($instances) || !isset($instances[0])) {
                    $instances = [$instances];
                }
                foreach ($instances as $instance) {
                    if (!is_array($instance)) {
                        $instance = ['dbhost' => $instance];
                    }
                    try {
                        $this->reader = $this->connect(
                            $instance['dbhost'],
                            $instance['dbport'] ?? ($this->cfg->dboptions['dbport'] ?? 3306),
                            $instance['dbuser'] ?? $this->cfg->dbuser,
                            $instance['dbpass'] ?? $this->cfg->dbpass);
                        break;
                    } catch (dml_exception $e) {
                        continue;
                    }
                }
            }
        }
        return $this->reader ?: $this->writer();
    }

    public function uses_readonly() {
        $this->reader();
        return $this->reader !== false;
    }

    private function run($db, $sql) {
        $result = $db->query($sql);
        if ($result === false) {
            throw new dml_exception('query failed: ' . $db->error);
        }
        return $result;
    }

    public function t($table) {
        return '`' . $this->cfg->prefix . $table . '`';
    }

    public function quote($value) {
        return $value === null ? 'NULL' : "'" . $this->writer()->real_escape_string((string)$value) . "'";
    }

    public function execute($sql) {
        return $this->run($this->writer(), $sql);
    }

    public function get_tables() {
        $like = $this->writer()->real_escape_string(addcslashes($this->cfg->prefix, '_%\\'));
        $result = $this->run($this->writer(), "SELECT table_name FROM information_schema.tables"
            . " WHERE table_schema = DATABASE() AND table_name LIKE '$like%'");
        $tables = [];
        while ($row = $result->fetch_row()) {
            $tables[] = $row[0];
        }
        return $tables;
    }

    public function get_field($table, $field, array $conditions, $strictness = 0, $reader = true) {
        $where = [];
        foreach ($conditions as $name => $value) {
            $where[] = "`$name` = " . $this->quote($value);
        }
        $sql = "SELECT `$field` FROM " . $this->t($table) . ($where ? ' WHERE ' . implode(' AND ', $where) : '');
        $row = $this->run($reader ? $this->reader() : $this->writer(), $sql)->fetch_row();
        if (!$row) {
            if ($strictness == MUST_EXIST) {
                throw new dml_exception("no $field in $table");
            }
            return false;
        }
        return $row[0];
    }

    public function get_records_menu($table, $key, $value) {
        $result = $this->run($this->writer(), "SELECT `$key`, `$value` FROM " . $this->t($table));
        $out = [];
        while ($row = $result->fetch_row()) {
            $out[$row[0]] = $row[1];
        }
        return $out;
    }

    public function hostname($reader) {
        $db = $reader ? $this->reader() : $this->writer();
        return $this->run($db, 'SELECT @@hostname')->fetch_row()[0];
    }

    public function set_config($name, $value) {
        $this->execute('INSERT INTO ' . $this->t('config') . ' (name, value) VALUES ('
            . $this->quote($name) . ', ' . $this->quote($value) . ')'
            . ' ON DUPLICATE KEY UPDATE value = VALUES(value)');
    }
}

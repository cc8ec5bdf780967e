<?php
// Moodle's cli_get_params()/cli_error() semantics: options come from $_SERVER['argv'].

function cli_get_params(array $longoptions, ?array $shortmapping = null) {
    $shortmapping = (array)$shortmapping;
    $options = [];
    $unrecognized = [];
    if (empty($_SERVER['argv'])) {
        return [$longoptions, $unrecognized];
    }
    $rawoptions = $_SERVER['argv'];
    if (($key = array_search('--', $rawoptions)) !== false) {
        $rawoptions = array_slice($rawoptions, 0, $key);
    }
    unset($rawoptions[0]);
    foreach ($rawoptions as $raw) {
        if (substr($raw, 0, 2) === '--') {
            $value = substr($raw, 2);
            $parts = explode('=', $value, 2);
            if (count($parts) == 1) {
                $key = reset($parts);
                $value = true;
            } else {
                $key = $parts[0];
                $value = $parts[1];
            }
            if (array_key_exists($key, $longoptions)) {
                $options[$key] = $value;
            } else {
                $unrecognized[] = $raw;
            }
        } else if (substr($raw, 0, 1) === '-') {
            $key = substr($raw, 1);
            if (array_key_exists($key, $shortmapping)) {
                $options[$shortmapping[$key]] = true;
            } else {
                $unrecognized[] = $raw;
            }
        } else {
            $unrecognized[] = $raw;
        }
    }
    foreach ($longoptions as $key => $default) {
        if (!array_key_exists($key, $options)) {
            $options[$key] = $default;
        }
    }
    return [$options, $unrecognized];
}

function cli_error($text, $errorcode = 1) {
    fwrite(STDERR, $text . "\n");
    exit($errorcode);
}

function fixture_purge_dir($dir) {
    if (!is_dir($dir)) {
        return;
    }
    $items = new RecursiveIteratorIterator(
        new RecursiveDirectoryIterator($dir, FilesystemIterator::SKIP_DOTS),
        RecursiveIteratorIterator::CHILD_FIRST);
    foreach ($items as $item) {
        $item->isDir() ? rmdir($item->getPathname()) : unlink($item->getPathname());
    }
}

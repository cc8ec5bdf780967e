# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Moodle's cache configuration on this node ($CFG->altcacheconfigpath, local disk), written
    through Moodle's own API (moodle.cache_configured) the same way on every web node: the
    node-local file store, and the application caches Moodle marks canuselocalstore mapped
    to it; every other cache keeps Moodle's default store on the shared volume. Runs once the
    release is live and (on the primary node) the database is installed or upgraded. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tpldir ~ "/release.jinja" import is_primary with context %}
{%- set m = moodle_ha.moodle %}
{%- set c = m.cache %}

include:
  - .code
  - .config
  - .install

moodle_ha-moodle-cache-configured:
  moodle.cache_configured:
    - name: {{ m.dirroot }}
    - stores:
        {{ c.local_store_name }}:
          plugin: file
          configuration:
            path: {{ c.local_store_dir | json }}
            autocreate: true
    - local_store: {{ (c.local_store_name if c.local_store else none) | json }}
    - runas: {{ moodle_ha.web.user }}
    - php: {{ moodle_ha.web.php_bin }}
    - require:
      - cmd: moodle_ha-moodle-code-release-activated
      - file: moodle_ha-moodle-cache-config-dir-managed
      - file: moodle_ha-moodle-cache-local-store-dir-managed
{%- if is_primary %}
      - moodle: moodle_ha-moodle-install-installed
{%- endif %}

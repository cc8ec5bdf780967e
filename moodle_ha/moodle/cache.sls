# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Moodle's cache configuration on this node ($CFG->altcacheconfigpath, local disk), written
    through Moodle's own API (moodle.cache_configured) the same way on every web node: the
    node-local file store, and the application caches Moodle marks canuselocalstore mapped
    to it; the other application caches go to Moodle's default store on the shared volume,
    or with moodle:cache:application_store redis to the redis layer's endpoint on the VIP.
    Runs once the release is live and (on the primary node) the database is installed or
    upgraded. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tpldir ~ "/release.jinja" import is_primary with context %}
{%- set m = moodle_ha.moodle %}
{%- set c = m.cache %}

include:
  - .code
  - .config
  - .install

{%- set redis = c.application_store == "redis" %}

moodle_ha-moodle-cache-configured:
  moodle.cache_configured:
    - name: {{ m.dirroot }}
    - stores:
        {{ c.local_store_name }}:
          plugin: file
          configuration:
            path: {{ c.local_store_dir | json }}
            autocreate: true
{%- if redis %}
        {#- The redis layer's endpoint: HAProxy on the VIP, always the current primary. #}
        {{ c.redis_store_name }}:
          plugin: redis
          configuration:
            server: {{ (moodle_ha.topology.vip ~ ":" ~ moodle_ha.redis.endpoint_port) | json }}
            prefix: {{ c.redis_prefix | json }}
            password: {{ moodle_ha.secrets.redis_password | json }}
{%- endif %}
    - local_store: {{ (c.local_store_name if c.local_store else none) | json }}
    # The application caches not mapped to the local store: Moodle's file store on the
    # shared volume (its default store), or Redis.
    - modes:
        application: {{ ([c.redis_store_name] if redis else ["default_application"]) | json }}
    # Moodle's writer locks this node's file here (its default: a file lock on the shared
    # volume, where two nodes configured at once left a lock file nobody held, seen on real
    # Moodle 5.1: every later run waited for it until its timeout).
    - lock_dir: {{ (c.config_dir ~ "/locks") | json }}
    # Moodle's default configuration, which a node's first run writes before the node-local
    # lock exists, still locks here (<cachedir>/filelocks): a lock file older than a minute
    # there was left by a dead process and is removed first.
    - shared_lock: {{ (m.dataroot ~ "/cache/filelocks/configwrite.lock") | json }}
    - runas: {{ moodle_ha.web.user }}
    - php: {{ moodle_ha.web.php_bin }}
    - require:
      - file: moodle_ha-moodle-code-release-activated
      - file: moodle_ha-moodle-cache-config-dir-managed
      - file: moodle_ha-moodle-cache-local-store-dir-managed
{%- if is_primary %}
      - moodle: moodle_ha-moodle-install-installed
{%- endif %}

{#- The load balancers' health page answers 503, without booting Moodle, until this file
    exists: a node takes requests only once Salt has written its cache configuration. #}
moodle_ha-moodle-cache-ready-file-managed:
  file.managed:
    - name: {{ c.config_dir }}/moodle_ha-ready
    - contents: Moodle's cache configuration on this node is written by Salt (moodle_ha.moodle.cache).
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - moodle: moodle_ha-moodle-cache-configured

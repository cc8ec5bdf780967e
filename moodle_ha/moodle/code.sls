# -*- coding: utf-8 -*-
# vim: ft=sls
{#- The Moodle code: the staged release (moodle_ha.moodle.stage, with config.php and the health
    page from moodle_ha.moodle.config) goes live by switching dirroot to it with one rename(2),
    so a pillar change deploys new code atomically and every node runs identical code. Older
    releases stay for rollback: the current one and the newest others, moodle:releases_keep in
    all. Apache reloads after a switch (opcache and realpath caches follow the new path). #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tpldir ~ "/release.jinja" import source, release_switched with context %}
{%- set m = moodle_ha.moodle %}

include:
  - {{ tplroot }}.web
  - .stage
  - .config

{{ release_switched("moodle_ha-moodle-code-release-activated") }}
    - require:
      - file: moodle_ha-moodle-code-release-marker-managed
      - file: moodle_ha-moodle-config-file-managed
      - file: moodle_ha-moodle-health-page-managed
      - file: moodle_ha-moodle-health-page-legacy-managed
      # The release's component map: Moodle refuses to start without it.
      - cmd: moodle_ha-moodle-component-cache-built
{%- if source.type != "archive" %}
      - cmd: moodle_ha-moodle-component-cache-rebuilt
{%- endif %}
    - watch_in:
      - service: moodle_ha-web-apache-service-running

{#- After the switch: only directories with the release marker count, the current one stays. #}
moodle_ha-moodle-code-releases-pruned:
  moodle.releases_pruned:
    - name: {{ m.releases_dir }}
    - dirroot: {{ m.dirroot }}
    - keep: {{ m.releases_keep }}
    - component_cache_dir: {{ m.cache.component_cache_dir }}
    - require:
      - file: moodle_ha-moodle-code-release-activated

# -*- coding: utf-8 -*-
# vim: ft=sls
{#- The upgrade window opens (primary node, before any node switches to a staged release that
    is newer than the database): CLI maintenance in the shared dataroot, so every web node
    answers 503 from the moment the first node switches until the last one has, and
    upgrade.php runs once in between. moodle_ha.moodle.upgrade_window.close ends it.
    Nothing to do on a first install or when the staged release needs no upgrade. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tplroot ~ "/moodle/release.jinja" import code_dir, is_primary with context %}
{%- from tplroot ~ "/moodle/dbargs.jinja" import db_args %}
{%- from tplroot ~ "/librole.jinja" import not_primary with context %}
{%- set m = moodle_ha.moodle %}

{%- if is_primary %}
include:
  - {{ tplroot }}.moodle.stage

moodle_ha-moodle-upgrade-window-opened:
  moodle.upgrade_window_opened:
    - name: {{ m.dirroot }}
    - release: {{ code_dir }}
{{- db_args(moodle_ha) }}
    - dataroot: {{ m.dataroot }}
    - runas: {{ moodle_ha.web.user }}
    - php: {{ moodle_ha.web.php_bin }}
    - require:
      - file: moodle_ha-moodle-code-release-marker-managed
{%- else %}
{{ not_primary("moodle.upgrade_window.open", moodle_ha.nodes.primary_node) }}
{%- endif %}

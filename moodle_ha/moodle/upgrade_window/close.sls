# -*- coding: utf-8 -*-
# vim: ft=sls
{#- The upgrade window closes (primary node, once every web node runs the new release and the
    database is upgraded): the formula's maintenance flag goes. An administrator's flag stays;
    a database that does not match the live code keeps the site in maintenance and fails. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tplroot ~ "/moodle/release.jinja" import is_primary with context %}
{%- from tplroot ~ "/moodle/dbargs.jinja" import db_args %}
{%- from tplroot ~ "/librole.jinja" import not_primary with context %}
{%- set m = moodle_ha.moodle %}

{%- if is_primary %}

moodle_ha-moodle-upgrade-window-closed:
  moodle.upgrade_window_closed:
    - name: {{ m.dirroot }}
{{- db_args(moodle_ha) }}
    - dataroot: {{ m.dataroot }}
    - php: {{ moodle_ha.web.php_bin }}
{%- else %}
{{ not_primary("moodle.upgrade_window.close", moodle_ha.nodes.primary_node) }}
{%- endif %}

# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Moodle layer: code (versioned releases, dirroot symlink), config.php and health page,
    the shared dataroot (gluster mount), install/upgrade (primary node only), the node-local
    cache configuration and cron. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tplroot ~ "/librole.jinja" import role_missing with context %}
{%- set me = moodle_ha.nodes.self %}

{%- if me and "web" in me.roles %}
include:
  - .code
  - .config
  - .install
  - .cache
  - .cron
{%- else %}
{{ role_missing("moodle", "web") }}
{%- endif %}

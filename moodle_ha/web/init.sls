# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Web layer: Apache + PHP for Moodle. The Moodle code, config.php and cron are in
    moodle_ha.moodle (which includes this layer). #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tplroot ~ "/librole.jinja" import role_missing with context %}
{%- set me = moodle_ha.nodes.self %}

{%- if me and "web" in me.roles %}
include:
  - .package
  - .php
  - .apache
{%- else %}
{{ role_missing("web", "web") }}
{%- endif %}

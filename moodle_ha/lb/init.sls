# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Load balancer layer: HAProxy (DB single writer, DB readers, web farm, stats) behind a
    keepalived VIP. The kernel setting comes first so HAProxy can bind the VIP on the BACKUP. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tplroot ~ "/librole.jinja" import role_missing with context %}
{%- set me = moodle_ha.nodes.self %}

{%- if me and "lb" in me.roles %}
include:
  - .sysctl
  - .haproxy
  - .keepalived
{%- else %}
{{ role_missing("lb", "lb") }}
{%- endif %}

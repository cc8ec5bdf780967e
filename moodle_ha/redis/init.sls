# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Shared cache (role redis, three or more hosts): Debian's redis-server and redis-sentinel,
    each started by a drop-in on the formula's own file (written once, then owned by the
    server: a failover rewrites it), one primary and its replicas, and a Sentinel on every
    redis host deciding failover. HAProxy's endpoint on the VIP (moodle_ha.lb) routes to the
    current primary. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tplroot ~ "/librole.jinja" import role_missing with context %}
{%- set me = moodle_ha.nodes.self %}

{%- if me and "redis" in me.roles %}
include:
  - .package
  - .config
  - .service
{%- else %}
{{ role_missing("redis", "redis") }}
{%- endif %}

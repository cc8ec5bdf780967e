# -*- coding: utf-8 -*-
# vim: ft=sls
{#- MariaDB Galera member: packages, configuration, the :9200 clustercheck, cluster
    membership (join or a provably safe bootstrap), then accounts and the Moodle database.
    Apply to every galera node in ONE run (salt -G roles:galera state.apply moodle_ha.galera):
    with no Primary component the nodes agree through their mine positions. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tplroot ~ "/librole.jinja" import role_missing with context %}
{%- set me = moodle_ha.nodes.self %}

{%- if me and "galera" in me.roles %}
include:
  - .package
  - .config
  - .clustercheck
  - .cluster
  - .users
{%- else %}
{{ role_missing("galera", "galera") }}
{%- endif %}

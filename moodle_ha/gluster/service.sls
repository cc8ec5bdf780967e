# -*- coding: utf-8 -*-
# vim: ft=sls
{#- glusterd: the management daemon (peers, volume definitions, brick processes). #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}

include:
  - .package

moodle_ha-gluster-service-running:
  service.running:
    - name: {{ moodle_ha.services.gluster }}
    - enable: true
    - require:
      - pkg: moodle_ha-gluster-package-installed

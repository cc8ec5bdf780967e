# -*- coding: utf-8 -*-
# vim: ft=sls
{#- The last step of a decommission on a gluster host: after the first gluster node has
    removed its brick and detached it from the pool (moodle_ha.gluster), glusterd stops and
    stays disabled. The brick directory stays on the host. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- set me = moodle_ha.nodes.self %}

{%- if me and me.decommission and "gluster" in me.roles %}

moodle_ha-decommission-gluster-service-dead:
  service.dead:
    - name: {{ moodle_ha.services.gluster }}
    - enable: False
{%- else %}

moodle_ha-decommission-gluster-not-marked:
  test.fail_without_changes:
    - name: moodle_ha.decommission.gluster not applied
    - comment: >-
        {{ grains.id }} is not a gluster host marked decommission in moodle_ha:topology:hosts
{%- endif %}

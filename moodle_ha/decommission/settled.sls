# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Applied by moodle_ha.orch on a staying galera member after each galera member or
    arbitrator of a scale-in left: waits until the group's view has been steady for
    galera:leave_settle seconds, so the next member leaves a group at rest. Changes
    nothing. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}

moodle_ha-decommission-galera-view-settled:
  galera.view_settled:
    - name: {{ grains.id }}
    - settle: {{ moodle_ha.galera.leave_settle }}
    - timeout: {{ moodle_ha.galera.leave_settle_timeout }}
    - socket_path: {{ moodle_ha.galera.socket }}

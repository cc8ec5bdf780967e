# -*- coding: utf-8 -*-
# vim: ft=sls
{#- HAProxy binds the VIP on every lb host, also on the BACKUP that does not hold it yet:
    that needs non-local binds. Set now and persisted for boot. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}

moodle_ha-lb-sysctl-ip-nonlocal-bind-present:
  sysctl.present:
    - name: net.ipv4.ip_nonlocal_bind
    - value: 1
    - config: {{ moodle_ha.lb.sysctl_file }}

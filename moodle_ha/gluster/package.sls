# -*- coding: utf-8 -*-
# vim: ft=sls
{#- GlusterFS server and the brick filesystem tools. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}

moodle_ha-gluster-package-installed:
  pkg.installed:
    - pkgs: {{ moodle_ha.pkgs.gluster_server | json }}

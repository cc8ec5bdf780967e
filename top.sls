# -*- coding: utf-8 -*-
# vim: ft=sls
# Hosts pick layers by the `roles` grain (see pillar.example: topology:hosts:<id>:roles).
base:
  'roles:*':
    - match: grain
    - moodle_ha.hosts
  'roles:gluster':
    - match: grain
    - moodle_ha.gluster
  'roles:galera':
    - match: grain
    - moodle_ha.galera
  'roles:lb':
    - match: grain
    - moodle_ha.lb
  'roles:web':
    - match: grain
    - moodle_ha.web
    - moodle_ha.moodle

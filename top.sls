# -*- coding: utf-8 -*-
# vim: ft=sls
# Hosts pick layers by the `roles` grain (see pillar.example: topology:hosts:<id>:roles).
base:
  'roles:*':
    - match: grain
    - moodle_ha.hosts
    - moodle_ha.chrony
    # Per-host nftables table (removed with firewall:enabled false).
    - moodle_ha.firewall
    # Prometheus exporters (a no-op with metrics:enabled false).
    - moodle_ha.metrics
  'roles:gluster':
    - match: grain
    - moodle_ha.gluster
  'roles:galera':
    - match: grain
    - moodle_ha.galera
    - moodle_ha.backup
  # The Galera arbitrator (alone, or beside lb or web; never with galera).
  'roles:garbd':
    - match: grain
    - moodle_ha.garbd
  # The shared cache: Redis and Sentinel (three or more hosts).
  'roles:redis':
    - match: grain
    - moodle_ha.redis
  'roles:lb':
    - match: grain
    - moodle_ha.lb
  'roles:web':
    - match: grain
    - moodle_ha.web
    - moodle_ha.moodle

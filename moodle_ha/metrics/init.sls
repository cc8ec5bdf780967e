# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Prometheus endpoints from Debian's packages (moodle_ha:metrics:enabled, default true):
    the node exporter on every host, the mysqld exporter on each galera host. HAProxy's own
    exporter is part of the lb layer's haproxy.cfg (the stats listener). Each endpoint binds
    this host's topology IP only. Disabled, every file of the layer renders one state that
    changes nothing: exporters installed earlier are left as they are (stop or purge them by
    hand), the DB account too. #}
include:
  - .node_exporter
  - .mysqld_exporter

# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Load balancer layer: HAProxy (DB single writer, DB readers, web farm, stats) behind a
    keepalived VIP. The kernel setting comes first so HAProxy can bind the VIP on the BACKUP. #}
include:
  - .sysctl
  - .haproxy
  - .keepalived

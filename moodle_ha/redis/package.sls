# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Redis and Sentinel from Debian's packages. Their postinst starts both on Debian's own
    files (measured on Debian 13: the server on the loopback address, Sentinel on every
    address without a password, which the firewall does not open); the drop-ins of
    moodle_ha.redis.config move them to the formula's files, bound to the host's cluster
    address (one restart, on the first run). #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}

moodle_ha-redis-package-installed:
  pkg.installed:
    - pkgs: {{ moodle_ha.pkgs.redis | json }}

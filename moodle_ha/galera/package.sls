# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Debian's postinst starts a standalone server (wsrep off) right after installation;
    that cannot be prevented without a policy-rc.d. moodle_ha.galera.cluster stops it
    before the node joins or bootstraps. mariadb.socket is masked first: its listener on
    3306 makes the server's recovery step fail ("Bind on TCP/IP port ... error: 98"). #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}

moodle_ha-galera-socket-masked:
  service.masked:
    - name: {{ moodle_ha.services.galera_socket }}

moodle_ha-galera-package-installed:
  pkg.installed:
    - pkgs:
{%- for pkg in moodle_ha.pkgs.galera %}
      - {{ pkg }}
{%- endfor %}
    - require:
      - service: moodle_ha-galera-socket-masked

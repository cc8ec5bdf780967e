# -*- coding: utf-8 -*-
# vim: ft=sls
{#- HTTP health for HAProxy and for the galera peers: one short script per connection,
    forked by a socat listener running as an unprivileged system user that can read only its
    0640 defaults file; the database account has USAGE only. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- set galera = moodle_ha.galera %}
{%- set cc = galera.clustercheck %}
{%- set unit = "moodle_ha-clustercheck.service" %}

include:
  - .package

moodle_ha-galera-clustercheck-user-present:
  user.present:
    - name: {{ cc.system_user }}
    - system: True
    - usergroup: True
    - home: /nonexistent
    - createhome: False
    - shell: /usr/sbin/nologin

moodle_ha-galera-clustercheck-confdir-managed:
  file.directory:
    - name: {{ salt["file.dirname"](cc.defaults_file) }}
    - user: root
    - group: root
    - mode: '0755'

moodle_ha-galera-clustercheck-defaults-managed:
  file.managed:
    - name: {{ cc.defaults_file }}
    - user: root
    - group: {{ cc.system_user }}
    - mode: '0640'
    - show_changes: False
    - source: salt://{{ tplroot }}/galera/files/clustercheck.cnf.jinja
    - template: jinja
    - context:
        tpldir: {{ tpldir }}
    - require:
      - user: moodle_ha-galera-clustercheck-user-present
      - file: moodle_ha-galera-clustercheck-confdir-managed

moodle_ha-galera-clustercheck-script-managed:
  file.managed:
    - name: {{ cc.script }}
    - source: salt://{{ tplroot }}/galera/files/clustercheck.jinja
    - template: jinja
    - context:
        tpldir: {{ tpldir }}
    - user: root
    - group: root
    - mode: '0755'
    - check_cmd: bash -n

moodle_ha-galera-clustercheck-unit-managed:
  file.managed:
    - name: /etc/systemd/system/{{ unit }}
    - source: salt://{{ tplroot }}/galera/files/{{ unit }}.jinja
    - template: jinja
    - context:
        tpldir: {{ tpldir }}
    - user: root
    - group: root
    - mode: '0644'

moodle_ha-galera-clustercheck-systemd-reloaded:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: moodle_ha-galera-clustercheck-unit-managed

moodle_ha-galera-clustercheck-service-running:
  service.running:
    - name: {{ unit }}
    - enable: True
    - require:
      - cmd: moodle_ha-galera-clustercheck-systemd-reloaded
      - file: moodle_ha-galera-clustercheck-script-managed
      - file: moodle_ha-galera-clustercheck-defaults-managed
      - pkg: moodle_ha-galera-package-installed
    - watch:
      - file: moodle_ha-galera-clustercheck-unit-managed

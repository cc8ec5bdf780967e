# -*- coding: utf-8 -*-
# vim: ft=sls
{#- moodle_ha-backup.service (one run) started by moodle_ha-backup.timer on the schedule. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}

include:
  - .script

{%- for unit in ("moodle_ha-backup.service", "moodle_ha-backup.timer") %}

moodle_ha-backup-{{ unit.split(".")[-1] }}-file-managed:
  file.managed:
    - name: /etc/systemd/system/{{ unit }}
    - source: salt://{{ tpldir }}/files/{{ unit }}.jinja
    - template: jinja
    - context:
        tpldir: {{ tpldir }}
    - user: root
    - group: root
    - mode: '0644'
{%- endfor %}

moodle_ha-backup-systemd-reloaded:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: moodle_ha-backup-service-file-managed
      - file: moodle_ha-backup-timer-file-managed

moodle_ha-backup-timer-running:
  service.running:
    - name: moodle_ha-backup.timer
    - enable: True
    - require:
      - cmd: moodle_ha-backup-systemd-reloaded
      - file: moodle_ha-backup-script-file-managed
      - file: moodle_ha-backup-config-file-managed
    - watch:
      - file: moodle_ha-backup-timer-file-managed

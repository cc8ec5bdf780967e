# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Scheduled backups on the backup node (backup:node, else the last galera host by name that
    mounts the dataroot): the moodle_ha-backup script, its configuration and a systemd timer.
    Every other galera node gets nothing but the timer stopped, so moving backup:node moves
    the schedule. See README "Backup and restore". #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}

{%- if moodle_ha.backup.enabled and moodle_ha.nodes.self.name == moodle_ha.nodes.backup_node %}
include:
  - .script
  - .timer
{%- else %}

moodle_ha-backup-timer-dead:
  service.dead:
    - name: moodle_ha-backup.timer
    - enable: False

{#- Without its configuration a node is not taken for the backup node (salt-run
    moodle_ha.backup_now); backups already written stay where they are. #}
moodle_ha-backup-config-file-absent:
  file.absent:
    - name: {{ moodle_ha.backup.config_file }}
{%- endif %}

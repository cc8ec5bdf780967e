# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Moodle cron as a systemd timer running `cron.php --keep-alive=0` once a minute as the web
    user. The timer runs on the primary node only: one designated node keeps scheduling simple
    and observable, and Moodle's lock factory (GET_LOCK over the single-writer port) still
    keeps any task from running twice should a second node ever run cron (measured: no task
    ran twice with two nodes). The units exist on every web node, so moving cron is a pillar
    change of moodle:primary_node. A oneshot service is never started twice on one node. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tpldir ~ "/release.jinja" import is_primary with context %}
{%- set m = moodle_ha.moodle %}
{%- set run_cron = is_primary and m.cron.enabled %}

include:
  - .install

moodle_ha-moodle-cron-service-file-managed:
  file.managed:
    - name: /etc/systemd/system/moodle_ha-cron.service
    - source: salt://{{ tpldir }}/files/moodle_ha-cron.service.jinja
    - template: jinja
    - context:
        tpldir: {{ tpldir }}
    - user: root
    - group: root
    - mode: '0644'

moodle_ha-moodle-cron-timer-file-managed:
  file.managed:
    - name: /etc/systemd/system/moodle_ha-cron.timer
    - source: salt://{{ tpldir }}/files/moodle_ha-cron.timer.jinja
    - template: jinja
    - context:
        tpldir: {{ tpldir }}
    - user: root
    - group: root
    - mode: '0644'

moodle_ha-moodle-cron-systemd-reloaded:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: moodle_ha-moodle-cron-service-file-managed
      - file: moodle_ha-moodle-cron-timer-file-managed

{%- if run_cron %}

moodle_ha-moodle-cron-timer-running:
  service.running:
    - name: moodle_ha-cron.timer
    - enable: true
    - require:
      - cmd: moodle_ha-moodle-cron-systemd-reloaded
      - moodle: moodle_ha-moodle-install-installed
    - watch:
      - file: moodle_ha-moodle-cron-timer-file-managed
{%- else %}

moodle_ha-moodle-cron-timer-dead:
  service.dead:
    - name: moodle_ha-cron.timer
    - enable: false
    - require:
      - cmd: moodle_ha-moodle-cron-systemd-reloaded
{%- endif %}

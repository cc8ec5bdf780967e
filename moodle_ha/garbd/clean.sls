# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Undo moodle_ha.garbd on this host (not part of any top file or orchestration): stop and
    purge the arbitrator, remove the formula's drop-in and garbd's saved view. Safe for data
    (garbd holds none) but not for quorum: with two galera nodes, the next failure of either
    one then stops the cluster. Take the host out of the topology's garbd role first
    (validation refuses an even number of voters). The log directory is left. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- set service = moodle_ha.services.garbd %}

moodle_ha-garbd-clean-service-dead:
  service.dead:
    - name: {{ service }}
    - enable: False

{#- Purging also removes the package's conffile, /etc/default/garb. #}
moodle_ha-garbd-clean-package-purged:
  pkg.purged:
    - pkgs: {{ moodle_ha.pkgs.garbd | json }}
    - require:
      - service: moodle_ha-garbd-clean-service-dead

moodle_ha-garbd-clean-config-file-absent:
  file.absent:
    - name: {{ moodle_ha.garbd.config_file }}
    - require:
      - pkg: moodle_ha-garbd-clean-package-purged

moodle_ha-garbd-clean-dropin-absent:
  file.absent:
    - name: /etc/systemd/system/{{ service }}.service.d/moodle_ha-garbd.conf
    - require:
      - pkg: moodle_ha-garbd-clean-package-purged

moodle_ha-garbd-clean-state-dir-absent:
  file.absent:
    - name: /var/lib/garbd
    - require:
      - service: moodle_ha-garbd-clean-service-dead

moodle_ha-garbd-clean-systemd-reloaded:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: moodle_ha-garbd-clean-dropin-absent

# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Undo moodle_ha.metrics on this host (not part of any top file or orchestration): stop and
    purge the exporters, remove the formula's drop-ins and client file. HAProxy's endpoint
    goes with metrics:enabled false and the lb layer; the mysqld exporter's DB account (no
    password, no data privilege) stays: `DROP USER prometheus@localhost` on one node if wanted. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- set metrics = moodle_ha.metrics %}

{%- for name in ("mysqld_exporter", "node_exporter") %}
{%-   set service = moodle_ha.services[name] %}
{%-   set sid = "moodle_ha-metrics-clean-" ~ name | replace("_", "-") %}

{{ sid }}-service-dead:
  service.dead:
    - name: {{ service }}
    - enable: False

{{ sid }}-package-purged:
  pkg.purged:
    - pkgs: {{ moodle_ha.pkgs[name] | json }}
    - require:
      - service: {{ sid }}-service-dead

{{ sid }}-dropin-absent:
  file.absent:
    - name: /etc/systemd/system/{{ service }}.service.d/moodle_ha-metrics.conf
    - require:
      - pkg: {{ sid }}-package-purged

{{ sid }}-defaults-file-absent:
  file.absent:
    - name: {{ metrics[name].defaults_file }}
    - require:
      - pkg: {{ sid }}-package-purged
{%- endfor %}

moodle_ha-metrics-clean-mysqld-exporter-my-cnf-absent:
  file.absent:
    - name: {{ metrics.mysqld_exporter.my_cnf }}

moodle_ha-metrics-clean-systemd-reloaded:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: moodle_ha-metrics-clean-mysqld-exporter-dropin-absent
      - file: moodle_ha-metrics-clean-node-exporter-dropin-absent

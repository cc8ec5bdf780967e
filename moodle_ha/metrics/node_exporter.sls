# -*- coding: utf-8 -*-
# vim: ft=sls
{#- prometheus-node-exporter on every host, listening on the host's topology IP only. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tplroot ~ "/libtofs.jinja" import files_switch with context %}
{%- set metrics = moodle_ha.metrics %}
{%- set exporter = metrics.node_exporter %}
{%- set service = moodle_ha.services.node_exporter %}
{%- set me = moodle_ha.nodes.self %}

{%- if not metrics.enabled %}

moodle_ha-metrics-node-exporter-disabled:
  test.succeed_without_changes:
    - name: moodle_ha:metrics:enabled is false (nothing installed, nothing removed)
{%- elif not me %}

moodle_ha-metrics-node-exporter-host-unknown:
  test.fail_without_changes:
    - name: moodle_ha:topology:hosts has no host {{ grains.id }} (no IP to bind the exporter to)
{%- else %}

{#- Both files come before the package: its postinst starts the exporter at once, and with
    Debian's empty ARGS it would listen on every address until the next restart. apt keeps
    an existing conffile (salt runs dpkg with --force-confold). #}
moodle_ha-metrics-node-exporter-defaults-file-managed:
  file.managed:
    - name: {{ exporter.defaults_file }}
    - source: {{- files_switch(moodle_ha.tofs, tpldir, "prometheus-node-exporter.jinja", "moodle_ha-metrics-node-exporter-defaults-file-managed") }}
    - template: jinja
    - context:
        tpldir: {{ tpldir }}
    - user: root
    - group: root
    - mode: '0644'

moodle_ha-metrics-node-exporter-dropin-file-managed:
  file.managed:
    - name: /etc/systemd/system/{{ service }}.service.d/moodle_ha-metrics.conf
    - source: salt://{{ tplroot }}/metrics/files/moodle_ha-metrics.conf.jinja
    - template: jinja
    - makedirs: True
    - user: root
    - group: root
    - mode: '0644'

moodle_ha-metrics-node-exporter-systemd-reloaded:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: moodle_ha-metrics-node-exporter-dropin-file-managed

{#- Without recommends: prometheus-node-exporter-collectors would add timers for apt, SMART,
    IPMI and NVMe scripts and pull smartmontools, ipmitool and nvme-cli onto every host. #}
moodle_ha-metrics-node-exporter-package-installed:
  pkg.installed:
    - pkgs: {{ moodle_ha.pkgs.node_exporter | json }}
    - install_recommends: False
    - require:
      - file: moodle_ha-metrics-node-exporter-defaults-file-managed
      - cmd: moodle_ha-metrics-node-exporter-systemd-reloaded

{#- Restart, not reload: the exporter reads its flags (the listen address) only at start. #}
moodle_ha-metrics-node-exporter-service-running:
  service.running:
    - name: {{ service }}
    - enable: True
    - watch:
      - pkg: moodle_ha-metrics-node-exporter-package-installed
      - file: moodle_ha-metrics-node-exporter-defaults-file-managed
      - file: moodle_ha-metrics-node-exporter-dropin-file-managed
{%- endif %}

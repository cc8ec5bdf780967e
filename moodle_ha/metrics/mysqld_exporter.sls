# -*- coding: utf-8 -*-
# vim: ft=sls
{#- prometheus-mysqld-exporter on each galera host: listens on the host's topology IP only,
    connects over the local socket as metrics:system_user, an account the galera layer
    creates IDENTIFIED VIA unix_socket on the bootstrap node (Galera replicates it). No
    password exists. Until the account exists, the endpoint answers with mysql_up 0. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tplroot ~ "/libtofs.jinja" import files_switch with context %}
{%- set metrics = moodle_ha.metrics %}
{%- set exporter = metrics.mysqld_exporter %}
{%- set service = moodle_ha.services.mysqld_exporter %}
{%- set me = moodle_ha.nodes.self %}

{%- if not metrics.enabled %}

moodle_ha-metrics-mysqld-exporter-disabled:
  test.succeed_without_changes:
    - name: moodle_ha:metrics:enabled is false (nothing installed, nothing removed)
{%- elif not me or "galera" not in me.roles %}

moodle_ha-metrics-mysqld-exporter-not-galera:
  test.succeed_without_changes:
    - name: {{ grains.id }} has no galera role (no mysqld exporter)
{%- else %}

{#- The drop-in (and the client file) come before the package, whose postinst starts the
    exporter at once. With Debian's empty ARGS that start fails (no connection configured)
    and never listens. #}
moodle_ha-metrics-mysqld-exporter-dropin-file-managed:
  file.managed:
    - name: /etc/systemd/system/{{ service }}.service.d/moodle_ha-metrics.conf
    - source: salt://{{ tplroot }}/metrics/files/moodle_ha-metrics.conf.jinja
    - template: jinja
    - makedirs: True
    - user: root
    - group: root
    - mode: '0644'

moodle_ha-metrics-mysqld-exporter-systemd-reloaded:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: moodle_ha-metrics-mysqld-exporter-dropin-file-managed
{%-   if exporter.connection == "my_cnf" %}

{#- User and socket only: nothing secret in it. #}
moodle_ha-metrics-mysqld-exporter-my-cnf-file-managed:
  file.managed:
    - name: {{ exporter.my_cnf }}
    - source: {{- files_switch(moodle_ha.tofs, tpldir, "mysqld-exporter.cnf.jinja", "moodle_ha-metrics-mysqld-exporter-my-cnf-file-managed") }}
    - template: jinja
    - context:
        tpldir: {{ tpldir }}
    - makedirs: True
    - user: root
    - group: root
    - mode: '0644'
{%-   endif %}

moodle_ha-metrics-mysqld-exporter-package-installed:
  pkg.installed:
    - pkgs: {{ moodle_ha.pkgs.mysqld_exporter | json }}
    - require:
      - cmd: moodle_ha-metrics-mysqld-exporter-systemd-reloaded
{%-   if exporter.connection == "my_cnf" %}
      - file: moodle_ha-metrics-mysqld-exporter-my-cnf-file-managed
{%-   endif %}

{#- After the package: its postinst creates the system user and makes this file
    <user>:<user> 0640 on every configure; the same ownership here keeps upgrades at 0 changes. #}
moodle_ha-metrics-mysqld-exporter-defaults-file-managed:
  file.managed:
    - name: {{ exporter.defaults_file }}
    - source: {{- files_switch(moodle_ha.tofs, tpldir, "prometheus-mysqld-exporter.jinja", "moodle_ha-metrics-mysqld-exporter-defaults-file-managed") }}
    - template: jinja
    - context:
        tpldir: {{ tpldir }}
    - user: {{ metrics.system_user }}
    - group: {{ metrics.system_user }}
    - mode: '0640'
    - require:
      - pkg: moodle_ha-metrics-mysqld-exporter-package-installed

{#- Restart, not reload: the listen address and the connection are read only at start. #}
moodle_ha-metrics-mysqld-exporter-service-running:
  service.running:
    - name: {{ service }}
    - enable: True
    - watch:
      - pkg: moodle_ha-metrics-mysqld-exporter-package-installed
      - file: moodle_ha-metrics-mysqld-exporter-defaults-file-managed
      - file: moodle_ha-metrics-mysqld-exporter-dropin-file-managed
{%-   if exporter.connection == "my_cnf" %}
      - file: moodle_ha-metrics-mysqld-exporter-my-cnf-file-managed
{%-   endif %}
{%- endif %}

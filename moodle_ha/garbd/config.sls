# -*- coding: utf-8 -*-
# vim: ft=sls
{#- /etc/default/garb (sourced by garb-systemd, the ExecStart of Debian's garb.service) and a
    drop-in that restarts garbd whenever it exits. Both are written before the package: its
    postinst enables and starts garb.service, which with Debian's all-commented default file
    fails ("List of GALERA_NODES is not configured"). apt keeps this file over the package's
    conffile (salt runs dpkg with --force-confold). No secret in either file. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tplroot ~ "/libtofs.jinja" import files_switch with context %}
{%- from tplroot ~ "/galera/libtls.jinja" import galera_tls_files with context %}
{%- set me = moodle_ha.nodes.self %}
{%- set service = moodle_ha.services.garbd %}

{%- if not me or "garbd" not in me.roles %}

moodle_ha-garbd-config-not-garbd:
  test.fail_without_changes:
    - name: {{ grains.id }} has no role garbd in moodle_ha:topology:hosts (no arbitrator here)
{%- else %}

{%- if moodle_ha.galera.tls.enabled %}
{#- The galera layer's TLS files (galera:tls): garbd is a member of the same TLS group. Its
    user differs per release (nobody on Debian 12, _galera on 13): the drop-in below gives
    garb.service this group to read the key. #}
moodle_ha-garbd-tls-group-present:
  group.present:
    - name: {{ moodle_ha.garbd.tls_group }}
    - system: True
{{ galera_tls_files(moodle_ha, "garbd", moodle_ha.garbd.tls_group,
                    [{"group": "moodle_ha-garbd-tls-group-present"}]) }}
{%- endif %}

{#- garb-systemd is bash and sources the file: a syntax error would stop garbd at its next
    start, so the new file is checked before it replaces the old one. #}
moodle_ha-garbd-config-file-managed:
  file.managed:
    - name: {{ moodle_ha.garbd.config_file }}
    - source: {{- files_switch(moodle_ha.tofs, tpldir, "garb.jinja", "moodle_ha-garbd-config-file-managed") }}
    - template: jinja
    - context:
        tpldir: {{ tpldir }}
    - check_cmd: /bin/bash -n
    - user: root
    - group: root
    - mode: '0644'

moodle_ha-garbd-dropin-file-managed:
  file.managed:
    - name: /etc/systemd/system/{{ service }}.service.d/moodle_ha-garbd.conf
    - source: {{- files_switch(moodle_ha.tofs, tpldir, "moodle_ha-garbd.conf.jinja", "moodle_ha-garbd-dropin-file-managed") }}
    - template: jinja
    - context:
        tpldir: {{ tpldir }}
    - makedirs: True
    - user: root
    - group: root
    - mode: '0644'

moodle_ha-garbd-systemd-reloaded:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: moodle_ha-garbd-dropin-file-managed
{%- endif %}

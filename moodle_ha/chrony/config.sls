# -*- coding: utf-8 -*-
# vim: ft=sls
{#- The whole /etc/chrony/chrony.conf (the package's postinst keeps a locally changed file
    through ucf), checked with `chronyd -p` before it replaces the old one. In a container, a
    drop-in that lets chrony.service start without CAP_SYS_TIME and runs chronyd with -x;
    elsewhere no drop-in (one left from an earlier container guess is removed). Written
    after the package: its configuration directory and the daemon that checks the file come
    with it. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tplroot ~ "/libtofs.jinja" import files_switch with context %}
{%- from tplroot ~ "/chrony/libchrony.jinja" import in_container with context %}
{%- set chrony = moodle_ha.chrony %}

{%- if not chrony.enabled %}

moodle_ha-chrony-config-disabled:
  test.succeed_without_changes:
    - name: moodle_ha:chrony:enabled is false (nothing written, nothing removed)
{%- elif not moodle_ha.nodes.self %}

moodle_ha-chrony-config-host-unknown:
  test.fail_without_changes:
    - name: moodle_ha:topology:hosts has no host {{ grains.id }} (no time sources for it)
{%- else %}

include:
  - .package

moodle_ha-chrony-config-file-managed:
  file.managed:
    - name: {{ chrony.config_file }}
    - source: {{- files_switch(moodle_ha.tofs, tpldir, "chrony.conf.jinja", "moodle_ha-chrony-config-file-managed") }}
    - template: jinja
    - context:
        tpldir: {{ tpldir }}
    - check_cmd: {{ chrony.daemon }} -p -f
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - pkg: moodle_ha-chrony-package-installed
{%-   if in_container %}

moodle_ha-chrony-dropin-file-managed:
  file.managed:
    - name: {{ chrony.dropin }}
    - source: {{- files_switch(moodle_ha.tofs, tpldir, "moodle_ha.conf.jinja", "moodle_ha-chrony-dropin-file-managed") }}
    - template: jinja
    - context:
        tpldir: {{ tpldir }}
    - makedirs: True
    - user: root
    - group: root
    - mode: '0644'
{%-     set dropin = "moodle_ha-chrony-dropin-file-managed" %}
{%-   else %}

moodle_ha-chrony-dropin-file-absent:
  file.absent:
    - name: {{ chrony.dropin }}
{%-     set dropin = "moodle_ha-chrony-dropin-file-absent" %}
{%-   endif %}

moodle_ha-chrony-systemd-reloaded:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: {{ dropin }}
{%- endif %}

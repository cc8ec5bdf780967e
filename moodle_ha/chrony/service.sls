# -*- coding: utf-8 -*-
# vim: ft=sls
{#- chrony.service running and enabled. Restart, not reload: chronyd reads its sources,
    bind addresses and allow lines only at start (clients keep their clock meanwhile). #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tplroot ~ "/chrony/libchrony.jinja" import in_container with context %}
{%- set chrony = moodle_ha.chrony %}
{%- set dropin = "moodle_ha-chrony-dropin-file-" ~ ("managed" if in_container else "absent") %}

{%- if not chrony.enabled %}

moodle_ha-chrony-service-disabled:
  test.succeed_without_changes:
    - name: moodle_ha:chrony:enabled is false (the service is left as it is)
{%- elif not moodle_ha.nodes.self %}

moodle_ha-chrony-service-host-unknown:
  test.fail_without_changes:
    - name: moodle_ha:topology:hosts has no host {{ grains.id }} (no time sources for it)
{%- else %}

include:
  - .package
  - .config

moodle_ha-chrony-service-running:
  service.running:
    - name: {{ chrony.service }}
    - enable: True
    - require:
      - pkg: moodle_ha-chrony-package-installed
      - cmd: moodle_ha-chrony-systemd-reloaded
    - watch:
      - file: moodle_ha-chrony-config-file-managed
      - file: {{ dropin }}
{%- endif %}

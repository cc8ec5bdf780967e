# -*- coding: utf-8 -*-
# vim: ft=sls
{#- garb.service running and enabled. Restart, not reload: garbd reads its nodes, group and
    options only at start (a restart is one vote leaving and rejoining; the galera nodes keep
    their quorum meanwhile). The package's own start and upgrade restart come from its
    postinst, hence require, not watch, on the package. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- set me = moodle_ha.nodes.self %}

{%- if not me or "garbd" not in me.roles %}

moodle_ha-garbd-service-not-garbd:
  test.fail_without_changes:
    - name: {{ grains.id }} has no role garbd in moodle_ha:topology:hosts (no arbitrator here)
{%- else %}

include:
  - .config
  - .package

moodle_ha-garbd-service-running:
  service.running:
    - name: {{ moodle_ha.services.garbd }}
    - enable: True
    - require:
      - pkg: moodle_ha-garbd-package-installed
    - watch:
      - file: moodle_ha-garbd-config-file-managed
      - file: moodle_ha-garbd-dropin-file-managed
{%- if moodle_ha.galera.tls.enabled %}
      - file: moodle_ha-garbd-tls-ca-file-managed
      - file: moodle_ha-garbd-tls-certificate-file-managed
      - file: moodle_ha-garbd-tls-key-file-managed
{%- endif %}
{%- endif %}

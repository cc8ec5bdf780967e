# -*- coding: utf-8 -*-
# vim: ft=sls
{#- galera-arbitrator-4 alone: garbd links the Galera group code statically, so neither
    galera-4 nor MariaDB comes onto the host. Its postinst starts garb.service with the
    configuration already in place. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- set me = moodle_ha.nodes.self %}

{%- if not me or "garbd" not in me.roles %}

moodle_ha-garbd-package-not-garbd:
  test.fail_without_changes:
    - name: {{ grains.id }} has no role garbd in moodle_ha:topology:hosts (no arbitrator here)
{%- else %}

include:
  - .config

moodle_ha-garbd-package-installed:
  pkg.installed:
    - pkgs: {{ moodle_ha.pkgs.garbd | json }}
    - require:
      - file: moodle_ha-garbd-config-file-managed
      - cmd: moodle_ha-garbd-systemd-reloaded
{%- if moodle_ha.galera.tls.enabled %}
      - file: moodle_ha-garbd-tls-key-file-managed
{%- endif %}
{%- endif %}

# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Debian's chrony (4.3 on Debian 12, 4.6 on Debian 13). It conflicts with every other
    time daemon (time-daemon): apt removes systemd-timesyncd where it is installed. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- set chrony = moodle_ha.chrony %}

{%- if not chrony.enabled %}

moodle_ha-chrony-package-disabled:
  test.succeed_without_changes:
    - name: moodle_ha:chrony:enabled is false (nothing installed, nothing removed)
{%- elif not moodle_ha.nodes.self %}

moodle_ha-chrony-package-host-unknown:
  test.fail_without_changes:
    - name: moodle_ha:topology:hosts has no host {{ grains.id }} (no time sources for it)
{%- else %}

moodle_ha-chrony-package-installed:
  pkg.installed:
    - pkgs: {{ chrony.pkgs | json }}
{%- endif %}

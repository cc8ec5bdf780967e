# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Per-host firewall: the nftables table `inet moodle_ha` (default-drop input) derived from
    the topology by _modules/moodle_ha_firewall.py, loaded by moodle_ha-firewall.service
    (at boot, before the network) and replaced in one nft transaction when it changes.
    Every host of the topology applies it; firewall:enabled false removes the table. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tplroot ~ "/libtofs.jinja" import files_switch with context %}
{%- set fw = moodle_ha.firewall %}
{%- set me = moodle_ha.nodes.self %}

{%- if not me %}

moodle_ha-firewall-not-in-topology:
  test.fail_without_changes:
    - name: {{ grains.id }} is not a host of moodle_ha:topology:hosts (no firewall derived for it)
{%- elif fw.enabled %}

moodle_ha-firewall-package-installed:
  pkg.installed:
    - pkgs: {{ moodle_ha.pkgs.firewall | json }}

{#- nft -c parses the whole table and asks the kernel to check it without committing it:
    a file that would not load never replaces the one in place. #}
moodle_ha-firewall-ruleset-file-managed:
  file.managed:
    - name: {{ fw.file }}
    - source: {{- files_switch(moodle_ha.tofs, tpldir, "moodle_ha.nft.jinja", "moodle_ha-firewall-ruleset-file-managed") }}
    - template: jinja
    - context:
        tpldir: {{ tpldir }}
    - makedirs: True
    - user: root
    - group: root
    - mode: '0600'
    - check_cmd: {{ fw.nft }} -c -f
    - require:
      - pkg: moodle_ha-firewall-package-installed

moodle_ha-firewall-unit-file-managed:
  file.managed:
    - name: /etc/systemd/system/{{ fw.unit }}
    - source: {{- files_switch(moodle_ha.tofs, tpldir, "moodle_ha-firewall.service.jinja", "moodle_ha-firewall-unit-file-managed") }}
    - template: jinja
    - context:
        tpldir: {{ tpldir }}
    - user: root
    - group: root
    - mode: '0644'

moodle_ha-firewall-systemd-reloaded:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: moodle_ha-firewall-unit-file-managed

{#- Reload = `nft -f` of the whole file: the table is deleted and created again in one
    transaction, so no packet ever meets a half-built ruleset, and established connections
    (Salt's among them) stay accepted through conntrack. #}
moodle_ha-firewall-service-running:
  service.running:
    - name: {{ fw.unit }}
    - enable: True
    - reload: True
    - require:
      - cmd: moodle_ha-firewall-systemd-reloaded
    - watch:
      - file: moodle_ha-firewall-ruleset-file-managed
{%- else %}

moodle_ha-firewall-service-dead:
  service.dead:
    - name: {{ fw.unit }}
    - enable: False
{%- endif %}

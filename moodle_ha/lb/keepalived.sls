# -*- coding: utf-8 -*-
# vim: ft=sls
{#- keepalived: package, the unprivileged user its check script runs as, configuration
    (checked with `keepalived --config-test` before it replaces the old one), service (reload = SIGHUP,
    the VIP stays up). The VIP interface is lb:keepalived:interface, or the interface that
    carries this host's topology IP (grain ip4_interfaces). #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tplroot ~ "/libtofs.jinja" import files_switch with context %}
{%- set ka = moodle_ha.lb.keepalived %}
{%- set me = moodle_ha.nodes.self %}
{%- set found = [] %}
{%- if ka.interface %}
{%-   do found.append(ka.interface) %}
{%- elif me %}
{%-   for name, addrs in salt["grains.get"]("ip4_interfaces", {}) | dictsort %}
{%-     if me.ip in addrs %}
{%-       do found.append(name) %}
{%-     endif %}
{%-   endfor %}
{%- endif %}
{%- if not ka.preempt and ka.track_weight %}
{{-   raise("moodle_ha:lb:keepalived:track_weight: must be 0 with preempt false (nopreempt"
            " ignores priority changes, so a weighted check would never move the VIP)") }}
{%- endif %}

include:
  - .haproxy

moodle_ha-lb-keepalived-package-installed:
  pkg.installed:
    - pkgs: {{ moodle_ha.pkgs.keepalived | json }}

{#- The configuration check: `keepalived --config-test`, or on releases whose keepalived
    needs it a wrapper for the bug described in the script (lb:keepalived:config_test_wrapper). #}
{%- if ka.config_test_wrapper %}
{%-   set config_test = ka.config_test_wrapper %}

moodle_ha-lb-keepalived-config-test-file-managed:
  file.managed:
    - name: {{ ka.config_test_wrapper }}
    - source: salt://{{ tpldir }}/files/moodle_ha-keepalived-config-test.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: '0755'
    - context:
        binary: {{ ka.binary }}
{%- else %}
{%-   set config_test = ka.binary ~ " --config-test --use-file" %}
{%- endif %}

{#- enable_script_security: the check script never runs as root. #}
moodle_ha-lb-keepalived-script-user-present:
  user.present:
    - name: {{ ka.script_user }}
    - system: true
    - usergroup: true
    - shell: /usr/sbin/nologin
    - home: /nonexistent
    - createhome: false

{%- if me is none or "lb" not in me.roles or not found %}

moodle_ha-lb-keepalived-config-file-managed:
  test.fail_without_changes:
    - name: >-
{%-   if me is none or "lb" not in me.roles %}
        moodle_ha:topology:hosts: minion {{ grains.id }} is not a host with role lb,
        no keepalived configuration for it
{%-   else %}
        moodle_ha:lb:keepalived:interface: no interface of this host carries its topology IP
        {{ me.ip }} (grain ip4_interfaces); set the interface in the pillar
{%-   endif %}
{%- else %}

{#- Holds the VRRP password: not world-readable, never shown in a diff. #}
moodle_ha-lb-keepalived-config-file-managed:
  file.managed:
    - name: {{ ka.config_file }}
    - source: {{- files_switch(moodle_ha.tofs, tpldir, "keepalived.conf.jinja", "moodle_ha-lb-keepalived-config-file-managed") }}
    - template: jinja
    - user: root
    - group: root
    - mode: '0640'
    - makedirs: true
    - show_changes: false
    - context:
        tpldir: {{ tpldir }}
        interface: {{ found[0] }}
    - check_cmd: {{ config_test }}
    - require:
      - pkg: moodle_ha-lb-keepalived-package-installed
      - user: moodle_ha-lb-keepalived-script-user-present
{%-   if ka.config_test_wrapper %}
      - file: moodle_ha-lb-keepalived-config-test-file-managed
{%-   endif %}
{%- endif %}

{#- Starts after HAProxy so the VIP is never claimed by a host whose HAProxy is not up. #}
moodle_ha-lb-keepalived-service-running:
  service.running:
    - name: {{ moodle_ha.services.keepalived }}
    - enable: true
    - reload: true
    - require:
      - service: moodle_ha-lb-haproxy-service-running
    - watch:
      - pkg: moodle_ha-lb-keepalived-package-installed
{%- if me is none or "lb" not in me.roles or not found %}
      - test: moodle_ha-lb-keepalived-config-file-managed
{%- else %}
      - file: moodle_ha-lb-keepalived-config-file-managed
{%- endif %}

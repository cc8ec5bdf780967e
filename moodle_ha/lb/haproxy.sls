# -*- coding: utf-8 -*-
# vim: ft=sls
{#- HAProxy: package, configuration built from the topology, service.
    The configuration is checked (`haproxy -c`) before it replaces the old one: a bad value
    fails this state and the running HAProxy keeps serving the previous configuration.
    Changes are applied by reload (seamless: new workers take the listeners, old ones finish). #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tplroot ~ "/libtofs.jinja" import files_switch with context %}
{%- set haproxy = moodle_ha.lb.haproxy %}

include:
  - .sysctl

moodle_ha-lb-haproxy-package-installed:
  pkg.installed:
    - pkgs: {{ moodle_ha.pkgs.haproxy | json }}

{%- if moodle_ha.lb.tls.enabled %}

{#- The site's certificate chain and its private key, in the one file HAProxy reads: root
    and HAProxy's group only, never shown in a diff. Written before the configuration,
    whose check (haproxy -c) loads it. #}
moodle_ha-lb-haproxy-tls-pem-file-managed:
  file.managed:
    - name: {{ moodle_ha.lb.tls.pem_file }}
    - source: salt://{{ tplroot }}/lb/files/site.pem.jinja
    - template: jinja
    - user: root
    - group: {{ haproxy.group }}
    - mode: '0640'
    - show_changes: false
    - context:
        tpldir: {{ tpldir }}
    - require:
      - pkg: moodle_ha-lb-haproxy-package-installed
    - require_in:
      - file: moodle_ha-lb-haproxy-config-file-managed
    - watch_in:
      - service: moodle_ha-lb-haproxy-service-running
{%- endif %}

{#- Holds the stats password: not world-readable, never shown in a diff. #}
moodle_ha-lb-haproxy-config-file-managed:
  file.managed:
    - name: {{ haproxy.config_file }}
    - source: {{- files_switch(moodle_ha.tofs, tpldir, "haproxy.cfg.jinja", "moodle_ha-lb-haproxy-config-file-managed") }}
    - template: jinja
    - user: root
    - group: {{ haproxy.group }}
    - mode: '0640'
    - show_changes: false
    - context:
        tpldir: {{ tpldir }}
    - check_cmd: {{ haproxy.binary }} -c -f
    - require:
      - pkg: moodle_ha-lb-haproxy-package-installed

{#- HAProxy's state for keepalived (lb:keepalived:haproxy_state_file, its track_file):
    1 after every stop, whatever the cause (systemctl stop, a crash, a restart), 0 once
    HAProxy started. keepalived moves the VIP on the write instead of at its next check
    script. A reload (every configuration change) runs neither. #}
{%- set state_file = moodle_ha.lb.keepalived.haproxy_state_file %}
moodle_ha-lb-haproxy-dropin-file-managed:
  file.managed:
    - name: /etc/systemd/system/{{ moodle_ha.services.haproxy }}.service.d/moodle_ha-keepalived.conf
    - contents: |
        # Managed by Salt (moodle_ha.lb.haproxy). Local changes are overwritten.
        [Service]
        ExecStartPost=/bin/sh -c 'echo 0 > {{ state_file }}'
        ExecStopPost=/bin/sh -c 'echo 1 > {{ state_file }}'
    - makedirs: true
    - user: root
    - group: root
    - mode: '0644'

{#- The new ExecStopPost is in force from this reload on; ExecStartPost from the next start
    (until then there is no file, which keepalived reads as 0). #}
moodle_ha-lb-haproxy-systemd-reloaded:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: moodle_ha-lb-haproxy-dropin-file-managed

moodle_ha-lb-haproxy-service-running:
  service.running:
    - name: {{ moodle_ha.services.haproxy }}
    - enable: true
    - reload: true
    - require:
      - sysctl: moodle_ha-lb-sysctl-ip-nonlocal-bind-present
      - cmd: moodle_ha-lb-haproxy-systemd-reloaded
    - watch:
      - pkg: moodle_ha-lb-haproxy-package-installed
      - file: moodle_ha-lb-haproxy-config-file-managed

# -*- coding: utf-8 -*-
# vim: ft=sls
{#- The server and wsrep configuration. It carries the SST password: 0640 root:mysql, no
    diff in the output. A change is NOT applied by restarting a live member (all nodes
    restarting together would take the cluster down); it takes effect at the next start,
    and a rolling restart is an operator/orchestrator action, one node at a time. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tplroot ~ "/libtofs.jinja" import files_switch with context %}
{%- from tplroot ~ "/galera/libtls.jinja" import galera_tls_files with context %}

include:
  - .package

{#- The SQL port binds the host's topology IP (galera:bind_address null): a bind to an
    address networkd has not configured yet would stop the server at boot, so non-local
    binds are allowed (set now, persisted for boot). #}
moodle_ha-galera-sysctl-ip-nonlocal-bind-present:
  sysctl.present:
    - name: net.ipv4.ip_nonlocal_bind
    - value: 1
    - config: {{ moodle_ha.galera.sysctl_file }}

{%- if moodle_ha.galera.tls.enabled %}
{#- The replication/SST certificate, CA and key the cnf below names (galera:tls). #}
{{ galera_tls_files(moodle_ha, "galera", moodle_ha.galera.user,
                    [{"pkg": "moodle_ha-galera-package-installed"}]) }}
{%- endif %}

moodle_ha-galera-config-file-managed:
  file.managed:
    - name: {{ moodle_ha.galera.config_file }}
    - source: {{- files_switch(moodle_ha.tofs, tpldir, "60-galera.cnf.jinja", "moodle_ha-galera-config-file-managed") }}
    - template: jinja
    - context:
        tpldir: {{ tpldir }}
    - user: root
    - group: {{ moodle_ha.galera.user }}
    - mode: '0640'
    - show_changes: False
    - require:
      - pkg: moodle_ha-galera-package-installed
      - sysctl: moodle_ha-galera-sysctl-ip-nonlocal-bind-present
{%- if moodle_ha.galera.tls.enabled %}
      - file: moodle_ha-galera-tls-ca-file-managed
      - file: moodle_ha-galera-tls-certificate-file-managed
      - file: moodle_ha-galera-tls-key-file-managed
{%- endif %}

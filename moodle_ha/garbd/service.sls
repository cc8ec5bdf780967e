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

{%- from tplroot ~ "/galera/libtls.jinja" import galera_tls_parts with context %}
{%-   set watched = [moodle_ha.garbd.config_file,
                     "/etc/systemd/system/" ~ moodle_ha.services.garbd ~ ".service.d/moodle_ha-garbd.conf"] %}
{%-   if moodle_ha.galera.tls.enabled %}
{%-     for item in galera_tls_parts %}
{%-       do watched.append(moodle_ha.galera.tls.dir ~ "/" ~ item.file) %}
{%-     endfor %}
{%-   endif %}

moodle_ha-garbd-service-running:
  service.running:
    - name: {{ moodle_ha.services.garbd }}
    - enable: True
    - require:
      - pkg: moodle_ha-garbd-package-installed

{#- A changed configuration restarts garbd, unless the running garbd started after the files
    were written: on a new host the package's postinst starts it with the final files, and a
    restart a second later, while it is still joining the group, left a running cluster
    stuck installing a view with a member gone (measured: all members non-Primary for 15 s,
    scaling out a four-node cluster). #}
moodle_ha-garbd-service-restarted:
  cmd.run:
    - name: systemctl restart {{ moodle_ha.services.garbd }}
    - unless:
      - >-
        started=$(systemctl show -p ActiveEnterTimestamp --value {{ moodle_ha.services.garbd }})
        && [ -n "$started" ]
{%- for path in watched %}
        && [ "$(date -d "$started" +%s)" -ge "$(stat -c %Y {{ path }})" ]
{%- endfor %}
    - onchanges:
      - file: moodle_ha-garbd-config-file-managed
      - file: moodle_ha-garbd-dropin-file-managed
{%- if moodle_ha.galera.tls.enabled %}
      - file: moodle_ha-garbd-tls-ca-file-managed
      - file: moodle_ha-garbd-tls-certificate-file-managed
      - file: moodle_ha-garbd-tls-key-file-managed
{%- endif %}
    - require:
      - service: moodle_ha-garbd-service-running
{%- endif %}

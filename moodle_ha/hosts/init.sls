# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Cluster name resolution: every host of the topology in /etc/hosts, so Galera, gluster and
    HAProxy never depend on outside DNS. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}

{%- for name, spec in moodle_ha.topology.hosts | dictsort %}
moodle_ha-hosts-entry-{{ name }}-present:
  host.only:
    - name: {{ spec.ip }}
    - hostnames:
      - {{ name }}.{{ moodle_ha.topology.domain }}
      - {{ name }}
{%- endfor %}

moodle_ha-hosts-vip-entry-present:
  host.only:
    - name: {{ moodle_ha.topology.vip }}
    - hostnames:
      - {{ moodle_ha.topology.cluster_name | replace("_", "-") }}.{{ moodle_ha.topology.domain }}

{%- if moodle_ha.apt.proxy and grains.os_family == "Debian" %}

moodle_ha-hosts-apt-proxy-file-managed:
  file.managed:
    - name: /etc/apt/apt.conf.d/01moodle_ha-proxy
    - mode: '0644'
    - contents: |
        Acquire::http::Proxy "{{ moodle_ha.apt.proxy }}";
{%- endif %}

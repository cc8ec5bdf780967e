# -*- coding: utf-8 -*-
# vim: ft=sls
{#- End-to-end check from a web node, through the VIP: Moodle answers HTTP 200, the DB answers
    on the writer and reader ports, and a dataroot file written by the primary node is seen
    here. Changes nothing once the marker exists (a re-run reports 0 changes). #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- set vip = moodle_ha.topology.vip %}
{%- set haproxy = moodle_ha.lb.haproxy %}
{%- set server_name = moodle_ha.web.server_name or vip %}
{%- set marker = moodle_ha.moodle.dataroot ~ "/moodle_ha-check/written-by-primary" %}
{%- set marker_text = "moodle_ha shared dataroot check, written by " ~ moodle_ha.nodes.primary_node %}

{%- set tls = moodle_ha.lb.tls %}
{%- if tls.enabled %}
{%-   set https = "https://" ~ server_name ~ ("" if tls.https_port == 443 else ":" ~ tls.https_port) %}

{#- HTTPS through the VIP with the pillar's certificate (pinned: whoever signed it). #}
moodle_ha-check-site-https-ok:
  moodle_ha.http_ok:
    - name: https://{{ vip }}:{{ tls.https_port }}{{ haproxy.web_check_path }}
    - host_header: {{ server_name }}
    - certificate: |
        {{ tls.certificate | trim | indent(8) }}
    - expect: 200
    - timeout: 60
{%-   if tls.redirect_http %}

moodle_ha-check-site-http-redirects:
  moodle_ha.http_ok:
    - name: http://{{ vip }}:{{ haproxy.web_port }}{{ haproxy.web_check_path }}
    - host_header: {{ server_name }}
    - expect: 301
    - location: {{ (https ~ haproxy.web_check_path) | json }}
    - timeout: 60
{%-   endif %}
{%- else %}

moodle_ha-check-site-http-ok:
  moodle_ha.http_ok:
    - name: http://{{ vip }}:{{ haproxy.web_port }}{{ haproxy.web_check_path }}
    - host_header: {{ server_name }}
    - expect: 200
    - timeout: 60
{%- endif %}

{%- for port in [haproxy.writer_port, haproxy.reader_port] %}

moodle_ha-check-db-{{ port }}-ok:
  moodle_ha.db_ok:
    - name: {{ vip }}
    - port: {{ port }}
    - user: {{ moodle_ha.moodle.db.user }}
    - password: {{ moodle_ha.secrets.moodle_db_password | json }}
    - database: {{ moodle_ha.moodle.db.name }}
    - timeout: 60
{%- endfor %}

{%- if grains.id == moodle_ha.nodes.primary_node %}

moodle_ha-check-dataroot-marker-file-managed:
  file.managed:
    - name: {{ marker }}
    - makedirs: True
    - user: root
    - group: {{ moodle_ha.web.group }}
    - mode: '0640'
    - contents: {{ marker_text | json }}
{%- else %}

moodle_ha-check-dataroot-marker-seen:
  moodle_ha.file_seen:
    - name: {{ marker }}
    - contents: {{ marker_text | json }}
{%- endif %}

# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Dump the merged, validated map (secrets masked) to a file, for golden-file comparison. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- set masked = salt["slsutil.merge"](moodle_ha, {}) %}
{%- for key in masked.secrets %}
{%-   do masked.secrets.update({key: "<masked>"}) %}
{%- endfor %}

moodle_ha-mapdata-file-managed:
  file.managed:
    - name: /var/cache/moodle_ha/mapdata.yaml
    - makedirs: True
    - mode: '0600'
    - contents: |
        {{ {"values": masked} | yaml(False) | indent(8) }}

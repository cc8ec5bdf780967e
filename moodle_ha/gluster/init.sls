# -*- coding: utf-8 -*-
# vim: ft=sls
{#- GlusterFS server layer: packages, glusterd, the brick, the trusted pool and the replicated
    volume holding Moodle's dataroot. Peers and volume are driven from the first gluster node;
    the client mount is moodle_ha.gluster.client (included by the web layer). #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tplroot ~ "/librole.jinja" import role_missing with context %}
{%- set me = moodle_ha.nodes.self %}

{%- if me and "gluster" in me.roles %}
include:
  - .package
  - .service
  - .brick
  - .peers
  - .volume
{%- else %}
{{ role_missing("gluster", "gluster") }}
{%- endif %}

# -*- coding: utf-8 -*-
# vim: ft=sls
{#- The trusted pool, built from the first gluster node only: it probes every other gluster node
    and waits until each is "Peer in Cluster" and connected (a probe is asynchronous). Renders to
    nothing on the other nodes. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tplroot ~ "/gluster/nodes.jinja" import gluster_nodes, addr with context %}

include:
  - .service

{%- if gluster_nodes and moodle_ha.nodes.self
      and moodle_ha.nodes.self.name == gluster_nodes[0].name %}
{%-   for node in gluster_nodes[1:] %}

moodle_ha-gluster-peer-{{ node.name }}-peered:
  gluster.peered:
    - name: {{ addr(node) }}
    - timeout: {{ moodle_ha.gluster.peer_timeout }}
    - require:
      - service: moodle_ha-gluster-service-running
{%-   endfor %}
{%- endif %}

# -*- coding: utf-8 -*-
# vim: ft=sls
{#- The replicated volume, driven from the first gluster node: created once with one brick per
    gluster node, grown with add-brick when the pillar gains nodes, shrunk only by the bricks
    of hosts marked decommission and named in gluster:remove_bricks (any other brick the
    pillar lacks fails the state), options set, then started; on every gluster node its
    brick process is kept running. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tplroot ~ "/gluster/nodes.jinja" import gluster_nodes, addr, brick with context %}
{%- set g = moodle_ha.gluster %}

include:
  - .brick
  - .peers

{%- if gluster_nodes and moodle_ha.nodes.self
      and moodle_ha.nodes.self.name == gluster_nodes[0].name %}
{%-   set bricks = [] %}
{%-   for node in gluster_nodes %}
{%-     do bricks.append(brick(node)) %}
{%-   endfor %}

{%-   set leaving = moodle_ha.nodes.leaving.get("gluster", []) %}
{%-   if leaving %}

{#- Hosts marked decommission (and confirmed in gluster:remove_bricks, which validation
    requires): their bricks leave the volume, the replica count falls by one each, once
    nothing waits for heal; then they leave the pool. Their glusterd is still up (it stops
    in moodle_ha.decommission.gluster, after this). #}
moodle_ha-gluster-volume-bricks-removed:
  gluster.bricks_removed:
    - name: {{ g.volume }}
    - bricks:
{%-     for node in leaving %}
      - {{ brick(node) }}
{%-     endfor %}
    - detach:
{%-     for node in leaving %}
      - {{ addr(node) }}
{%-     endfor %}
    - heal_timeout: {{ g.remove_brick_heal_timeout }}
    - require:
      - sls: {{ tpldir | replace("/", ".") }}.peers
    - require_in:
      - gluster: moodle_ha-gluster-volume-present
{%-   endif %}

moodle_ha-gluster-volume-present:
  gluster.volume_present:
    - name: {{ g.volume }}
    - bricks:
{%-   for brick in bricks %}
      - {{ brick }}
{%-   endfor %}
    - replica: {{ moodle_ha.nodes.replica }}
    - force: {{ g.force | json }}
    # Started below, after the options, so the first client sees the final volume graph.
    - start: false
    - require:
      - file: moodle_ha-gluster-brick-directory-managed
      - sls: {{ tpldir | replace("/", ".") }}.peers

{#- auth.allow: only the gluster peers and the web hosts (the dataroot's clients) may
    connect to the bricks, wherever else the brick ports are reachable from. #}
{%-   set clients = ["127.0.0.1"] %}
{%-   for node in moodle_ha.nodes.roles.gluster + moodle_ha.nodes.roles.web %}
{%-     if node.ip not in clients %}
{%-       do clients.append(node.ip) %}
{%-     endif %}
{%-   endfor %}
{%-   set options = dict(g.options, **{"auth.allow": (g.auth_allow or clients) | join(",")}) %}

moodle_ha-gluster-volume-options-set:
  gluster.volume_options:
    - name: {{ g.volume }}
    - options:
{%-   for key, value in options | dictsort %}
        {{ key }}: {{ value | json }}
{%-   endfor %}
    - require:
      - gluster: moodle_ha-gluster-volume-present

moodle_ha-gluster-volume-started:
  gluster.volume_started:
    - name: {{ g.volume }}
    - require:
      - gluster: moodle_ha-gluster-volume-options-set

{%- endif %}

{#- Every gluster node: its brick process, left down (killed, crashed, or not restarted by
    glusterd after every gluster host lost power), is started again with volume start force
    (no data touched). Checked in the local process table; a volume not started yet is left to
    the states above. #}
{%- set me = moodle_ha.nodes.self %}
{%- if me and me.name in gluster_nodes | map(attribute="name") | list %}

moodle_ha-gluster-volume-brick-running:
  gluster.brick_running:
    - name: {{ g.volume }}
    - brick: {{ brick(me) }}
    - timeout: 60
    - require:
      - file: moodle_ha-gluster-brick-directory-managed
{%-   if me.name == gluster_nodes[0].name %}
      - gluster: moodle_ha-gluster-volume-started
{%-   endif %}
{%- endif %}

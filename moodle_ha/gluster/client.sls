# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Moodle's dataroot: the gluster volume mounted with the FUSE client (included by the web
    layer; needs the volume to exist, the orchestration runs it after moodle_ha.gluster).
    A gluster node mounts from itself, others from the first gluster node; the remaining gluster
    nodes are backup volfile servers, so the mount comes up with any one of them alive. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tplroot ~ "/gluster/nodes.jinja" import gluster_nodes, addr with context %}
{%- set g = moodle_ha.gluster %}
{%- set me = moodle_ha.nodes.self %}
{%- set servers = [] %}
{%- for node in gluster_nodes if me and node.name == me.name %}
{%-   do servers.append(addr(node)) %}
{%- endfor %}
{%- for node in gluster_nodes if not (me and node.name == me.name) %}
{%-   do servers.append(addr(node)) %}
{%- endfor %}
{%- if not servers %}
{{-   raise("moodle_ha:topology:hosts: no host has the gluster role; the dataroot needs one") }}
{%- endif %}
{%- set opts = ["defaults", "_netdev"] %}
{%- if servers | length > 1 %}
{%-   do opts.append("backup-volfile-servers=" ~ servers[1:] | join(":")) %}
{%- endif %}

moodle_ha-gluster-client-package-installed:
  pkg.installed:
    - pkgs: {{ moodle_ha.pkgs.gluster_client | json }}

moodle_ha-gluster-client-dataroot-mounted:
  mount.mounted:
    - name: {{ moodle_ha.moodle.dataroot }}
    - device: {{ servers[0] }}:/{{ g.volume }}
    - fstype: glusterfs
    - opts: {{ opts | join(",") }}
    - mkmnt: true
    - persist: true
    # Not shown in /proc/mounts; Salt lists it as a plain option, so without this every run
    # would unmount and remount the dataroot.
    - extra_mount_invisible_keys: [backup-volfile-servers]
    - require:
      - pkg: moodle_ha-gluster-client-package-installed

{#- The volume root: owned by the web user, no world bits (the mount point is replaced by the
    volume's root directory, so this runs after the mount). #}
moodle_ha-gluster-client-dataroot-directory-managed:
  file.directory:
    - name: {{ moodle_ha.moodle.dataroot }}
    - user: {{ moodle_ha.web.user }}
    - group: {{ moodle_ha.web.group }}
    - mode: '{{ g.get("dataroot_mode", "2770") }}'
    - require:
      - mount: moodle_ha-gluster-client-dataroot-mounted

# -*- coding: utf-8 -*-
# vim: ft=sls
{#- The brick directory <brick_root>/<volume>. With gluster:brick_device set, the device is
    formatted first, but only when blkid finds no signature on it (a device holding any file
    system, partition table or RAID label is never touched), then mounted at brick_root. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- set g = moodle_ha.gluster %}
{%- set brick_dir = g.brick_root ~ "/" ~ g.volume %}

include:
  - .package

{%- if g.brick_device %}
{%-   set mkfs_opts = {"xfs": "-i size=512"}.get(g.brick_fstype, "") %}
{%-   set mount_opts = {"xfs": "defaults,noatime,inode64"}.get(g.brick_fstype, "defaults,noatime") %}

moodle_ha-gluster-brick-device-formatted:
  cmd.run:
    - name: mkfs.{{ g.brick_fstype }} {{ mkfs_opts }} {{ g.brick_device }}
    # blkid -p exits 2 only when it finds no signature at all; any other answer (a file
    # system, a partition table, several ambiguous signatures, an error) leaves the device
    # alone. A missing device is skipped here and fails the mount below.
    - onlyif: test -b {{ g.brick_device }}
    - unless: blkid -p {{ g.brick_device }} >/dev/null 2>&1; test $? -ne 2
    - require:
      - pkg: moodle_ha-gluster-package-installed

moodle_ha-gluster-brick-device-mounted:
  mount.mounted:
    - name: {{ g.brick_root }}
    - device: {{ g.brick_device }}
    - fstype: {{ g.brick_fstype }}
    - opts: {{ mount_opts }}
    - mkmnt: true
    - persist: true
    - require:
      - cmd: moodle_ha-gluster-brick-device-formatted
    - require_in:
      - file: moodle_ha-gluster-brick-directory-managed
{%- endif %}

{#- Only its existence: once in the volume, the brick root carries the volume root's owner and
    mode (set through the mount by moodle_ha.gluster.client); managing them here would fight
    that and write to the brick behind gluster's back. #}
moodle_ha-gluster-brick-directory-managed:
  file.directory:
    - name: {{ brick_dir }}
    - makedirs: true

# -*- coding: utf-8 -*-
# vim: ft=sls
{#- The backup script (Python standard library only: it runs without Salt), its JSON
    configuration (no secret in it) and, when the pillar has one, the encryption key. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- set b = moodle_ha.backup %}
{%- set cc = moodle_ha.galera.clustercheck %}
{%- set encrypted = moodle_ha.secrets.get("backup_encryption_key") is not none %}
{%- set pkgs = moodle_ha.pkgs.backup + (["zstd"] if b.compression == "zstd" else [])
               + (["openssl"] if encrypted else []) %}

moodle_ha-backup-package-installed:
  pkg.installed:
    - pkgs: {{ pkgs | json }}

moodle_ha-backup-target-dir-managed:
  file.directory:
    - name: {{ b.target_dir }}
    - user: root
    - group: root
    - mode: '0700'
    - makedirs: True

moodle_ha-backup-script-file-managed:
  file.managed:
    - name: {{ b.script }}
    - source: salt://{{ tpldir }}/files/moodle_ha-backup.py
    - user: root
    - group: root
    - mode: '0750'

moodle_ha-backup-config-file-managed:
  file.serialize:
    - name: {{ b.config_file }}
    - serializer: json
    - user: root
    - group: root
    - mode: '0600'
    - makedirs: True
    - dataset:
        node: {{ moodle_ha.nodes.self.name | json }}
        # HAProxy's writer order: the galera hosts by name.
        galera_nodes:
        {%- for node in moodle_ha.nodes.roles.galera %}
          - {name: {{ node.name | json }}, ip: {{ node.ip | json }}}
        {%- endfor %}
        replication_port: {{ moodle_ha.galera.replication_port }}
        clustercheck:
          port: {{ cc.port }}
          drain_file: {{ cc.drain_file | json }}
        socket: {{ moodle_ha.galera.socket | json }}
        datadir: {{ moodle_ha.galera.datadir | json }}
        client: {{ b.client | json }}
        mariabackup: {{ b.mariabackup | json }}
        new_cluster: {{ b.new_cluster | json }}
        target_dir: {{ b.target_dir | json }}
        retention: {{ b.retention }}
        compression: {{ b.compression | json }}
        encryption_key_file: {{ (b.key_file if encrypted else none) | json }}
        dataroot: {{ moodle_ha.moodle.dataroot | json }}
        dataroot_excludes: {{ b.dataroot_excludes | json }}
        drain_timeout: {{ b.drain_timeout }}
        parallel: {{ b.parallel }}
        moodle_db_name: {{ moodle_ha.moodle.db.name | json }}
        moodle_db_user: {{ moodle_ha.moodle.db.user | json }}
        moodle_db_prefix: {{ moodle_ha.moodle.db.prefix | json }}

{%- if encrypted %}

{#- The key through a template that imports the map: never in the state data or output. #}
moodle_ha-backup-key-file-managed:
  file.managed:
    - name: {{ b.key_file }}
    - source: salt://{{ tpldir }}/files/backup.key.jinja
    - template: jinja
    - context:
        tpldir: {{ tpldir }}
    - user: root
    - group: root
    - mode: '0600'
    - show_changes: False
{%- else %}

moodle_ha-backup-key-file-absent:
  file.absent:
    - name: {{ b.key_file }}
{%- endif %}

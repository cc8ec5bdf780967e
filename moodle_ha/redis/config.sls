# -*- coding: utf-8 -*-
# vim: ft=sls
{#- The formula's redis.conf and sentinel.conf on this redis host, and the drop-ins that start
    Debian's units on them. A missing file is written as a replica of the primary the
    Sentinels name (the first redis host's server when none answers: a new cluster); an
    existing one is never rewritten: the running server gets the pillar's settings at run
    time (moodle_ha_redis.server_configured, moodle_ha_redis.sentinel_configured). #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- set me = moodle_ha.nodes.self %}

{%- if not me or "redis" not in me.roles %}

moodle_ha-redis-config-not-redis:
  test.fail_without_changes:
    - name: {{ grains.id }} has no role redis in moodle_ha:topology:hosts (no redis here)
{%- else %}
{%- set r = moodle_ha.redis %}
{%- from tpldir ~ "/args.jinja" import me, sentinels, server_args, sentinel_args with context %}

include:
  - .package

{#- The follow script and the drop-in of each server, then Sentinel's drop-in. #}
{%- set units = [] %}
{%- for inst in moodle_ha.redis_instances %}
{%-   do units.append((inst.unit, r.server_bin, inst.config_file, inst.follow_script)) %}

moodle_ha-redis-{{ inst.name }}-follow-script-file-managed:
  file.managed:
    - name: {{ inst.follow_script }}
    - source: salt://{{ tpldir }}/files/moodle_ha-redis-follow.sh.jinja
    - template: jinja
    - context:
        unit: {{ inst.unit }}
        config_file: {{ inst.config_file }}
        me: {{ me.ip }}
        port: {{ inst.port }}
        sentinels: {{ sentinels | json }}
        master_name: {{ inst.master_name | json }}
        cli: {{ r.cli }}
    - makedirs: True
    - user: root
    - group: root
    - mode: '0755'
{%- endfor %}
{%- do units.append((moodle_ha.services.redis_sentinel, r.sentinel_bin, r.sentinel_config_file, none)) %}

{%- for unit, bin, file, pre in units %}

moodle_ha-redis-{{ unit }}-dropin-file-managed:
  file.managed:
    - name: /etc/systemd/system/{{ unit }}.service.d/moodle_ha-redis.conf
    - source: salt://{{ tpldir }}/files/redis-dropin.conf.jinja
    - template: jinja
    - context:
        unit: {{ unit }}
        bin: {{ bin }}
        config_file: {{ file }}
        pre: {{ pre | json }}
    - makedirs: True
    - user: root
    - group: root
    - mode: '0644'
{%-   if pre %}
    - require:
      - file: {{ pre }}
{%-   endif %}
{%- endfor %}

moodle_ha-redis-systemd-reloaded:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
{%- for unit, bin, file, pre in units %}
      - file: moodle_ha-redis-{{ unit }}-dropin-file-managed
{%- endfor %}

{%- for inst in moodle_ha.redis_instances %}

moodle_ha-redis-{{ inst.name }}-server-configured:
  moodle_ha_redis.server_configured:
{{- server_args(inst) }}
    - runtime: false
    - require:
      - pkg: moodle_ha-redis-package-installed
{%- endfor %}

moodle_ha-redis-sentinel-configured:
  moodle_ha_redis.sentinel_configured:
{{- sentinel_args() }}
    - runtime: false
    - require:
      - pkg: moodle_ha-redis-package-installed
{%- for inst in moodle_ha.redis_instances %}
      - moodle_ha_redis: moodle_ha-redis-{{ inst.name }}-server-configured
{%- endfor %}
{%- endif %}

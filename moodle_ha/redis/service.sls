# -*- coding: utf-8 -*-
# vim: ft=sls
{#- redis-server and redis-sentinel running and enabled. Each restarts once for its drop-in
    (the package started both on Debian's files); nothing else restarts them: a restart
    empties a cache without persistence, and settings change at run time. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- set me = moodle_ha.nodes.self %}

{%- if not me or "redis" not in me.roles %}

moodle_ha-redis-service-not-redis:
  test.fail_without_changes:
    - name: {{ grains.id }} has no role redis in moodle_ha:topology:hosts (no redis here)
{%- else %}
{%- from tpldir ~ "/args.jinja" import server_args, sentinel_args with context %}

include:
  - .config

{%- set units = [] %}
{%- for inst in moodle_ha.redis_instances %}
{%-   do units.append((inst.unit, inst.name ~ "-server")) %}
{%- endfor %}
{%- do units.append((moodle_ha.services.redis_sentinel, "sentinel")) %}
{%- for unit, configured in units %}

{#- Restarted once per version of its drop-in: the first run (the package started it on
    Debian's file), and after a run that failed in between. A marker beside it records the
    drop-in that the last restart put in force (a start time compared with the drop-in's
    mtime cannot tell a start in the same second). #}
{%-   set dropin = "/etc/systemd/system/" ~ unit ~ ".service.d/moodle_ha-redis.conf" %}
{%-   set marker = "/var/lib/moodle_ha/redis/" ~ unit ~ ".dropin-in-force" %}
moodle_ha-redis-{{ unit }}-restarted:
  cmd.run:
    - name: >-
        systemctl restart {{ unit }}
        && mkdir -p /var/lib/moodle_ha/redis
        && sha256sum {{ dropin }} > {{ marker }}
    - unless:
      - test "$(cat {{ marker }} 2>/dev/null)" = "$(sha256sum {{ dropin }})"
    - require:
      - cmd: moodle_ha-redis-systemd-reloaded
      - moodle_ha_redis: moodle_ha-redis-{{ configured }}-configured

moodle_ha-redis-{{ unit }}-service-running:
  service.running:
    - name: {{ unit }}
    - enable: True
    - require:
      - cmd: moodle_ha-redis-{{ unit }}-restarted
{%- endfor %}

{#- The pillar's settings on the running server and sentinel (CONFIG SET + CONFIG REWRITE,
    SENTINEL SET): no restart. #}
{%- for inst in moodle_ha.redis_instances %}
moodle_ha-redis-{{ inst.name }}-server-settings-kept:
  moodle_ha_redis.server_configured:
{{- server_args(inst) }}
    - require:
      - service: moodle_ha-redis-{{ inst.unit }}-service-running
{%- endfor %}

moodle_ha-redis-sentinel-settings-kept:
  moodle_ha_redis.sentinel_configured:
{{- sentinel_args() }}
    - require:
      - service: moodle_ha-redis-{{ moodle_ha.services.redis_sentinel }}-service-running
{%- endif %}

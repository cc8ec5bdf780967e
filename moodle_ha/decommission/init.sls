# -*- coding: utf-8 -*-
# vim: ft=sls
{#- A host marked `decommission: true` in moodle_ha:topology:hosts takes its services out of
    the cluster (moodle_ha.orch applies this after the load balancers have dropped it, so
    no new request or query reaches it): Apache stops (graceful: in-flight requests finish),
    the dataroot is unmounted, the Galera member leaves with a clean shutdown (refused when
    too few members would stay), the arbitrator stops; every service is disabled, so a
    reboot brings nothing back. Its brick leaves the volume from the first gluster node
    (moodle_ha.gluster, only with gluster:remove_bricks naming it), then glusterd stops
    (moodle_ha.decommission.gluster). Nothing is deleted: the datadir, the brick directory
    and the Moodle code stay on the host. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- set me = moodle_ha.nodes.self %}

{%- if me and me.decommission %}
{%-   if "web" in me.roles %}

moodle_ha-decommission-web-cron-timer-dead:
  service.dead:
    - name: moodle_ha-cron.timer
    - enable: False

moodle_ha-decommission-web-apache-service-dead:
  service.dead:
    - name: {{ moodle_ha.services.web }}
    - enable: False

moodle_ha-decommission-web-dataroot-unmounted:
  mount.unmounted:
    - name: {{ moodle_ha.moodle.dataroot }}
    - persist: True
    - require:
      - service: moodle_ha-decommission-web-cron-timer-dead
      - service: moodle_ha-decommission-web-apache-service-dead
{%-   endif %}
{%-   if "galera" in me.roles %}

moodle_ha-decommission-galera-backup-timer-dead:
  service.dead:
    - name: moodle_ha-backup.timer
    - enable: False

moodle_ha-decommission-galera-member-left:
  galera.member_left:
    - name: {{ me.name }}
    - service: {{ moodle_ha.services.galera }}
    - socket_path: {{ moodle_ha.galera.socket }}
    - require:
      - service: moodle_ha-decommission-galera-backup-timer-dead
{%-     if "web" in me.roles %}
      - mount: moodle_ha-decommission-web-dataroot-unmounted
{%-     endif %}

moodle_ha-decommission-galera-clustercheck-service-dead:
  service.dead:
    - name: moodle_ha-clustercheck.service
    - enable: False
    - require:
      - galera: moodle_ha-decommission-galera-member-left
{%-   endif %}
{%-   if "garbd" in me.roles %}

moodle_ha-decommission-garbd-service-dead:
  service.dead:
    - name: {{ moodle_ha.services.garbd }}
    - enable: False
{%-   endif %}

moodle_ha-decommission-services-stopped:
  test.succeed_without_changes:
    - name: {{ me.name }} is out of service ({{ me.roles | join(", ") }})
{%- else %}

moodle_ha-decommission-not-marked:
  test.fail_without_changes:
    - name: moodle_ha.decommission not applied
    - comment: >-
        moodle_ha:topology:hosts:{{ grains.id }}:decommission is not true: this host stays
        in the cluster (mark it in pillar to take it out)
{%- endif %}

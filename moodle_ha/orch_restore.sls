# -*- coding: utf-8 -*-
# vim: ft=sls
{#-
  salt-run state.orchestrate moodle_ha.orch_restore pillar="$PILLAR"
  with PILLAR a JSON object: moodle_ha -> restore -> backup: NAME, confirm: NAME
  (README "Backup and restore" has the full command line).

  Restore the database and the dataroot from one verified backup of the backup node
  (`moodle_ha-backup list` there). Refused, with nothing changed, unless restore:confirm is
  the backup's name: it replaces the live database. In order: the backup is re-verified;
  Moodle goes into maintenance and its cron stops; MariaDB stops on every Galera node; the
  backup node gets the backup as its datadir (the old one is kept beside it) and bootstraps
  a new Primary component; the other nodes set their saved state aside and join it by a
  full state transfer; the dataroot archive is extracted over the dataroot; caches are
  purged; maintenance ends, cron restarts, and the deploy's end-to-end check runs.
#}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tplroot ~ "/orchlib.jinja" import step %}
{%- set roles = moodle_ha.nodes.roles %}
{%- set galera = roles.galera | map(attribute="name") | list %}
{%- set web = roles.web | map(attribute="name") | list %}
{%- set all_hosts = moodle_ha.topology.hosts | list | sort %}
{%- set primary = moodle_ha.nodes.primary_node %}
{%- set node = moodle_ha.nodes.backup_node %}
{%- set name = moodle_ha.restore.backup %}
{%- set confirm = moodle_ha.restore.confirm %}
{%- set dirroot = moodle_ha.moodle.dirroot %}
{%- set done = [] %}

{%- if not node %}

moodle_ha-orch-restore-refused:
  test.fail_without_changes:
    - comment: "restore refused: no backup node (moodle_ha:backup:enabled is false)"
    - failhard: True
{%- elif not name or confirm != name %}

moodle_ha-orch-restore-refused:
  test.fail_without_changes:
    - comment: >-
        restore refused, nothing changed: it replaces the live database and dataroot.
        Name the backup in moodle_ha:restore:backup (`moodle_ha-backup list` on {{ node }})
        and repeat the name in moodle_ha:restore:confirm.
    - failhard: True
{%- else %}
{%-   set others = galera | reject("equalto", node) | list %}
{%-   set confirmed = {"confirm": name} %}
{{ step(done, "modules-synced", all_hosts, "moodle_ha.sync") }}
{{ step(done, "backup-" ~ node ~ "-verified", [node], fun="moodle_ha_backup.verify", arg=[name]) }}
{{ step(done, "moodle-maintenance-enabled", [primary], fun="moodle.maintenance", arg=[dirroot],
        kwarg={"enable": True}) }}
{{ step(done, "moodle-cron-stopped", [primary], fun="service.stop", arg=["moodle_ha-cron.timer"]) }}
{{ step(done, "galera-stopped", galera, fun="service.stop", arg=[moodle_ha.services.galera]) }}
{{ step(done, "database-" ~ node ~ "-restored", [node], fun="moodle_ha_backup.restore_database",
        arg=[name], kwarg=confirmed) }}
{%-   if others %}
{{ step(done, "galera-others-rejoin-prepared", others, fun="moodle_ha_backup.prepare_rejoin",
        arg=[name], kwarg=dict(confirmed, datadir=moodle_ha.galera.datadir)) }}
{%-   endif %}
{{ step(done, "galera-applied", galera, "moodle_ha.galera") }}
{{ step(done, "dataroot-" ~ node ~ "-restored", [node], fun="moodle_ha_backup.restore_dataroot",
        arg=[name], kwarg=confirmed) }}
{{ step(done, "moodle-caches-purged", [primary], fun="moodle.purge_caches", arg=[dirroot]) }}
{{ step(done, "moodle-maintenance-disabled", [primary], fun="moodle.maintenance", arg=[dirroot],
        kwarg={"enable": False}) }}
{#- moodle_ha.moodle restarts the cron timer (primary only) and changes nothing else. #}
{{ step(done, "moodle-" ~ primary ~ "-applied", [primary], "moodle_ha.moodle") }}
{{ step(done, "check-" ~ primary ~ "-passed", [primary], "moodle_ha.check") }}
{%-   set rest = web | reject("equalto", primary) | list %}
{%-   if rest %}
{{ step(done, "check-others-passed", rest, "moodle_ha.check") }}
{%-   endif %}
{%- endif %}

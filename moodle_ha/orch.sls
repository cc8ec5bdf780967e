# -*- coding: utf-8 -*-
# vim: ft=sls
{#-
  salt-run state.orchestrate moodle_ha.orch

  Bare hosts to Moodle on the VIP, one step per phase and per node, each requiring the one
  before, failing fast (failhard) with the step's name. Running it again changes nothing.
  Node lists come from the topology in the map, never from names written here.
#}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- set roles = moodle_ha.nodes.roles %}
{%- set all_hosts = moodle_ha.topology.hosts | list | sort %}
{%- set galera = roles.galera | map(attribute="name") | list %}
{%- set gluster = roles.gluster | map(attribute="name") | list %}
{%- set web = roles.web | map(attribute="name") | list %}
{%- set lbs = roles.lb | map(attribute="name") | list %}
{%- set garbd = roles.garbd | map(attribute="name") | list %}
{%- set primary = moodle_ha.nodes.primary_node %}
{#- Hosts marked decommission: out of every role list above, still in all_hosts. #}
{%- set leaving = [] %}
{%- for nodes in moodle_ha.nodes.leaving.values() %}
{%-   for node in nodes if node.name not in leaving %}
{%-     do leaving.append(node.name) %}
{%-   endfor %}
{%- endfor %}
{%- do leaving.sort() %}
{%- set leaving_gluster = moodle_ha.nodes.leaving.get("gluster", []) | map(attribute="name") | list %}
{%- set previous = [] %}

{%- from tplroot ~ "/orchlib.jinja" import step %}

{#- The formula's _modules/_states reach every host first (state.sls does not sync them);
    the next step then validates the pillar on every host before anything changes. #}
{{ step(previous, "modules-synced", all_hosts, "moodle_ha.sync") }}
{#- Name resolution, the firewall and clock sync on every host before any service: each
    host's input chain already admits the peers the later phases connect from (a host added
    to the topology is admitted everywhere here, before it joins anything), and Galera's
    position exchange compares clocks that agree. #}
{{ step(previous, "hosts-applied", all_hosts, ["moodle_ha.hosts", "moodle_ha.firewall", "moodle_ha.chrony"]) }}

{#- Phase: scale-in, when hosts are marked decommission. The load balancers drop them first
    (a reload: requests and queries in flight finish on the old workers, new ones go to the
    members), then the leaving hosts stop serving: Apache, the dataroot mount, a clean Galera
    leave (refused if too few members would stay), the arbitrator. Their bricks leave the
    volume in the gluster phase below, then their glusterd stops. #}
{%- if leaving %}
{%-   if lbs %}
{{ step(previous, "lb-drained", lbs, "moodle_ha.lb") }}
{%-   endif %}
{#-   One host at a time, galera members first, and after each voter the group's view
      steady for galera:leave_settle seconds: two members leaving at once (a galera node and
      an arbitrator in one job), or an arbitrator stopping 4 s after a galera node had left,
      left the rest non-Primary in the lab. #}
{%-   set leaving_galera = moodle_ha.nodes.leaving.get("galera", []) | map(attribute="name") | list %}
{%-   set leaving_voters = leaving_galera + moodle_ha.nodes.leaving.get("garbd", []) | map(attribute="name") | list %}
{%-   for name in leaving_galera + (leaving | reject("in", leaving_galera) | list) %}
{{ step(previous, "decommission-" ~ name ~ "-stopped", [name], "moodle_ha.decommission") }}
{#-     The group at rest before the next voter leaves (or the gluster phase loads it). #}
{%-     if name in leaving_voters and galera %}
{{ step(previous, "decommission-" ~ name ~ "-settled", galera[:1], "moodle_ha.decommission.settled") }}
{%-     endif %}
{%-   endfor %}
{%- endif %}

{#- Phase: shared file system. glusterd on the other nodes first, then the first node probes
    the peers and creates, tunes and starts the volume. #}
{%- if gluster %}
{%-   if gluster[1:] %}
{{ step(previous, "gluster-servers-applied", gluster[1:], "moodle_ha.gluster") }}
{%-   endif %}
{{ step(previous, "gluster-" ~ gluster[0] ~ "-volume-applied", gluster[:1], "moodle_ha.gluster") }}
{%- endif %}
{%- if leaving_gluster %}
{{ step(previous, "decommission-gluster-stopped", leaving_gluster, "moodle_ha.decommission.gluster") }}
{%- endif %}

{#- Phase: database. Every Galera node in one job: the galera.cluster_member state lets the
    nodes agree (positions via the mine, liveness via clustercheck), bootstraps only the
    designated node of a brand-new cluster or the most advanced one after a full outage, and
    admits joiners one state transfer at a time. #}
{%- if galera %}
{{ step(previous, "galera-applied", galera, "moodle_ha.galera") }}
{%- endif %}

{#- Phase: Galera arbitrators, as soon as the group exists (garbd only joins one: it can
    neither bootstrap nor serve a state transfer), so the rest of the run already has a
    quorum that survives the loss of one galera node. #}
{%- if garbd %}
{{ step(previous, "garbd-applied", garbd, "moodle_ha.garbd") }}
{%- endif %}

{#- Phase: the shared cache (role redis): every redis host in one job (a new cluster's first
    redis host is its primary, the others its replicas; a host joining later asks the
    sentinels). Before the load balancers, whose redis endpoint checks these servers. #}
{%- set redis = roles.get("redis", []) | map(attribute="name") | list %}
{%- if redis %}
{{ step(previous, "redis-applied", redis, "moodle_ha.redis") }}
{%- endif %}

{#- Phase: load balancers (the DB endpoints need clustercheck answering on every DB node). #}
{%- if lbs %}
{{ step(previous, "lb-applied", lbs, "moodle_ha.lb") }}
{%- endif %}

{#- Phase: web servers and the dataroot mount, then Moodle. The release is staged on every web
    node at once (unpacked, config.php written) while the old one serves. A staged release
    newer than the database opens the upgrade window: CLI maintenance in the shared dataroot,
    so every node answers 503 from then on. Inside it one job switches every web node at once
    and runs upgrade.php once on the primary node (the others switch meanwhile: none serves
    while the flag is there), and the window closes right after, before the rest of the layer
    (cache configuration, cron, pruning) is applied: no node ever serves old code against an
    upgraded database, and the window lasts the upgrade plus two steps. Without an upgrade
    (a first install: the installer keeps its own maintenance, the other nodes have no live
    code yet; or no code change) those two steps are skipped and the primary node applies the
    layer before the others. A window still held from an interrupted run is closed last. #}
{%- if web %}
{%-   set others = web | reject("equalto", primary) | list %}
{{ step(previous, "web-applied", web, "moodle_ha.web") }}
{{ step(previous, "moodle-staged", web, ["moodle_ha.moodle.stage", "moodle_ha.moodle.config"]) }}
{{ step(previous, "moodle-upgrade-window-opened", [primary], "moodle_ha.moodle.upgrade_window.open") }}
{{ step(previous, "moodle-upgrade-switched", web, "moodle_ha.moodle.switch", onchanges="moodle-upgrade-window-opened") }}
{{ step(previous, "moodle-upgrade-window-closed", [primary], "moodle_ha.moodle.upgrade_window.close", onchanges="moodle-upgrade-window-opened") }}
{{ step(previous, "moodle-" ~ primary ~ "-applied", [primary], "moodle_ha.moodle") }}
{%-   if others %}
{{ step(previous, "moodle-others-applied", others, "moodle_ha.moodle") }}
{%-   endif %}
{{ step(previous, "moodle-held-window-closed", [primary], "moodle_ha.moodle.upgrade_window.close") }}
{#- End-to-end through the VIP: HTTP 200, DB on writer and reader ports, and a dataroot file
    written on the primary node seen on the others. #}
{{ step(previous, "check-" ~ primary ~ "-passed", [primary], "moodle_ha.check") }}
{%-   if others %}
{{ step(previous, "check-others-passed", others, "moodle_ha.check") }}
{%-   endif %}
{%- endif %}

{#- Phase: scheduled backups (the backup node reads the database and the mounted dataroot). #}
{%- if galera %}
{{ step(previous, "backup-applied", galera, "moodle_ha.backup") }}
{%- endif %}

{#- Phase: Prometheus exporters on every host, last: after galera (the exporter's DB account
    exists) and after the end-to-end check, so a broken exporter never holds back serving
    Moodle; it still fails the run by name. Absent with metrics:enabled false. #}
{%- if moodle_ha.metrics.enabled %}
{{ step(previous, "metrics-applied", all_hosts, "moodle_ha.metrics") }}
{%- endif %}

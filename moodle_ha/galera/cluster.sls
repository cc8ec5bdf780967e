# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Membership: already Synced -> nothing; a Primary peer -> join; none -> the node the
    galera module's bootstrap_decision picks bootstraps (brand-new: galera:bootstrap_node;
    after an outage: highest recovered seqno, or the only node marked safe_to_bootstrap),
    the others wait and join; unknown -> refuse. A datadir with a non-Galera database is
    never overwritten by a join unless galera:discard_existing_schemas. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- set galera = moodle_ha.galera %}
{%- set nodes = [] %}
{%- for node in moodle_ha.nodes.roles.galera %}
{%-   do nodes.append({"name": node.name, "ip": node.ip}) %}
{%- endfor %}

include:
  - .config
  - .clustercheck

moodle_ha-galera-service-enabled:
  service.enabled:
    - name: {{ moodle_ha.services.galera }}
    - require:
      - pkg: moodle_ha-galera-package-installed

moodle_ha-galera-cluster-member:
  galera.cluster_member:
    - name: {{ moodle_ha.nodes.self.name }}
    - nodes:
{%- for node in nodes %}
      - {{ node | json }}
{%- endfor %}
    - bootstrap_node: {{ moodle_ha.nodes.bootstrap_node }}
    - timeout: {{ galera.sync_timeout }}
    - peer_wait: {{ galera.peer_wait }}
    - position_max_age: {{ galera.position_max_age }}
    - force_bootstrap: {{ galera.force_bootstrap | json }}
    - force_bootstrap_node: {{ galera.force_bootstrap_node | json }}
    - discard_existing_schemas: {{ galera.discard_existing_schemas | json }}
    - service: {{ moodle_ha.services.galera }}
    - clustercheck_port: {{ galera.clustercheck.port }}
    - replication_port: {{ galera.replication_port }}
    - socket_path: {{ galera.socket | json }}
    - datadir: {{ galera.datadir | json }}
    - user: {{ galera.user | json }}
    - require:
      - file: moodle_ha-galera-config-file-managed
      - service: moodle_ha-galera-clustercheck-service-running

# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Accounts and the Moodle database. Galera replicates account and database DDL, so they
    are managed on one node only (galera:bootstrap_node) once it is Synced: the same
    statements from every node at once would race. root keeps unix_socket authentication
    (salt connects as root over the socket; no root password exists on the command line). #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- set galera = moodle_ha.galera %}
{%- set secrets = moodle_ha.secrets %}
{%- set db = moodle_ha.moodle.db %}
{%- set net, prefix = moodle_ha.topology.subnet.split("/") %}
{%- if prefix | int in (8, 16, 24) %}
{%-   set subnet_host = (net.split(".")[: prefix | int // 8] + ["%"]) | join(".") %}
{%- else %}
{%-   set subnet_host = net ~ "/" ~ salt["network.convert_cidr"](moodle_ha.topology.subnet).netmask %}
{%- endif %}
{%- set conn = {"connection_user": galera.root_user,
                "connection_unix_socket": galera.socket,
                "connection_charset": "utf8mb4"} %}

include:
  - .cluster

{%- if moodle_ha.nodes.self.name == moodle_ha.nodes.bootstrap_node %}

moodle_ha-galera-users-sst-present:
  mysql_user.present:
    - name: {{ galera.sst_user }}
    - host: localhost
    - password: {{ secrets.sst_password | json }}
    {%- for key, value in conn | dictsort %}
    - {{ key }}: {{ value }}
    {%- endfor %}
    - require:
      - galera: moodle_ha-galera-cluster-member

{#- What mariabackup needs on the donor (BINLOG MONITOR is REPLICATION CLIENT since 10.5;
    without SLAVE MONITOR mariadb-backup 10.11 warns on every SST). #}
moodle_ha-galera-users-sst-grants-present:
  mysql_grants.present:
    - grant: RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR, SLAVE MONITOR
    - database: '*.*'
    - user: {{ galera.sst_user }}
    - host: localhost
    {%- for key, value in conn | dictsort %}
    - {{ key }}: {{ value }}
    {%- endfor %}
    - require:
      - mysql_user: moodle_ha-galera-users-sst-present

{#- USAGE only: SHOW GLOBAL STATUS / VARIABLES need no privilege. #}
moodle_ha-galera-users-clustercheck-present:
  mysql_user.present:
    - name: {{ galera.clustercheck_user }}
    - host: localhost
    - password: {{ secrets.clustercheck_password | json }}
    {%- for key, value in conn | dictsort %}
    - {{ key }}: {{ value }}
    {%- endfor %}
    - require:
      - galera: moodle_ha-galera-cluster-member
{%-   if moodle_ha.metrics.enabled %}

{#- The mysqld exporter (moodle_ha.metrics), local socket only: MariaDB's unix_socket plugin
    admits the OS user of the same name, so no password exists anywhere. What its default
    collectors read: SHOW ENGINE INNODB STATUS and information_schema.INNODB_* (PROCESS),
    binary log and replica status (BINLOG MONITOR and SLAVE MONITOR, MariaDB's names for
    REPLICATION CLIENT), performance_schema for the optional perf_schema collectors. No
    privilege on any other database. #}
moodle_ha-galera-users-metrics-present:
  mysql_user.present:
    - name: {{ moodle_ha.metrics.system_user }}
    - host: localhost
    - allow_passwordless: True
    - unix_socket: True
    {%- for key, value in conn | dictsort %}
    - {{ key }}: {{ value }}
    {%- endfor %}
    - require:
      - galera: moodle_ha-galera-cluster-member

moodle_ha-galera-users-metrics-grants-present:
  mysql_grants.present:
    - grant: PROCESS, BINLOG MONITOR, SLAVE MONITOR
    - database: '*.*'
    - user: {{ moodle_ha.metrics.system_user }}
    - host: localhost
    {%- for key, value in conn | dictsort %}
    - {{ key }}: {{ value }}
    {%- endfor %}
    - require:
      - mysql_user: moodle_ha-galera-users-metrics-present

moodle_ha-galera-users-metrics-performance-schema-grants-present:
  mysql_grants.present:
    - grant: SELECT
    - database: 'performance_schema.*'
    - user: {{ moodle_ha.metrics.system_user }}
    - host: localhost
    {%- for key, value in conn | dictsort %}
    - {{ key }}: {{ value }}
    {%- endfor %}
    - require:
      - mysql_user: moodle_ha-galera-users-metrics-present
{%-   endif %}

moodle_ha-galera-users-moodle-database-present:
  mysql_database.present:
    - name: {{ db.name }}
    - character_set: {{ galera.character_set }}
    - collate: {{ galera.collation }}
    {%- for key, value in conn | dictsort %}
    - {{ key }}: {{ value }}
    {%- endfor %}
    - require:
      - galera: moodle_ha-galera-cluster-member

moodle_ha-galera-users-moodle-present:
  mysql_user.present:
    - name: {{ db.user }}
    - host: '{{ subnet_host }}'
    - password: {{ secrets.moodle_db_password | json }}
    {%- for key, value in conn | dictsort %}
    - {{ key }}: {{ value }}
    {%- endfor %}
    - require:
      - galera: moodle_ha-galera-cluster-member

{#- The privileges Moodle's installer and upgrades need, on its own database only. #}
moodle_ha-galera-users-moodle-grants-present:
  mysql_grants.present:
    - grant: SELECT, INSERT, UPDATE, DELETE, CREATE, CREATE TEMPORARY TABLES, DROP, INDEX, ALTER
    - database: '{{ db.name }}.*'
    - user: {{ db.user }}
    - host: '{{ subnet_host }}'
    {%- for key, value in conn | dictsort %}
    - {{ key }}: {{ value }}
    {%- endfor %}
    - require:
      - mysql_user: moodle_ha-galera-users-moodle-present
      - mysql_database: moodle_ha-galera-users-moodle-database-present
{%- else %}

moodle_ha-galera-users-managed-elsewhere:
  test.succeed_without_changes:
    - name: accounts and database are managed on {{ moodle_ha.nodes.bootstrap_node }} (Galera replicates them)
    - require:
      - galera: moodle_ha-galera-cluster-member
{%- endif %}

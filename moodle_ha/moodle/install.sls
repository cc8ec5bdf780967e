# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Install the Moodle database once, or upgrade it when the deployed code is newer: only on the
    primary node, so two nodes never run the installer at the same time. The state puts the
    shared dataroot in CLI maintenance while it works (web requests get 503 before Moodle
    touches its caches) and purges the caches afterwards; web traffic reaching Moodle during an
    install poisons the shared cache (measured). The orchestration also stops Apache on every
    web node around a first install or an upgrade. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tpldir ~ "/release.jinja" import is_primary with context %}
{%- from tpldir ~ "/dbargs.jinja" import install_args %}
{%- set m = moodle_ha.moodle %}

include:
  - {{ tplroot }}.web
  - {{ tplroot }}.gluster.client
  - .code
  - .config

{%- if is_primary %}

moodle_ha-moodle-install-installed:
  moodle.installed:
    - name: {{ m.dirroot }}
{{- install_args(moodle_ha) }}
    - require:
      - file: moodle_ha-moodle-code-release-activated
      - sls: {{ tplroot }}.gluster.client
      - file: moodle_ha-moodle-localcachedir-dir-managed
      - cmd: moodle_ha-web-php-ini-enabled
{%- endif %}

{#- Apache serves Moodle only with the shared dataroot mounted (else PHP would write into the
    bare mount point), and on the primary node only once the database matches the code: a
    stopped Apache stays stopped through the install or upgrade, a failed one keeps it stopped. #}
extend:
  moodle_ha-web-apache-service-running:
    service:
      - require:
        - sls: {{ tplroot }}.gluster.client
{%- if is_primary %}
        - moodle: moodle_ha-moodle-install-installed
{%- endif %}

# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Apache for Moodle: modules, the Moodle vhost (default site off), the service.
    apache_module/apache_site states need saltext-apache in salt 3008, so the Debian tools
    (a2enmod, a2ensite, a2dissite) run with creates/onlyif guards instead. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tplroot ~ "/libtofs.jinja" import files_switch with context %}
{%- set web = moodle_ha.web %}
{%- set site = web.apache.site %}
{%- set modules = web.apache.modules + (["xsendfile"] if web.xsendfile else []) %}

include:
  - .package
  - .php

{%- for module in modules %}

moodle_ha-web-apache-module-{{ module }}-enabled:
  cmd.run:
    - name: a2enmod -q {{ module }}
    - creates: {{ web.apache_mods_enabled }}/{{ module }}.load
    - require:
      - pkg: moodle_ha-web-package-installed
    - watch_in:
      - service: moodle_ha-web-apache-service-running
{%- endfor %}

{#- The temporary file is checked as part of the whole configuration (after the modules are
    enabled), so a broken vhost never replaces a working one. #}
moodle_ha-web-apache-vhost-file-managed:
  file.managed:
    - name: {{ web.apache_sites }}/{{ site }}.conf
    - source: {{- files_switch(moodle_ha.tofs, tpldir, "moodle.conf.jinja", "moodle_ha-web-apache-vhost-file-managed") }}
    - template: jinja
    - context:
        tpldir: {{ tpldir }}
    - user: root
    - group: root
    - mode: '0644'
    - check_cmd: >-
        /bin/sh -c '. /etc/apache2/envvars && exec /usr/sbin/apache2 -t -c "Include $0"'
    - require:
      - pkg: moodle_ha-web-package-installed
{%- for module in modules %}
      - cmd: moodle_ha-web-apache-module-{{ module }}-enabled
{%- endfor %}

moodle_ha-web-apache-site-enabled:
  cmd.run:
    - name: a2ensite -q {{ site }}
    - creates: {{ web.apache_sites_enabled }}/{{ site }}.conf
    - require:
      - file: moodle_ha-web-apache-vhost-file-managed

{%- if web.apache.disable_default_site %}

moodle_ha-web-apache-default-site-disabled:
  cmd.run:
    - name: a2dissite -q 000-default
    - onlyif: test -e {{ web.apache_sites_enabled }}/000-default.conf
    - require:
      - pkg: moodle_ha-web-package-installed
    - watch_in:
      - service: moodle_ha-web-apache-service-running
{%- endif %}

{#- Whole-configuration check before any reload (modules, sites and PHP included). #}
moodle_ha-web-apache-config-checked:
  cmd.run:
    - name: apache2ctl -t
    - onchanges:
      - file: moodle_ha-web-apache-vhost-file-managed
      - cmd: moodle_ha-web-apache-site-enabled
{%- for module in modules %}
      - cmd: moodle_ha-web-apache-module-{{ module }}-enabled
{%- endfor %}

moodle_ha-web-apache-service-running:
  service.running:
    - name: {{ moodle_ha.services.web }}
    - enable: true
    - reload: true
    - require:
      - cmd: moodle_ha-web-apache-config-checked
      - cmd: moodle_ha-web-apache-site-enabled
    - watch:
      - file: moodle_ha-web-apache-vhost-file-managed
      - cmd: moodle_ha-web-apache-site-enabled
      - file: moodle_ha-web-php-ini-file-managed
      - cmd: moodle_ha-web-php-ini-enabled

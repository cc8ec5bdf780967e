# -*- coding: utf-8 -*-
# vim: ft=sls
{#- One ini file with Moodle's PHP settings, enabled for both the cli SAPI (installer, cron,
    upgrade) and the apache2 SAPI, so both see the same limits (max_input_vars >= 5000 is a
    required environment check). #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- set web = moodle_ha.web %}
{%- set priority = web.php_ini_priority %}

include:
  - .package

moodle_ha-web-php-ini-file-managed:
  file.managed:
    - name: {{ web.php_ini_dir }}/moodle.ini
    - source: salt://{{ tpldir }}/files/moodle.ini.jinja
    - template: jinja
    - context:
        tpldir: {{ tpldir }}
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - pkg: moodle_ha-web-package-installed

{#- phpenmod names the links <priority>-moodle.ini after the `; priority=` line of the file. #}
moodle_ha-web-php-ini-enabled:
  cmd.run:
    - name: phpenmod -v {{ web.php_version }} -s ALL moodle
    - creates:
{%- for dir in web.php_conf_dirs %}
      - {{ dir }}/{{ priority }}-moodle.ini
{%- endfor %}
    - require:
      - file: moodle_ha-web-php-ini-file-managed

# -*- coding: utf-8 -*-
# vim: ft=sls
{#- config.php and the health page, written into the release before dirroot points at it;
    the per-node local cache directory. The shared dataroot (gluster volume, owned by the web
    user) is mounted by moodle_ha.gluster.client. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tplroot ~ "/libtofs.jinja" import files_switch with context %}
{%- from tpldir ~ "/release.jinja" import code_dir with context %}
{%- set m = moodle_ha.moodle %}
{%- set web = moodle_ha.web %}
{%- set health = moodle_ha.lb.haproxy.web_check_path.lstrip("/") %}

include:
  - {{ tplroot }}.web
  - .code

moodle_ha-moodle-localcachedir-dir-managed:
  file.directory:
    - name: {{ m.localcachedir }}
    - user: {{ web.user }}
    - group: {{ web.group }}
    - mode: '{{ m.directorypermissions }}'
    - makedirs: true
    - require:
      - pkg: moodle_ha-web-package-installed

moodle_ha-moodle-config-file-managed:
  file.managed:
    - name: {{ code_dir }}/config.php
    - source: {{- files_switch(moodle_ha.tofs, tpldir, "config.php.jinja", "moodle_ha-moodle-config-file-managed") }}
    - template: jinja
    - context:
        tpldir: {{ tpldir }}
    - user: root
    - group: {{ web.group }}
    - mode: '0640'
    # Holds the database password.
    - show_changes: false
    - check_cmd: {{ web.php_bin }} -l
    - require:
      - file: moodle_ha-moodle-code-release-marker-managed
      - pkg: moodle_ha-web-package-installed
    # opcache revalidates files only every opcache.revalidate_freq seconds: reload instead.
    - watch_in:
      - service: moodle_ha-web-apache-service-running

{#- Moodle >= 5.1 serves <dirroot>/public; older Moodle serves <dirroot>. Only one of the two
    applies to the code in the release (checked when the state runs, after unpacking). #}
moodle_ha-moodle-health-page-managed:
  file.managed:
    - name: {{ code_dir }}/public/{{ health }}
    - source: salt://{{ tpldir }}/files/moodle_ha_health.php.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: '0644'
    - context:
        config_path: ../config.php
    - onlyif: test -d {{ code_dir }}/public
    - require:
      - file: moodle_ha-moodle-code-release-marker-managed

moodle_ha-moodle-health-page-legacy-managed:
  file.managed:
    - name: {{ code_dir }}/{{ health }}
    - source: salt://{{ tpldir }}/files/moodle_ha_health.php.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: '0644'
    - context:
        config_path: config.php
    - unless: test -d {{ code_dir }}/public
    - require:
      - file: moodle_ha-moodle-code-release-marker-managed

# -*- coding: utf-8 -*-
# vim: ft=sls
{#- config.php and the health page, written into the release before dirroot points at it;
    the per-node local cache directory. The shared dataroot (gluster volume, owned by the web
    user) is mounted by moodle_ha.gluster.client. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tplroot ~ "/libtofs.jinja" import files_switch with context %}
{%- from tpldir ~ "/release.jinja" import source, code_dir, component_cache with context %}
{%- set m = moodle_ha.moodle %}
{%- set web = moodle_ha.web %}
{%- set health = moodle_ha.lb.haproxy.web_check_path.lstrip("/") %}
{#- Written by moodle_ha.moodle.cache once the node's cache configuration is Salt's. #}
{%- set ready_file = m.cache.config_dir ~ "/moodle_ha-ready" %}

include:
  - {{ tplroot }}.web
  - {{ tplroot }}.gluster.client
  - .stage

moodle_ha-moodle-localcachedir-dir-managed:
  file.directory:
    - name: {{ m.localcachedir }}
    - user: {{ web.user }}
    - group: {{ web.group }}
    - mode: '{{ m.directorypermissions }}'
    - makedirs: true
    - require:
      - pkg: moodle_ha-web-package-installed

{#- Node-local homes of Moodle's cache configuration and local file store (the web user
    writes both), and of the component maps (root only). #}
{%- set cache_dirs = [("cache-config", m.cache.config_dir, web.user, "2770"),
                      ("cache-local-store", m.cache.local_store_dir, web.user, "2770"),
                      ("component-cache", m.cache.component_cache_dir, "root", "0755")] %}
{#- Their parents are root's (makedirs would give them the web user: it could then swap the
    component map's directory). #}
{%- set parents = [] %}
{%- for id, dir, owner, mode in cache_dirs %}
{%-   do parents.append(salt["file.dirname"](dir)) if salt["file.dirname"](dir) not in parents %}
{%- endfor %}

moodle_ha-moodle-cache-parent-dirs-managed:
  file.directory:
    - names: {{ parents | json }}
    - user: root
    - group: root
    - mode: '0755'
    - makedirs: true
{%- for id, dir, owner, mode in cache_dirs %}

moodle_ha-moodle-{{ id }}-dir-managed:
  file.directory:
    - name: {{ dir }}
    - user: {{ owner }}
    - group: {{ web.group if owner != "root" else "root" }}
    - mode: '{{ mode }}'
    - require:
      - pkg: moodle_ha-web-package-installed
      - file: moodle_ha-moodle-cache-parent-dirs-managed
{%- endfor %}

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
        ready_file: {{ ready_file | json }}
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
        ready_file: {{ ready_file | json }}
    - unless: test -d {{ code_dir }}/public
    - require:
      - file: moodle_ha-moodle-code-release-marker-managed

{#- This release's component map ($CFG->alternative_component_cache), built from the code by
    Moodle's own CLI before dirroot points at the release (Moodle refuses to start without
    it, and cannot write it: the directory is root's). A git branch updated in place is
    built again. Moodle's CLI needs the shared dataroot mounted and writable, as any page. #}
{%- set build = ["runuser -u " ~ web.user ~ " -- " ~ web.php_bin,
                  code_dir ~ "/admin/cli/alternative_component_cache.php",
                  "--print > " ~ component_cache ~ ".new",
                  "&& test -s " ~ component_cache ~ ".new",
                  "&& chmod 0644 " ~ component_cache ~ ".new",
                  "&& mv -f " ~ component_cache ~ ".new",
                  component_cache] %}

moodle_ha-moodle-component-cache-built:
  cmd.run:
    - name: >-
        {{ build | join("\n        ") }}
    - creates: {{ component_cache }}
    - require:
      - file: moodle_ha-moodle-config-file-managed
      - file: moodle_ha-moodle-component-cache-dir-managed
      - sls: {{ tplroot }}.gluster.client
    # Before Apache reloads for the new config.php (which names this file).
    - require_in:
      - service: moodle_ha-web-apache-service-running
{%- if source.type != "archive" %}

moodle_ha-moodle-component-cache-rebuilt:
  cmd.run:
    - name: >-
        {{ build | join("\n        ") }}
    - onchanges:
      - git: moodle_ha-moodle-code-git-latest
    - require:
      - cmd: moodle_ha-moodle-component-cache-built
{%- endif %}

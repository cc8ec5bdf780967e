# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Inside an upgrade window only (moodle_ha.orch, every web node in one job, the site in CLI
    maintenance): the staged release goes live here and, on the primary node, upgrade.php
    runs once. Nothing else is applied, so the window lasts little more than the upgrade:
    the web layer, config.php, the component map and the release itself were applied by the
    steps before (moodle_ha.web, moodle_ha.moodle.stage, moodle_ha.moodle.config), and
    moodle_ha.moodle, applied after the window, checks them all again. A release that is not
    completely staged on this node fails here, before it could go live. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tpldir ~ "/release.jinja" import code_dir, marker, component_cache, release_switched, is_primary with context %}
{%- from tpldir ~ "/dbargs.jinja" import install_args %}
{%- from tplroot ~ "/librole.jinja" import role_missing with context %}
{%- set m = moodle_ha.moodle %}
{%- set me = moodle_ha.nodes.self %}

{%- if me and "web" in me.roles %}
{%-   set staged = {"marker": marker, "config": code_dir ~ "/config.php",
                    "component-cache": component_cache} %}
{%-   for what, path in staged | dictsort %}

moodle_ha-moodle-switch-{{ what }}-staged:
  file.exists:
    - name: {{ path }}
{%-   endfor %}

{{ release_switched("moodle_ha-moodle-switch-release-activated") }}
    - require:
{%-   for what in staged | sort %}
      - file: moodle_ha-moodle-switch-{{ what }}-staged
{%-   endfor %}

{#- opcache and the realpath cache follow the new path (a graceful reload). #}
moodle_ha-moodle-switch-apache-reloaded:
  service.running:
    - name: {{ moodle_ha.services.web }}
    - reload: true
    - watch:
      - file: moodle_ha-moodle-switch-release-activated
{%-   if is_primary %}

moodle_ha-moodle-switch-upgraded:
  moodle.installed:
    - name: {{ m.dirroot }}
{{- install_args(moodle_ha) }}
    - require:
      - file: moodle_ha-moodle-switch-release-activated
{%-   endif %}
{%- else %}
{{ role_missing("moodle.switch", "web") }}
{%- endif %}

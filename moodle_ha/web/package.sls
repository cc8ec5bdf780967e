# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}

moodle_ha-web-package-installed:
  pkg.installed:
    - pkgs:
{%- set redis = moodle_ha.moodle.cache.application_store == "redis"
                 or moodle_ha.moodle.session.store == "redis" %}
{%- for pkg in moodle_ha.pkgs.web + (moodle_ha.pkgs.xsendfile if moodle_ha.web.xsendfile else [])
               + (moodle_ha.pkgs.php_redis if redis else []) %}
      - {{ pkg }}
{%- endfor %}
    # The moodle execution module and state load only once the php CLI exists.
    - reload_modules: true

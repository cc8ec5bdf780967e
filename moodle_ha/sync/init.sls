# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Custom modules and states of the formula on the minion before any SLS that imports
    map.jinja renders (state.sls does not sync them by itself; only highstate does).
    Deliberately free of map.jinja: it must render before the modules exist. #}

moodle_ha-sync-modules-synced:
  saltutil.sync_all:
    - refresh: True

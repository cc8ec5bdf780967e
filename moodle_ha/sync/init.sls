# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Custom modules and states of the formula on the minion before any SLS that imports
    map.jinja renders (state.sls does not sync them by itself; only highstate does).
    Deliberately free of map.jinja: it must render before the modules exist.
    Only the two kinds the minions run (_modules, _states): saltutil.sync_all walks every
    kind of extension on the master's file server (this step took 10-12 s on the lab with
    it, 6 s with these two). A site's own other extensions: `salt '*' saltutil.sync_all`. #}

moodle_ha-sync-modules-synced:
  saltutil.sync_modules:
    - refresh: True

moodle_ha-sync-states-synced:
  saltutil.sync_states:
    - refresh: True

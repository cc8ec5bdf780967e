# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Galera arbitrator (role garbd, Debian's galera-arbitrator-4): a vote in the Galera
    group that holds no data, so two galera nodes keep a Primary component when either one
    fails. The configuration and the unit's drop-in come first (the package's postinst
    starts garbd at once), then the package, then the service. Apply it after the galera
    nodes (moodle_ha.orch does): garbd only joins a group that exists. #}
include:
  - .config
  - .package
  - .service

# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Clock sync on every host (moodle_ha:chrony; no role guard: every host needs it). The
    package first (its postinst starts chronyd with Debian's pool configuration, which
    serves nobody), then the formula's whole chrony.conf and, in a container, the unit's
    drop-in, then the service, restarted whenever either changes. #}
include:
  - .package
  - .config
  - .service

# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Moodle layer: code (versioned releases, dirroot symlink), config.php and health page,
    the shared dataroot (gluster mount), install/upgrade (primary node only) and cron. #}
include:
  - .code
  - .config
  - .install
  - .cron

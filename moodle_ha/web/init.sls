# -*- coding: utf-8 -*-
# vim: ft=sls
{#- Web layer: Apache + PHP for Moodle. The Moodle code, config.php and cron are in
    moodle_ha.moodle (which includes this layer). #}
include:
  - .package
  - .php
  - .apache

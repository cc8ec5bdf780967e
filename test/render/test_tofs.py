"""TOFS: the user-adaptable config templates look for site overrides before their own file."""

import pytest

from render.renderlib import example_pillar

LB_GRAINS = {"ip4_interfaces": {"lo": ["127.0.0.1"], "host0": ["172.30.77.21"]}}
TEMPLATES = [
    ("moodle_ha.lb", "lb1", "moodle_ha-lb-haproxy-config-file-managed", "lb", "haproxy.cfg.jinja"),
    ("moodle_ha.lb", "lb1", "moodle_ha-lb-keepalived-config-file-managed", "lb",
     "keepalived.conf.jinja"),
    ("moodle_ha.galera", "moodle1", "moodle_ha-galera-config-file-managed", "galera",
     "60-galera.cnf.jinja"),
    ("moodle_ha.web", "moodle1", "moodle_ha-web-apache-vhost-file-managed", "web",
     "moodle.conf.jinja"),
    ("moodle_ha.moodle", "moodle1", "moodle_ha-moodle-config-file-managed", "moodle",
     "config.php.jinja"),
]


def _sources(renderer, sls, host, sid, **kwargs):
    out = renderer.show_sls(sls, minion_id=host, grains=LB_GRAINS if host == "lb1" else None,
                            **kwargs)
    args = out[sid]["file"]
    return next(arg["source"] for arg in args if isinstance(arg, dict) and "source" in arg)


@pytest.mark.parametrize("sls,host,sid,layer,name", TEMPLATES)
def test_template_sources_go_from_host_to_release_to_family_to_formula(
        renderer, sls, host, sid, layer, name):
    assert _sources(renderer, sls, host, sid) == [
        f"salt://moodle_ha/{layer}/files/{host}/{name}",
        f"salt://moodle_ha/{layer}/files/Debian-13/{name}",
        f"salt://moodle_ha/{layer}/files/Debian/{name}",
        f"salt://moodle_ha/{layer}/files/{name}",
    ]


def test_tofs_pillar_moves_overrides_and_renames_the_template(renderer):
    sid = "moodle_ha-lb-haproxy-config-file-managed"
    sources = _sources(renderer, "moodle_ha.lb", "lb1", sid, patch={
        "moodle_ha:tofs:path_prefix": "site/moodle",
        "moodle_ha:tofs:files_switch": ["id"],
        f"moodle_ha:tofs:source_files:{sid}": ["site-haproxy.cfg.jinja"],
    })
    assert sources == [
        "salt://site/moodle/lb/files/lb1/site-haproxy.cfg.jinja",
        "salt://moodle_ha/lb/files/site-haproxy.cfg.jinja",
    ]


def test_templates_read_secrets_from_the_map_not_from_state_data(renderer):
    """No template state carries a secret's value in its arguments (context included)."""
    secrets = [str(v) for v in example_pillar()["moodle_ha"]["secrets"].values()]
    for sls, host, sid, _layer, _name in TEMPLATES:
        out = renderer.show_sls(sls, minion_id=host, grains=LB_GRAINS if host == "lb1" else None)
        leaked = [s for s in secrets if s in repr(out[sid])]
        assert not leaked, f"{sid} on {host} carries a secret in its state data"

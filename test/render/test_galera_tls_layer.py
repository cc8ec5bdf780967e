"""galera:tls renders on the galera nodes and the arbitrator (lb1 of "2 galera nodes +
garbd"), on every release: the CA, certificate and key files before the configuration, the
key 0640 for the server's or garbd's group with its changes hidden and its text in no state
argument; the provider options (server and garbd) name those files, and the cnf's [sst]
section hands them to the mariabackup SST script. Off (the default), nothing of it renders."""

import configparser
import copy

import pytest
from certlib import cert, ec_key, pem_cert, pem_key

from render.renderlib import PLATFORMS, example_pillar, state_args

CA_KEY = ec_key()
CA = cert(CA_KEY, "galera render CA", ca=True)
NODE_KEY = ec_key()
NODE_KEY_PEM = pem_key(NODE_KEY)
PATCH = {"moodle_ha:galera:tls:enabled": True,
         "moodle_ha:galera:tls:ca": pem_cert(CA),
         "moodle_ha:galera:tls:certificate": pem_cert(
             cert(NODE_KEY, "galera.moodle-ha.internal", issuer=CA, issuer_key=CA_KEY)),
         "moodle_ha:secrets:galera_tls_key": NODE_KEY_PEM}
DIR = "/etc/ssl/moodle_ha-galera"
FILES = {"ca": "ca.pem", "certificate": "cert.pem", "key": "key.pem"}


def _arbitrated():
    """pillar.example with two galera nodes and garbd beside HAProxy on lb1."""
    pillar = copy.deepcopy(example_pillar())
    hosts = pillar["moodle_ha"]["topology"]["hosts"]
    hosts["moodle3"]["roles"] = ["gluster", "web"]
    hosts["lb1"]["roles"] = ["lb", "garbd"]
    return pillar


def _cnf(text):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(text)
    return parser


def _options(value):
    return dict(item.strip().split("=", 1) for item in value.strip('"').split(";"))


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
@pytest.mark.parametrize(("layer", "minion", "group"),
                         [("galera", "moodle1", "mysql"),
                          ("garbd", "lb1", "moodle_ha-garbd-tls")])
def test_tls_files_come_before_the_configuration(renderer, layer, minion, group, platform):
    out = renderer.show_sls(f"moodle_ha.{layer}", minion_id=minion, pillar=_arbitrated(),
                            patch=PATCH, platform=platform)
    for part, file in FILES.items():
        args = state_args(out[f"moodle_ha-{layer}-tls-{part}-file-managed"])
        assert args["name"] == f"{DIR}/{file}"
        assert args["source"] == "salt://moodle_ha/galera/files/tls.pem.jinja"
        assert args["context"]["part"] == part
        want = (("root", group, "0640", False) if part == "key"
                else ("root", "root", "0644", True))
        assert (args["user"], args["group"], args["mode"], args["show_changes"]) == want
    assert NODE_KEY_PEM.splitlines()[1] not in str(out), "the key is in the state data"
    if layer == "galera":
        requires = state_args(out["moodle_ha-galera-config-file-managed"])["require"]
    else:
        requires = state_args(out["moodle_ha-garbd-service-restarted"])["onchanges"]
        assert {"file": "moodle_ha-garbd-tls-key-file-managed"} in state_args(
            out["moodle_ha-garbd-package-installed"])["require"]
        assert state_args(out["moodle_ha-garbd-tls-group-present"])["system"] is True
    for part in FILES:
        assert {"file": f"moodle_ha-{layer}-tls-{part}-file-managed"} in requires


@pytest.mark.parametrize(("layer", "minion"), [("galera", "moodle1"), ("garbd", "lb1")])
def test_off_by_default_nothing_of_it_renders(renderer, layer, minion):
    out = renderer.show_sls(f"moodle_ha.{layer}", minion_id=minion, pillar=_arbitrated())
    assert not [sid for sid in out if "-tls-" in sid]


@pytest.mark.parametrize("part", sorted(FILES))
def test_each_file_is_the_pillar_pem_and_one_newline(renderer, tmp_path, part):
    text = renderer.template("galera", "tls.pem.jinja", tmp_path / part, context={"part": part},
                             patch=PATCH)
    source = PATCH["moodle_ha:secrets:galera_tls_key" if part == "key"
                   else f"moodle_ha:galera:tls:{part}"]
    assert text == source.strip() + "\n"


def test_server_cnf_names_the_files_for_replication_and_sst(renderer, tmp_path):
    text = renderer.template("galera", "60-galera.cnf.jinja", tmp_path, patch=PATCH)
    cnf = _cnf(text)
    options = _options(cnf["galera"]["wsrep_provider_options"])
    assert options["socket.ssl_ca"] == f"{DIR}/ca.pem"
    assert options["socket.ssl_cert"] == f"{DIR}/cert.pem"
    assert options["socket.ssl_key"] == f"{DIR}/key.pem"
    assert options["gcache.size"] == "256M"  # the others stay
    assert dict(cnf["sst"]) == {"ssl-ca": f"{DIR}/ca.pem", "ssl-cert": f"{DIR}/cert.pem",
                                "ssl-key": f"{DIR}/key.pem", "ssl-mode": "VERIFY_CA"}
    plain = _cnf(renderer.template("galera", "60-galera.cnf.jinja", tmp_path / "off"))
    assert "sst" not in plain
    assert not [k for k in _options(plain["galera"]["wsrep_provider_options"])
                if k.startswith("socket.")]


def test_arbitrator_options_name_the_same_files(renderer, tmp_path):
    garb = renderer.template("garbd", "garb.jinja", tmp_path, minion_id="lb1",
                             pillar=_arbitrated(), patch=PATCH)
    line = next(x for x in garb.splitlines() if x.startswith("GALERA_OPTIONS="))
    options = _options(line.split("=", 1)[1])
    assert {k: v for k, v in options.items() if k.startswith("socket.")} == {
        "socket.ssl_ca": f"{DIR}/ca.pem", "socket.ssl_cert": f"{DIR}/cert.pem",
        "socket.ssl_key": f"{DIR}/key.pem"}
    dropin = renderer.template("garbd", "moodle_ha-garbd.conf.jinja", tmp_path, minion_id="lb1",
                               pillar=_arbitrated(), patch=PATCH)
    assert "SupplementaryGroups=moodle_ha-garbd-tls" in dropin.splitlines()

"""Unit tests for the validation of galera:tls and secrets:galera_tls_key
(_modules/moodle_ha.py _galera_tls_errors), on the map built as map.jinja builds it (see
test_moodle_ha_tls.py). The CA, certificates and keys are made here (certlib)."""

import pytest
import yaml
from certlib import cert as make_cert
from certlib import ec_key, pem_cert, pem_key
from maplib import DELETE, known_tree, patched
from maplib import post_map as maplib_post_map

from render.renderlib import REPO, example_pillar
from saltmodules import load

VALIDATION = load("_modules/moodle_ha.py", "moodle_ha_galera_tls_validation_unit")
KNOWN = known_tree()

CA_KEY = ec_key()
CA = make_cert(CA_KEY, "galera test CA", ca=True)
NODE_KEY = ec_key()
NODE = make_cert(NODE_KEY, "galera.moodle-ha.internal", issuer=CA, issuer_key=CA_KEY)


def _tls(ca=None, certificate=None, key=None, **extra):
    """A patch switching galera:tls on with the test CA, node certificate and key."""
    patch = {"galera:tls:enabled": True,
             "galera:tls:ca": pem_cert(CA) if ca is None else ca,
             "galera:tls:certificate": pem_cert(NODE) if certificate is None else certificate,
             "secrets:galera_tls_key": pem_key(NODE_KEY) if key is None else key}
    patch.update(extra)
    return patch


def _errors(patch=None, minion_id="moodle1", pillar=None):
    pillar = patched((pillar or example_pillar())["moodle_ha"], patch)
    return maplib_post_map(VALIDATION, KNOWN, pillar, minion_id)["errors"]


def _error(patch, **kwargs):
    errors = _errors(patch, **kwargs)
    assert len(errors) == 1, errors
    return errors[0]


def test_off_by_default_and_needs_nothing():
    pillar = example_pillar()["moodle_ha"]
    assert pillar["galera"]["tls"]["enabled"] is False
    assert KNOWN["galera"]["tls"]["enabled"] is False
    assert _errors() == []


def test_enabled_with_a_ca_its_certificate_and_the_key_is_accepted_on_every_role():
    for host in ("moodle1", "lb1"):
        assert _errors(_tls(), minion_id=host) == []


def test_garbd_lab_topology_is_valid_with_the_labs_certificates():
    pillar = yaml.safe_load((REPO / "test/lab/topologies/garbd.yaml").read_text())
    assert pillar["moodle_ha"]["galera"]["tls"]["enabled"] is True
    assert _errors(_tls(), pillar=pillar, minion_id="lb1") == []
    missing = _errors(pillar=pillar, minion_id="lb1")
    assert [e.split(":", 3)[:3] for e in missing] == [
        ["moodle_ha", "galera", "tls"], ["moodle_ha", "galera", "tls"],
        ["moodle_ha", "secrets", "galera_tls_key"]], missing


@pytest.mark.parametrize("key", ["galera:tls:ca", "galera:tls:certificate"])
def test_missing_pem_names_its_key(key):
    message = _error({**_tls(), key: DELETE})
    assert message.startswith(f"moodle_ha:{key}: null, not a PEM certificate chain"), message
    assert "required while galera:tls:enabled is true" in message


def test_missing_key_names_the_secret():
    message = _error({**_tls(), "secrets:galera_tls_key": DELETE})
    assert message == ("moodle_ha:secrets:galera_tls_key: missing (the PEM private key of"
                       " galera:tls:certificate, required while galera:tls:enabled is true)")


def test_a_key_that_is_not_the_certificates_is_refused_without_quoting_it():
    other = pem_key(ec_key())
    message = _error(_tls(key=other))
    assert message.startswith("moodle_ha:secrets:galera_tls_key: is not the private key of"
                              " the first certificate of galera:tls:certificate"
                              " (CN=galera.moodle-ha.internal)"), message
    assert "PRIVATE" not in message and other.splitlines()[1] not in message


def test_a_certificate_from_another_ca_is_refused():
    other_key = ec_key()
    other_ca = make_cert(other_key, "galera test CA", ca=True)  # same name, other key
    stray = make_cert(NODE_KEY, "galera.moodle-ha.internal", issuer=other_ca, issuer_key=other_key)
    message = _error(_tls(certificate=pem_cert(stray)))
    assert message.startswith("moodle_ha:galera:tls:certificate: the first certificate"
                              " (CN=galera.moodle-ha.internal) is not issued by a certificate of"
                              " galera:tls:ca"), message


def test_a_chain_through_an_intermediate_is_accepted_and_a_broken_one_refused():
    mid_key = ec_key()
    mid = make_cert(mid_key, "galera intermediate", issuer=CA, issuer_key=CA_KEY, ca=True)
    leaf = make_cert(NODE_KEY, "galera.moodle-ha.internal", issuer=mid, issuer_key=mid_key)
    assert _errors(_tls(certificate=pem_cert(leaf, mid))) == []
    assert "is not issued by" in _error(_tls(certificate=pem_cert(leaf)))
    loose_key = ec_key()
    loose = make_cert(loose_key, "galera intermediate", ca=True)  # self-signed, not the CA's
    leaf2 = make_cert(NODE_KEY, "galera.moodle-ha.internal", issuer=loose, issuer_key=loose_key)
    assert "is not issued by" in _error(_tls(certificate=pem_cert(leaf2, loose)))


def test_a_private_key_in_the_certificate_is_sent_to_the_secret():
    message = _error(_tls(certificate=pem_cert(NODE) + pem_key(NODE_KEY)))
    assert message.startswith("moodle_ha:galera:tls:certificate: holds a private key: it"
                              " belongs in secrets:galera_tls_key"), message


def test_an_encrypted_key_is_refused():
    message = _error(_tls(key=pem_key(NODE_KEY, password=b"passphrase")))
    assert message.startswith("moodle_ha:secrets:galera_tls_key: the private key is encrypted"
                              " (a passphrase): Galera (server and garbd) needs it unencrypted")


@pytest.mark.parametrize(("patch", "message"), [
    ({"galera:tls:enabled": "yes"}, "moodle_ha:galera:tls:enabled: 'yes' is not true or false"),
    ({"galera:tls:sst_ssl_mode": "DISABLED"},
     "moodle_ha:galera:tls:sst_ssl_mode: 'DISABLED' is not one of REQUIRED, VERIFY_CA"),
    ({"galera:tls:dir": "/etc/my tls"},
     "moodle_ha:galera:tls:dir: '/etc/my tls' is not an absolute path"),
    ({"galera:sst_method": "rsync"},
     "moodle_ha:galera:sst_method: 'rsync': SST over TLS (galera:tls:enabled) is built for"
     " mariabackup"),
    ({"galera:provider_options": {"socket.ssl_cipher": "AES128-SHA"}},
     "moodle_ha:galera:provider_options: socket.ssl_cipher while galera:tls:enabled is true"),
    ({"garbd:options": {"socket.ssl_key": "/x.pem"}},
     "moodle_ha:garbd:options: socket.ssl_key while galera:tls:enabled is true"),
])
def test_bad_setting_names_its_key(patch, message):
    base = _tls() if patch != {"galera:tls:enabled": "yes"} else {}
    got = _error({**base, **patch})
    assert got.startswith(message), got


def test_a_lone_carriage_return_in_the_key_is_refused_even_while_off():
    key = pem_key(NODE_KEY).replace("\n", "\r", 1)
    got = _error({"secrets:galera_tls_key": key})
    assert got == ("moodle_ha:secrets:galera_tls_key: contains a carriage return (U+000D) that"
                   " does not end a line")


def test_a_common_name_the_sst_donor_refuses_is_named_under_verify_ca():
    spaced = make_cert(NODE_KEY, "moodle_ha galera", issuer=CA, issuer_key=CA_KEY)
    message = _error(_tls(certificate=pem_cert(spaced)))
    assert message.startswith("moodle_ha:galera:tls:certificate: the first certificate's common"
                              " name 'moodle_ha galera' is not a host-name-like name"), message
    # REQUIRED sends no name (nor checks the chain).
    assert _errors(_tls(certificate=pem_cert(spaced),
                        **{"galera:tls:sst_ssl_mode": "REQUIRED"})) == []

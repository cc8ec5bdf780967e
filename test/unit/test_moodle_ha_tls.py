"""Unit tests for the validation of lb:tls and secrets:tls_key (_modules/moodle_ha.py).

The map is built as map.jinja builds it: defaults.yaml, os_family/Debian.yaml and
osfinger/Debian-13.yaml merged (the known keys), the pillar's lookup and the rest of
pillar.example over them, then post_map(<map>, <minion id>, <roles grain>, <known>). The
certificates and keys are made here with `cryptography` (a CA and the certificates it signs,
self-signed ones, EC and RSA keys), so no openssl process runs and nothing expires.
"""

import datetime

import pytest
from certlib import DAY, NOW, ec_key, pem_cert, pem_key
from certlib import cert as make_cert
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from maplib import DELETE, known_tree, patched
from maplib import post_map as maplib_post_map

from render.renderlib import example_pillar
from saltmodules import load

VALIDATION = load("_modules/moodle_ha.py", "moodle_ha_tls_validation_unit")

VIP = "172.30.77.100"
NAME = "moodle.example.org"


KNOWN = known_tree()


def _post_map(patch=None, minion_id="lb1", pillar=None):
    """post_map's result for pillar.example with `patch` ({"a:b": value or DELETE} under
    moodle_ha) applied, with the arguments map.jinja passes (roles grain = pillar roles)."""
    pillar = patched((pillar or example_pillar())["moodle_ha"], patch)
    return maplib_post_map(VALIDATION, KNOWN, pillar, minion_id)


def _errors(patch=None, **kwargs):
    return _post_map(patch, **kwargs)["errors"]


# -- certificates ---------------------------------------------------------------------------


def _ip_san(ip=VIP):
    import ipaddress
    return x509.IPAddress(ipaddress.ip_address(ip))


def _dns_san(name=NAME):
    return x509.DNSName(name)


CA_KEY = ec_key()
CA = make_cert(CA_KEY, "moodle_ha test CA", san=None, ca=True, after=NOW + 3650 * DAY)
SITE_KEY = ec_key()
SITE = make_cert(SITE_KEY, NAME, san=[_dns_san(), _ip_san()], issuer=CA, issuer_key=CA_KEY)
SITE_KEY_PEM = pem_key(SITE_KEY)


def _tls(certificate, key=SITE_KEY_PEM, **extra):
    """A patch: lb:tls:certificate and secrets:tls_key (and other lb:tls keys)."""
    patch = {"lb:tls:certificate": certificate, "secrets:tls_key": key}
    patch.update({f"lb:tls:{k}": v for k, v in extra.items()})
    return patch


# -- the example pillar and the defaults ----------------------------------------------------


def test_example_pillar_is_valid_with_tls():
    result = _post_map()
    assert result["errors"] == []
    tls = result["map"]["lb"]["tls"]
    assert tls["enabled"] is True and tls["https_port"] == 443
    assert tls["pem_file"] == "/etc/haproxy/moodle_ha-site.pem"


def test_example_certificate_covers_the_vip_and_the_cluster_name_for_a_century():
    cert = x509.load_pem_x509_certificate(
        example_pillar()["moodle_ha"]["lb"]["tls"]["certificate"].encode())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == [VIP]
    assert san.get_values_for_type(x509.DNSName) == ["moodle-ha.moodle-ha.internal"]
    assert cert.not_valid_after_utc - cert.not_valid_before_utc >= 36500 * DAY
    assert cert.not_valid_before_utc < NOW < cert.not_valid_after_utc


def test_example_key_is_the_example_certificates():
    pillar = example_pillar()["moodle_ha"]
    cert = x509.load_pem_x509_certificate(pillar["lb"]["tls"]["certificate"].encode())
    key = serialization.load_pem_private_key(pillar["secrets"]["tls_key"].encode(), None)
    der = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert cert.public_key().public_bytes(*der) == key.public_key().public_bytes(*der)


def test_tls_key_is_not_always_required():
    assert "tls_key" not in VALIDATION.SECRETS
    assert "tls_key" in VALIDATION.OPTIONAL_SECRETS


def test_disabled_tls_needs_no_certificate_or_key():
    assert _errors({"lb:tls:enabled": False, "lb:tls:certificate": DELETE,
                    "secrets:tls_key": DELETE}) == []


def test_disabled_tls_does_not_read_a_bad_certificate():
    assert _errors({"lb:tls:enabled": False, "lb:tls:certificate": "junk",
                    "secrets:tls_key": "junk"}) == []


def test_defaults_enable_tls_and_then_need_certificate_and_key():
    errors = _errors({"lb:tls": DELETE, "secrets:tls_key": DELETE})
    assert any(e.startswith("moodle_ha:lb:tls:certificate: null, not a PEM certificate chain")
               for e in errors), errors
    assert any(e.startswith("moodle_ha:secrets:tls_key: missing") for e in errors), errors


def test_https_port_is_a_port_checked_with_the_others():
    assert "lb:tls:https_port" in VALIDATION._ROLE_LISTENERS["lb"]
    errors = _errors({"lb:tls:https_port": "443"})
    assert errors == ["moodle_ha:lb:tls:https_port: '443' is not a TCP port (an integer"
                      " 1..65535, unquoted)"]


@pytest.mark.parametrize("other", ["lb:haproxy:web_port", "lb:haproxy:stats_port",
                                   "lb:haproxy:writer_port"])
def test_https_port_may_not_be_another_lb_port(other):
    errors = _errors({"lb:tls:https_port": 8443, other: 8443})
    assert f"moodle_ha:lb:tls:https_port: port 8443 is also moodle_ha:{other}" in errors


def test_https_port_may_not_be_an_exporter_port():
    errors = _errors({"lb:tls:https_port": 9100})
    assert ("moodle_ha:metrics:node_exporter:port: port 9100 is also moodle_ha:lb:tls:https_port"
            " on host lb1") in errors


def test_ssh_port_may_not_be_the_https_port():
    errors = _errors({"firewall:ssh_port": 443})
    assert any(e.startswith("moodle_ha:firewall:ssh_port: port 443 is also"
                            " moodle_ha:lb:tls:https_port") for e in errors), errors


def test_tls_section_must_be_a_mapping():
    errors = _errors({"lb:tls": None})
    assert any(e.startswith("moodle_ha:lb:tls: must be a mapping, not null") for e in errors)


def test_unknown_tls_key_names_the_closest():
    errors = _errors({"lb:tls:hsts_maxage": 10})
    assert ("moodle_ha:lb:tls:hsts_maxage: unknown key (did you mean"
            " moodle_ha:lb:tls:hsts_max_age?)") in errors


# -- the switches ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["enabled", "redirect_http"])
@pytest.mark.parametrize("value", ["yes", 1, None])
def test_switches_are_booleans(key, value):
    assert f"moodle_ha:lb:tls:{key}: {value!r} is not true or false" in _errors(
        {f"lb:tls:{key}": value})


@pytest.mark.parametrize("value", [-1, "31536000", True, 1.5])
def test_hsts_max_age_is_a_number_of_seconds(value):
    assert any(e.startswith(f"moodle_ha:lb:tls:hsts_max_age: {value!r} is not a number of"
                            " seconds >= 0") for e in _errors({"lb:tls:hsts_max_age": value}))


@pytest.mark.parametrize("value", [0, 31536000])
def test_hsts_max_age_accepts_zero_and_a_year(value):
    assert _errors({"lb:tls:hsts_max_age": value}) == []


@pytest.mark.parametrize("value", ["relative.pem", "/etc/haproxy/my site.pem", None])
def test_pem_file_is_an_absolute_path_haproxy_cfg_can_carry(value):
    assert any(e.startswith("moodle_ha:lb:tls:pem_file:")
               for e in _errors({"lb:tls:pem_file": value}))


# -- certificate and key --------------------------------------------------------------------


def test_ca_signed_chain_with_dns_name_is_valid():
    assert _errors({**_tls(pem_cert(SITE, CA)), "web:server_name": NAME}) == []


def test_ca_signed_certificate_with_ip_san_covers_the_vip():
    assert _errors(_tls(pem_cert(SITE, CA))) == []


def test_self_signed_certificate_is_accepted():
    key = ec_key()
    cert = make_cert(key, VIP, san=[_ip_san()])
    assert _errors(_tls(pem_cert(cert), pem_key(key))) == []


def test_rsa_key_is_accepted():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = make_cert(key, NAME, san=[_ip_san()], issuer=CA, issuer_key=CA_KEY)
    assert _errors(_tls(pem_cert(cert, CA), pem_key(key))) == []


def test_traditional_ec_key_format_is_accepted():
    pem = SITE_KEY.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.TraditionalOpenSSL,
                                 serialization.NoEncryption()).decode()
    assert pem.startswith("-----BEGIN EC PRIVATE KEY-----")
    assert _errors(_tls(pem_cert(SITE, CA), pem)) == []


def test_crlf_line_ends_are_accepted():
    assert _errors(_tls(pem_cert(SITE, CA), SITE_KEY_PEM.replace("\n", "\r\n"))) == []


def test_key_without_trailing_newline_is_accepted():
    assert _errors(_tls(pem_cert(SITE, CA), SITE_KEY_PEM.rstrip("\n"))) == []


@pytest.mark.parametrize("value", [None, "junk", "-----BEGIN CERTIFICATE-----\nAAAA\n"
                                   "-----END CERTIFICATE-----\n"])
def test_certificate_must_be_a_pem_chain(value):
    errors = _errors(_tls(value))
    assert any(e.startswith("moodle_ha:lb:tls:certificate:") and "PEM certificate chain" in e
               for e in errors), errors


def test_certificate_may_not_hold_the_private_key():
    errors = _errors(_tls(pem_cert(SITE, CA) + SITE_KEY_PEM))
    assert any(e.startswith("moodle_ha:lb:tls:certificate: holds a private key: it belongs in"
                            " secrets:tls_key") for e in errors), errors
    assert not any(_key_body(SITE_KEY_PEM) in e for e in errors)


def test_key_is_required_while_enabled():
    errors = _errors(_tls(pem_cert(SITE, CA), DELETE))
    assert errors == ["moodle_ha:secrets:tls_key: missing (the PEM private key of"
                      " lb:tls:certificate, required while lb:tls:enabled is true)"]


def _key_body(pem):
    """A line of the key's base64 body: no message may carry it."""
    return pem.splitlines()[1]


def test_key_that_is_not_a_key_is_refused_without_quoting_it():
    bad = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----\n"
    errors = _errors(_tls(pem_cert(SITE, CA), bad))
    assert errors == ["moodle_ha:secrets:tls_key: not a PEM private key (-----BEGIN PRIVATE"
                      " KEY-----, or EC/RSA PRIVATE KEY)"]


def test_encrypted_key_is_refused_haproxy_needs_it_unencrypted():
    encrypted = pem_key(SITE_KEY, b"passphrase")
    errors = _errors(_tls(pem_cert(SITE, CA), encrypted))
    assert len(errors) == 1
    assert errors[0].startswith("moodle_ha:secrets:tls_key: the private key is encrypted (a"
                                " passphrase): HAProxy needs it unencrypted")
    assert _key_body(encrypted) not in errors[0]


def test_wrong_key_is_refused_without_quoting_it():
    wrong = pem_key(ec_key())
    errors = _errors(_tls(pem_cert(SITE, CA), wrong))
    assert errors == ["moodle_ha:secrets:tls_key: is not the private key of the first"
                      f" certificate of lb:tls:certificate (CN={NAME})"]


def test_chain_in_the_wrong_order_is_named():
    errors = _errors(_tls(pem_cert(CA, SITE)))
    assert any(e.startswith("moodle_ha:secrets:tls_key: is not the private key of the first"
                            " certificate of lb:tls:certificate (CN=moodle_ha test CA); it is"
                            " certificate 2's: the site certificate must come first")
               for e in errors), errors


def test_key_holding_a_certificate_is_refused():
    errors = _errors(_tls(pem_cert(SITE, CA), SITE_KEY_PEM + pem_cert(SITE)))
    assert errors == ["moodle_ha:secrets:tls_key: holds a certificate as well: give the"
                      " private key only (the certificate chain is lb:tls:certificate)"]


@pytest.mark.parametrize("char", ["\t", "\x00", "\x1b"])
def test_key_control_characters_other_than_line_ends_are_refused(char):
    key = SITE_KEY_PEM.replace("\n", "\n" + char, 1)
    errors = _errors(_tls(pem_cert(SITE, CA), key))
    assert (f"moodle_ha:secrets:tls_key: contains control character(s) U+{ord(char):04X}"
            " (not allowed in a secret)") in errors


def test_key_lone_carriage_return_is_refused():
    key = SITE_KEY_PEM.replace("\n", "\r", 1)
    errors = _errors(_tls(pem_cert(SITE, CA), key))
    assert ("moodle_ha:secrets:tls_key: contains a carriage return (U+000D) that does not end"
            " a line") in errors


# -- the server name ------------------------------------------------------------------------


def _site(san, **kwargs):
    key = ec_key()
    return pem_cert(make_cert(key, NAME, san=san, issuer=CA, issuer_key=CA_KEY, **kwargs), CA), \
        pem_key(key)


def test_vip_needs_an_ip_address_san():
    cert, key = _site([_dns_san(VIP), _dns_san()])
    errors = _errors(_tls(cert, key))
    assert errors == [f"moodle_ha:lb:tls:certificate: the first certificate does not cover {VIP}"
                      " (moodle_ha:topology:vip, the site's address): it needs an IP address"
                      f" SAN for it; its subjectAltName has DNS:{VIP}, DNS:{NAME}"]


def test_ip_san_of_another_address_does_not_cover_the_vip():
    cert, key = _site([_ip_san("172.30.77.21")])
    errors = _errors(_tls(cert, key))
    assert len(errors) == 1 and "its subjectAltName has IP:172.30.77.21" in errors[0]


def test_server_name_needs_a_dns_san():
    cert, key = _site([_ip_san()])
    errors = _errors({**_tls(cert, key), "web:server_name": NAME})
    assert errors == [f"moodle_ha:lb:tls:certificate: the first certificate does not cover {NAME}"
                      " (moodle_ha:web:server_name, the site's address): it needs a DNS SAN for"
                      f" it; its subjectAltName has IP:{VIP}"]


def test_server_name_ip_needs_an_ip_san():
    cert, key = _site([_ip_san("172.30.77.21")])
    assert _errors({**_tls(cert, key), "web:server_name": "172.30.77.21"}) == []


@pytest.mark.parametrize("server_name", ["moodle.example.org", "MOODLE.Example.org"])
def test_wildcard_dns_san_covers_one_label(server_name):
    cert, key = _site([x509.DNSName("*.example.org")])
    assert _errors({**_tls(cert, key), "web:server_name": server_name}) == []


@pytest.mark.parametrize("server_name", ["a.moodle.example.org", "example.org"])
def test_wildcard_dns_san_covers_no_other_depth(server_name):
    cert, key = _site([x509.DNSName("*.example.org")])
    errors = _errors({**_tls(cert, key), "web:server_name": server_name})
    assert len(errors) == 1
    assert errors[0].startswith(f"moodle_ha:lb:tls:certificate: the first certificate does not"
                                f" cover {server_name} (moodle_ha:web:server_name")


def test_dns_san_is_matched_exactly_otherwise():
    cert, key = _site([_dns_san("other.example.org")])
    errors = _errors({**_tls(cert, key), "web:server_name": NAME})
    assert len(errors) == 1 and "its subjectAltName has DNS:other.example.org" in errors[0]


def test_certificate_without_san_is_refused_browsers_ignore_the_cn():
    cert, key = _site(None)
    errors = _errors({**_tls(cert, key), "web:server_name": NAME})
    assert errors == [f"moodle_ha:lb:tls:certificate: the first certificate (CN={NAME}) has no"
                      " subjectAltName: browsers ignore the CN (it needs one covering"
                      f" {NAME}, moodle_ha:web:server_name)"]


def test_only_the_first_certificate_is_read_for_the_name():
    # The CA's certificate (second) has no SAN: never asked for one.
    assert _errors(_tls(pem_cert(SITE, CA))) == []


# -- the dates ------------------------------------------------------------------------------


def test_expired_or_future_certificates_are_not_refused():
    # An expired certificate must not stop every host's states (a Galera recovery too).
    for before, after in ((datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
                           datetime.datetime(2021, 1, 1, tzinfo=datetime.UTC)),
                          (NOW + 30 * DAY, NOW + 400 * DAY)):
        cert, key = _site([_ip_san()], before=before, after=after)
        assert _errors(_tls(cert, key)) == []


def test_expired_intermediate_is_not_the_sites_certificate():
    old_ca_key = ec_key()
    old_ca = make_cert(old_ca_key, "old CA", ca=True, before=NOW - 400 * DAY, after=NOW - DAY)
    assert _errors(_tls(pem_cert(SITE, old_ca))) == []


# -- no message carries the key -------------------------------------------------------------


@pytest.mark.parametrize("patch", [
    {"lb:tls:certificate": "junk"},
    {"web:server_name": "other.example.org"},
    {"lb:tls:certificate": pem_cert(CA)},
])
def test_no_message_carries_the_key(patch):
    key = pem_key(ec_key())
    errors = _errors({**_tls(pem_cert(SITE, CA), key), **patch})
    assert errors
    for line in key.splitlines()[1:-1]:
        assert not any(line in e for e in errors)

"""Certificates and keys for the TLS tests, made with `cryptography` (no openssl process;
nothing expires while a test runs)."""

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)


def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def pem_key(key, password=None):
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             encryption).decode()


def pem_cert(*certs):
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def cert(key, cn, san=None, issuer=None, issuer_key=None, ca=False,
         before=NOW - DAY, after=NOW + 365 * DAY):
    """A certificate for `key`, signed by `issuer_key` (default: self-signed); `san` a list of
    x509.GeneralName (None: no subjectAltName extension at all)."""
    builder = (x509.CertificateBuilder()
               .subject_name(name(cn))
               .issuer_name(issuer.subject if issuer is not None else name(cn))
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(before)
               .not_valid_after(after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


_GALERA = {}


def galera_tls_pillar():
    """{"moodle_ha": {...}}: galera:tls:ca and :certificate and secrets:galera_tls_key, a CA
    and the one node certificate it signs (made once per test process)."""
    if not _GALERA:
        ca_key, node_key = ec_key(), ec_key()
        ca = cert(ca_key, "moodle_ha test galera CA", ca=True)
        node = cert(node_key, "galera.moodle-ha.internal", issuer=ca, issuer_key=ca_key)
        _GALERA.update(ca=pem_cert(ca), certificate=pem_cert(node), key=pem_key(node_key))
    return {"moodle_ha": {
        "galera": {"tls": {"ca": _GALERA["ca"], "certificate": _GALERA["certificate"]}},
        "secrets": {"galera_tls_key": _GALERA["key"]}}}

"""TLS on the VIP seen from a client: HTTPS with the certificate the pillar gives (here signed
by the lab's CA, which the client trusts), plain HTTP redirected, and what HAProxy tells the
web nodes about the client: the scheme it used, and only the address HAProxy saw."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

import pytest

from mhalab import testkit

pytestmark = pytest.mark.lab


def _front_page(headers=None):
    req = urllib.request.Request(testkit.site_url("/"), headers=headers or {})
    with urllib.request.urlopen(req, timeout=10, context=testkit.tls_context()) as resp:
        return json.loads(resp.read())


def test_https_serves_the_site_with_the_pillar_certificate(deployed, topology):
    vip = topology["vip"]
    got = ssl.get_server_certificate((vip, 443))
    want = testkit.pillar()["lb"]["tls"]["certificate"]
    assert ssl.PEM_cert_to_DER_cert(got) == ssl.PEM_cert_to_DER_cert(want.strip())
    page = _front_page()
    assert page["installed"] is True
    assert page["wwwroot"] == f"https://{vip}"
    assert page["sslproxy"] is True


def test_plain_http_redirects_to_https(deployed, topology):
    vip = topology["vip"]
    req = urllib.request.Request(f"http://{vip}/login/index.php?x=1", headers={"Host": vip})
    opener = urllib.request.build_opener(testkit.NoRedirect())
    with pytest.raises(urllib.error.HTTPError) as answer:
        opener.open(req, timeout=5)
    assert answer.value.code == 301
    assert answer.value.headers.get("Location") == f"https://{vip}/login/index.php?x=1"


def test_web_nodes_learn_the_scheme_and_only_the_real_client_address(deployed, topology):
    page = _front_page({"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "http"})
    assert page["forwarded_proto"] == "https"
    # The lab host's own address on the bridge, not the forged one.
    assert page["forwarded_for"] == topology["gateway"]

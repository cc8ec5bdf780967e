"""Unit tests for _states/moodle_ha.py (the end-to-end checks of moodle_ha.check)."""

import sys
import types

import pytest

from saltmodules import load

PASSWORD = "Nf3 a#b'c\"d\\e$f${HOME}%g:h;i`j é€"


class FakePyMySQL(types.ModuleType):
    """pymysql stand-in: keeps what connect() got and answers SELECT @@hostname."""

    class MySQLError(Exception):
        pass

    def __init__(self):
        super().__init__("pymysql")
        self.calls = []

    def connect(self, **kwargs):
        self.calls.append(kwargs)
        fake = self

        class Cursor:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def execute(self, sql):
                fake.sql = sql

            def fetchone(self):
                return ("moodle1",)

        class Conn:
            def cursor(self):
                return Cursor()

            def close(self):
                pass

        return Conn()


@pytest.fixture
def state(monkeypatch):
    fake = FakePyMySQL()
    monkeypatch.setitem(sys.modules, "pymysql", fake)
    mod = load("_states/moodle_ha.py", "moodle_ha_state_under_test")
    mod.__opts__ = {"test": False}
    mod.__salt__ = {}
    return mod, fake


def test_db_ok_sends_the_password_as_utf8_bytes(state):
    # PyMySQL would encode a str as latin-1: '€' raises, 'é' becomes another byte.
    mod, fake = state
    ret = mod.db_ok("172.30.77.100", port=3307, user="moodle", password=PASSWORD,
                    database="moodle", timeout=1)
    assert ret["result"] is True, ret["comment"]
    assert fake.calls[0]["password"] == PASSWORD.encode("utf-8")
    assert "moodle1" in ret["comment"] and PASSWORD not in ret["comment"]


# -- http_ok against real loopback servers (plain and TLS, certificates made here) ----------

def _self_signed(common_name):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


@pytest.fixture
def web_server(tmp_path):
    """A loopback HTTP server (and optionally TLS) answering like HAProxy's frontend:
    /redirect 301 to https, /health 200 with the Host it got, anything else 404."""
    import http.server
    import ssl
    import threading

    servers = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/redirect"):
                self.send_response(301)
                self.send_header("Location", "https://example.test/health")
                body = b""
            elif self.path == "/health":
                self.send_response(200)
                body = f"ok host={self.headers.get('Host')}".encode()
            else:
                self.send_response(404)
                body = b"no"
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    def start(cert_pem=None, key_pem=None):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if cert_pem:
            (tmp_path / "c.pem").write_text(cert_pem)
            (tmp_path / "k.pem").write_text(key_pem)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
            server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        scheme = "https" if cert_pem else "http"
        return f"{scheme}://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_http_ok_sends_the_host_header_and_reads_the_body(state, web_server):
    mod, _ = state
    base = web_server()
    ret = mod.http_ok(f"{base}/health", host_header="moodle.example",
                      contains="host=moodle.example", timeout=0)
    assert ret["result"] is True, ret["comment"]
    ret = mod.http_ok(f"{base}/missing", timeout=0)
    assert ret["result"] is False and "answered 404, expected 200" in ret["comment"]


def test_http_ok_takes_a_redirect_as_the_answer(state, web_server):
    mod, _ = state
    base = web_server()
    ret = mod.http_ok(f"{base}/redirect", expect=301, location="https://example.test/health",
                      timeout=0)
    assert ret["result"] is True, ret["comment"]
    ret = mod.http_ok(f"{base}/redirect", expect=301, location="https://other.test/", timeout=0)
    assert ret["result"] is False
    assert "Location 'https://example.test/health', expected 'https://other.test/'" in (
        ret["comment"])


def test_http_ok_over_tls_accepts_only_the_pinned_certificate(state, web_server):
    mod, _ = state
    cert, key = _self_signed("site.example")
    other, _ = _self_signed("site.example")
    base = web_server(cert, key)
    ret = mod.http_ok(f"{base}/health", certificate=cert, timeout=0)
    assert ret["result"] is True, ret["comment"]
    # Same name, another certificate: refused by the pin.
    ret = mod.http_ok(f"{base}/health", certificate=other, timeout=0)
    assert ret["result"] is False
    assert "presented another certificate than lb:tls:certificate" in ret["comment"]
    # Without a pin the system's CAs apply: a self-signed certificate fails verification.
    ret = mod.http_ok(f"{base}/health", timeout=0)
    assert ret["result"] is False and "CERTIFICATE_VERIFY_FAILED" in ret["comment"]

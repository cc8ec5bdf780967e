"""
The throughput bench's parts that need no lab: the load generator against a local HTTP server
that plays Moodle's login form (logintoken, session cookie, redirect after the POST), and the
CPU split arithmetic.
"""

import http.server
import sys
import threading
import urllib.parse
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))

import loadgen  # noqa: E402
import throughput  # noqa: E402

PASSWORD = "pa ss'\"#"


class FakeMoodle(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    logins: list = []

    def _send(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path == "/login/index.php":
            page = (b'<input type="hidden" name="logintoken" value="tok1">'
                    b'<input type="hidden" name="logintoken" value="tok2">')
            self._send(200, page, [("Set-Cookie", "MoodleSession=anon; path=/")])
        elif self.path == "/my/":
            ok = "MoodleSession=user" in (self.headers.get("Cookie") or "")
            self._send(200 if ok else 303, b"dashboard" if ok else b"")
        else:
            self._send(404)

    def do_POST(self):  # noqa: N802
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        FakeMoodle.logins.append(form)
        good = form.get("password") == [PASSWORD] and form.get("logintoken") == ["tok1"]
        cookie = "MoodleSession=user; path=/; HttpOnly" if good else "MoodleSession=anon"
        self._send(303 if good else 200, b"", [("Set-Cookie", cookie), ("Location", "/my/")])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeMoodle)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    FakeMoodle.logins = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _args(base, *extra):
    return loadgen.parse(["--base", base, "--clients", "2", "--seconds", "0.5",
                          "--warmup", "0.2", *extra])


def test_anonymous_load_counts_200_answers_and_their_latency(server):
    out = loadgen.run(_args(server))
    assert out["ok"] > 0 and out["other"] == 0 and out["errors"] == 0
    assert out["rps"] == round(out["ok"] / 0.5, 1) and out["p95_ms"] >= out["p50_ms"] > 0


def test_logged_in_load_logs_each_client_in_with_the_first_token(server, monkeypatch):
    monkeypatch.setenv("MOODLE_HA_BENCH_PASSWORD", PASSWORD)
    out = loadgen.run(_args(server, "--path", "/my/", "--login", "admin"))
    assert out["ok"] > 0 and out["other"] == 0, out
    assert len(FakeMoodle.logins) == 2
    assert all(f["username"] == ["admin"] and f["logintoken"] == ["tok1"]
               for f in FakeMoodle.logins)


def test_a_wrong_password_is_a_login_failure_not_a_figure(server, monkeypatch):
    monkeypatch.setenv("MOODLE_HA_BENCH_PASSWORD", "wrong")
    out = loadgen.run(_args(server, "--path", "/my/", "--login", "admin"))
    assert out["ok"] == 0 and out["rps"] == 0
    assert out["failures"] and "wrong password" in out["failures"][0]


def test_other_answers_are_counted_by_status(server):
    out = loadgen.run(_args(server, "--path", "/nowhere"))
    assert out["ok"] == 0 and out["statuses"].get("404", 0) == out["other"] > 0


def test_cpu_split_is_percent_of_one_core_over_the_window():
    before = {"at": 100.0, "hosts": {"moodle1": 10.0, "lb1": 5.0},
              "kinds": {("moodle1", "apache/php", 1): 4.0, ("moodle1", "mariadb", 2): 1.0}}
    after = {"at": 110.0, "hosts": {"moodle1": 22.0, "lb1": 6.0},
             "kinds": {("moodle1", "apache/php", 1): 12.0, ("moodle1", "mariadb", 2): 2.5,
                       ("moodle1", "apache/php", 3): 50.0}}  # born in the window: not counted
    split = throughput.cpu_split(before, after)
    assert split["kinds"] == {"apache/php": 80, "mariadb": 15}
    assert split["hosts"] == {"moodle1": 120, "lb1": 10} and split["total"] == 130

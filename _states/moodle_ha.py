"""
End-to-end checks of a moodle_ha cluster, as states: they change nothing and fail with a
readable comment, so ``moodle_ha.orch`` can finish with a check that a re-run reports as
unchanged.

.. code-block:: yaml

    moodle_ha-check-site-http-ok:
      moodle_ha.http_ok:
        - name: http://172.30.77.100/
        - expect: 200
"""

import http.client
import ssl
import time
import urllib.parse

__virtualname__ = "moodle_ha"


def __virtual__():
    return __virtualname__


def _ret(name):
    return {"name": name, "result": False, "changes": {}, "comment": ""}


def _retry(check, timeout, interval=1.0):
    """Call check() until it returns (True, msg) or timeout seconds pass; return last result."""
    deadline = time.monotonic() + timeout
    while True:
        ok, msg = check()
        if ok or time.monotonic() >= deadline:
            return ok, msg
        time.sleep(interval)


def _pinned_der(certificate):
    """DER of the first certificate of a PEM chain."""
    begin = "-----BEGIN CERTIFICATE-----"
    end = "-----END CERTIFICATE-----"
    text = certificate[certificate.index(begin):]
    return ssl.PEM_cert_to_DER_cert(text[:text.index(end) + len(end)])


def _get(url, host_header=None, certificate=None, timeout=5):
    """(status, headers, body) of one GET of ``url``, redirects not followed. For https with
    ``certificate`` (PEM chain), the server must present exactly its first certificate."""
    parts = urllib.parse.urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if parts.scheme == "https":
        context = ssl.create_default_context()
        if certificate:
            # Pinned: the very certificate of the pillar, whoever signed it.
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(parts.hostname, parts.port or 443,
                                           timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        conn.putrequest("GET", path, skip_host=bool(host_header))
        if host_header:
            conn.putheader("Host", host_header)
        conn.endheaders()
        if certificate and conn.sock.getpeercert(binary_form=True) != _pinned_der(certificate):
            raise ssl.SSLError(f"{url} presented another certificate than"
                               " lb:tls:certificate")
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def http_ok(name, expect=200, host_header=None, contains=None, timeout=30, certificate=None,
            location=None):
    """
    Ensure an HTTP GET of ``name`` answers status ``expect`` (and contains a string).

    Redirects are answers, not followed (``location``: the expected Location header of one).
    For an https URL with ``certificate`` (a PEM chain, e.g. lb:tls:certificate) the server
    must present that chain's first certificate. Retries for up to ``timeout`` seconds (a
    backend may still be rising in HAProxy).
    """
    ret = _ret(name)
    if __opts__["test"]:
        ret.update(result=None, comment=f"Would GET {name} and expect {expect}")
        return ret

    def check():
        try:
            status, headers, body = _get(name, host_header, certificate)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return False, f"GET {name} failed: {exc}"
        if status != expect:
            return False, f"GET {name} answered {status}, expected {expect}"
        if contains and contains not in body:
            return False, f"GET {name} answered {status} without {contains!r}"
        if location is not None and headers.get("Location") != location:
            return False, (f"GET {name} answered {status} with Location"
                           f" {headers.get('Location')!r}, expected {location!r}")
        return True, f"GET {name} answered {status}"

    ok, msg = _retry(check, timeout)
    ret.update(result=ok, comment=msg)
    return ret


def db_ok(name, port, user, password, database=None, timeout=30):
    """
    Ensure a MariaDB endpoint ``name:port`` accepts ``user`` and answers a query.

    The password is a state argument (from the map), never on a command line nor in the
    comment. The comment names the server (``@@hostname``) that answered.
    """
    ret = _ret(f"{name}:{port}")
    if __opts__["test"]:
        ret.update(result=None, comment=f"Would query {name}:{port} as {user}")
        return ret
    try:
        import pymysql
    except ImportError:
        ret["comment"] = "PyMySQL is not installed for the minion's Python"
        return ret

    # PyMySQL encodes a str password as latin-1 (an error for '€', other bytes for 'é'); the
    # account's password is the pillar's UTF-8, as MariaDB got it when the account was made.
    secret = password.encode("utf-8") if isinstance(password, str) else password

    def check():
        try:
            conn = pymysql.connect(host=name, port=int(port), user=user, password=secret,
                                   database=database, connect_timeout=5)
        except pymysql.MySQLError as exc:
            return False, f"{name}:{port} refused {user}: {exc.args[-1]}"
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT @@hostname")
                host = cur.fetchone()[0]
        finally:
            conn.close()
        return True, f"{name}:{port} answered as {host}"

    ok, msg = _retry(check, timeout)
    ret.update(result=ok, comment=msg)
    return ret


def file_seen(name, contents, timeout=30):
    """
    Ensure the file ``name`` exists with exactly ``contents`` (e.g. written on another node of
    a shared file system).
    """
    ret = _ret(name)
    if __opts__["test"]:
        ret.update(result=None, comment=f"Would read {name}")
        return ret

    def check():
        try:
            with open(name, encoding="utf-8") as fh:
                seen = fh.read()
        except OSError as exc:
            return False, f"{name} is not readable here: {exc.strerror}"
        if seen.strip() != str(contents).strip():
            return False, f"{name} has other contents than expected"
        return True, f"{name} is seen with the expected contents"

    ok, msg = _retry(check, timeout)
    ret.update(result=ok, comment=msg)
    return ret

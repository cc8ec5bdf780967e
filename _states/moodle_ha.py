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

import time
import urllib.error
import urllib.request

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


def http_ok(name, expect=200, host_header=None, contains=None, timeout=30):
    """
    Ensure an HTTP GET of ``name`` answers status ``expect`` (and contains a string).

    Retries for up to ``timeout`` seconds (a backend may still be rising in HAProxy).
    """
    ret = _ret(name)
    if __opts__["test"]:
        ret.update(result=None, comment=f"Would GET {name} and expect {expect}")
        return ret

    def check():
        req = urllib.request.Request(name)
        if host_header:
            req.add_header("Host", host_header)
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                status, body = resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            status, body = exc.code, ""
        except (urllib.error.URLError, OSError) as exc:
            return False, f"GET {name} failed: {exc}"
        if status != expect:
            return False, f"GET {name} answered {status}, expected {expect}"
        if contains and contains not in body:
            return False, f"GET {name} answered {status} without {contains!r}"
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

#!/usr/bin/env python3
"""
A closed-loop HTTP load generator for the throughput bench (standard library only, so the same
file runs on the lab host and, fed on stdin, inside a lab host: `python3 - ARGS < loadgen.py`).

    python3 loadgen.py --base https://172.30.77.100 --path /login/index.php --clients 8 \
        --seconds 20 --warmup 5 [--cafile ca.pem] [--host-header H] [--login admin]

Each client keeps one keep-alive connection (a new one after an error or a close) and sends
its next request when the last answer is read. With --login USER, each client first logs in
through Moodle's login form (password from $MOODLE_HA_BENCH_PASSWORD, never an argument) and
then requests PATH with its own session; without it every request carries no cookie (a new
visitor each time, as a login page sees them). Prints one JSON object: requests answered 200
during the measured window, other answers, errors, requests/s, p50/p95 latency in ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import ssl
import sys
import threading
import time
import urllib.parse

TOKEN = re.compile(rb'name="logintoken"\s+value="([^"]+)"')


class Client:
    def __init__(self, base: str, host_header: str | None, cafile: str | None, timeout: float):
        url = urllib.parse.urlsplit(base)
        self.https = url.scheme == "https"
        self.netloc = url.hostname
        self.port = url.port or (443 if self.https else 80)
        self.host_header = host_header or url.netloc
        self.timeout = timeout
        self.context = None
        if self.https:
            self.context = ssl.create_default_context(cafile=cafile)
            self.context.check_hostname = False
        self.conn = None
        self.cookies: dict[str, str] = {}

    def _connect(self):
        if self.https:
            return http.client.HTTPSConnection(self.netloc, self.port, timeout=self.timeout,
                                               context=self.context)
        return http.client.HTTPConnection(self.netloc, self.port, timeout=self.timeout)

    def request(self, method: str, path: str, body: bytes | None = None,
                cookies: bool = True) -> tuple[int, bytes]:
        if self.conn is None:
            self.conn = self._connect()
        headers = {"Host": self.host_header, "Connection": "keep-alive"}
        if cookies and self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if cookies:
            for header, value in resp.getheaders():
                if header.lower() == "set-cookie":
                    name, _, rest = value.partition("=")
                    self.cookies[name.strip()] = rest.split(";", 1)[0]
        if resp.getheader("Connection", "").lower() == "close":
            self.close()
        return resp.status, data

    def login(self, user: str, password: str) -> None:
        status, page = self.request("GET", "/login/index.php")
        match = TOKEN.search(page)
        if status != 200 or not match:
            raise RuntimeError(f"login page answered {status} without a logintoken")
        form = urllib.parse.urlencode({"username": user, "password": password,
                                       "logintoken": match.group(1).decode()}).encode()
        status, _ = self.request("POST", "/login/index.php", body=form)
        if status not in (302, 303):
            raise RuntimeError(f"login POST answered {status} (not a redirect: wrong password?)")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def run(args) -> dict:
    password = os.environ.get("MOODLE_HA_BENCH_PASSWORD", "")
    start = time.monotonic()
    begin, end = start + args.warmup, start + args.warmup + args.seconds
    lock = threading.Lock()
    result = {"ok": 0, "other": 0, "errors": 0, "latencies": [], "statuses": {}, "failures": []}

    def worker():
        client = Client(args.base, args.host_header, args.cafile, args.timeout)
        if args.login:
            try:
                client.login(args.login, password)
            except (OSError, RuntimeError, http.client.HTTPException) as exc:
                with lock:
                    result["failures"].append(f"login: {exc}"[:200])
                return
        while time.monotonic() < end:
            sent = time.monotonic()
            try:
                status, _ = client.request("GET", args.path, cookies=bool(args.login))
                failure = None
            except (OSError, http.client.HTTPException) as exc:
                status, failure = None, repr(exc)[:120]
            done = time.monotonic()
            if sent < begin or done > end:
                continue
            with lock:
                if status == 200:
                    result["ok"] += 1
                    result["latencies"].append((done - sent) * 1000)
                elif status is None:
                    result["errors"] += 1
                    result["failures"].append(failure)
                else:
                    result["other"] += 1
                    result["statuses"][str(status)] = result["statuses"].get(str(status), 0) + 1
        client.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(args.warmup + args.seconds + args.timeout + 30)
    lat = result.pop("latencies")
    result["failures"] = result["failures"][:5]
    result.update(rps=round(result["ok"] / args.seconds, 1),
                  p50_ms=round(percentile(lat, 0.5) or 0, 1),
                  p95_ms=round(percentile(lat, 0.95) or 0, 1))
    return result


def parse(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="scheme://address[:port] of the site")
    parser.add_argument("--path", default="/login/index.php")
    parser.add_argument("--host-header", help="Host header (default: the base's address)")
    parser.add_argument("--cafile", help="CA bundle for https (the lab's CA)")
    parser.add_argument("--login", help="log each client in as this Moodle user first")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--timeout", type=float, default=10)
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(json.dumps(run(parse())), flush=True)
    sys.exit(0)

"""
Lab, fixture app: Apache streams files from the dataroot by X-Sendfile (web:xsendfile). The
fixture's xsendfile.php, like Moodle's send_file with $CFG->xsendfile, sends only the header
naming a file on the shared volume; every web node answers with the file's bytes and the
header never reaches the client. Skipped on the real Moodle (no xsendfile.php there).
"""

import hashlib
import secrets
import urllib.request

import pytest

from mhalab import testkit
from mhalab.testkit import host_exec

pytestmark = pytest.mark.lab


def test_every_web_node_streams_a_dataroot_file_by_x_sendfile(deployed):
    pillar = testkit.pillar()
    dirroot = pillar.get("moodle", {}).get("dirroot", "/var/www/moodle")
    dataroot = pillar.get("moodle", {}).get("dataroot", "/var/moodledata")
    webs = sorted(n for n, h in testkit.topology()["hosts"].items() if "web" in h["roles"])
    if host_exec(webs[0], ["test", "-f", f"{dirroot}/public/xsendfile.php"]).returncode != 0:
        pytest.skip("not the fixture app (its public/xsendfile.php is absent)")
    name = f"xsendfile-{secrets.token_hex(4)}.bin"
    path = f"{dataroot}/fixture/{name}"
    # 128 KiB made on the host (an argument of that size is over the kernel's limit).
    wrote = host_exec(webs[0], ["runuser", "-u", "www-data", "--", "sh", "-c",
                                f"mkdir -p {dataroot}/fixture && head -c 131072 /dev/urandom"
                                f" > {path} && sha256sum {path}"])
    assert wrote.returncode == 0, wrote.stderr
    digest = wrote.stdout.split()[0]
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=testkit.tls_context()))
    for _ in range(3 * len(webs)):
        with opener.open(testkit.site_url(f"/xsendfile.php?name={name}"), timeout=10) as resp:
            body = resp.read()
            assert resp.status == 200
            assert resp.headers["X-Moodle-Ha-Xsendfile"] == "X-Sendfile", dict(resp.headers)
            assert "X-Sendfile" not in resp.headers, "Apache passed the header on"
            assert len(body) == 131072, f"{len(body)} bytes instead of 131072"
            assert hashlib.sha256(body).hexdigest() == digest
    print(f"\n{3 * len(webs)} requests through the VIP (round robin over {len(webs)} web nodes):"
          " 131072 bytes each, streamed by Apache from the dataroot")

"""
Lab, fixture app: Apache streams files from the dataroot by X-Sendfile (web:xsendfile). The
fixture's xsendfile.php, like Moodle's send_file with $CFG->xsendfile, sends only the header
naming a file on the shared volume; every web node answers with the file's bytes and the
header never reaches the client. Skipped on the real Moodle (no xsendfile.php there).
"""

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
    content = secrets.token_hex(64 * 1024)  # 128 KiB, one line
    wrote = host_exec(webs[0], ["runuser", "-u", "www-data", "--", "sh", "-c",
                                f"mkdir -p {dataroot}/fixture && cat > {dataroot}/fixture/{name}"
                                f" <<'EOF'\n{content}\nEOF"])
    assert wrote.returncode == 0, wrote.stderr
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=testkit.tls_context()))
    for _ in range(3 * len(webs)):
        with opener.open(testkit.site_url(f"/xsendfile.php?name={name}"), timeout=10) as resp:
            body = resp.read().decode()
            assert resp.status == 200
            assert resp.headers["X-Moodle-Ha-Xsendfile"] == "X-Sendfile", dict(resp.headers)
            assert "X-Sendfile" not in resp.headers, "Apache passed the header on"
            assert body == content + "\n", f"{len(body)} bytes instead of {len(content) + 1}"
    print(f"\n{3 * len(webs)} requests through the VIP (round robin over {len(webs)} web nodes):"
          f" {len(content) + 1} bytes each, streamed by Apache from the dataroot")

"""
Lab: Moodle's caches on a cluster (moodle_ha.moodle.cache). Every web node keeps Moodle's cache
configuration on its own disk with the node-local file store mapped to the caches Moodle marks
safe for it, and this release's component map in a root-owned directory; none of that is read
from the shared volume. Works on the fixture app and on a real Moodle (both write the cache
configuration as Moodle's var_export'ed $configuration).
"""

import pytest

from mhalab import testkit
from mhalab.testkit import host_exec

pytestmark = pytest.mark.lab

CONFIG = "/var/lib/moodle_ha/muc/cacheconfig.php"
COMPONENT_DIR = "/var/cache/moodle_ha/component"
LOCAL_STORE = "moodle_ha_local"


def _webs():
    return sorted(n for n, h in testkit.topology()["hosts"].items() if "web" in h["roles"])


def test_every_web_node_maps_moodles_local_caches_to_its_own_disk(deployed):
    dataroot = testkit.pillar().get("moodle", {}).get("dataroot", "/var/moodledata")
    for node in _webs():
        conf = host_exec(node, ["cat", CONFIG])
        assert conf.returncode == 0, f"{node}: no node-local cache configuration: {conf.stderr}"
        text = conf.stdout
        assert f"'name' => '{LOCAL_STORE}'" in text, f"{node}: the local store is missing"
        # core/string is canuselocalstore in Moodle and in the fixture; core/config is not.
        mapping = f"'store' => '{LOCAL_STORE}',\n      'definition' => 'core/string'"
        assert mapping in text, f"{node}: core/string is not mapped to the local store"
        assert "'definition' => 'core/config'" not in text, f"{node}: core/config went local"
        shared = host_exec(node, ["test", "-e", f"{dataroot}/muc/config.php"])
        assert shared.returncode != 0, f"{node}: a cache configuration on the shared volume"


def test_the_component_map_of_the_live_release_is_root_owned_on_local_disk(deployed):
    dirroot = testkit.pillar().get("moodle", {}).get("dirroot", "/var/www/moodle")
    for node in _webs():
        release = host_exec(node, ["sh", "-c", f"basename $(dirname $(readlink {dirroot}))"])
        release_id = release.stdout.strip()
        if release_id == "moodle-releases":  # a git or top-less archive release
            release_id = host_exec(node, ["sh", "-c", f"basename $(readlink {dirroot})"]) \
                .stdout.strip()
        stat = host_exec(node, ["stat", "-c", "%U %G %a %s",
                                f"{COMPONENT_DIR}/{release_id}.php", COMPONENT_DIR,
                                COMPONENT_DIR.rsplit("/", 1)[0]])
        assert stat.returncode == 0, f"{node}: {stat.stderr}"
        (fowner, fgroup, fmode, fsize), (downer, _, dmode, _), (powner, _, pmode, _) = [
            line.split() for line in stat.stdout.splitlines()]
        assert (fowner, fgroup, fmode) == ("root", "root", "644") and int(fsize) > 0, node
        assert (downer, dmode) == ("root", "755") and (powner, pmode) == ("root", "755"), node
        config = host_exec(node, ["grep", "-F", f"{COMPONENT_DIR}/{release_id}.php",
                                  f"{dirroot}/config.php"])
        assert config.returncode == 0, f"{node}: config.php names another component map"


def test_a_stale_lock_on_the_shared_volume_does_not_stop_the_cache_writer(deployed):
    # Moodle's writer locks with the first lock instance of the configuration; the formula's
    # is node-local, before Moodle's default (a file lock in the shared cachedir, where two
    # nodes configured at once left a lock nobody held). A lock file left there changes
    # nothing: every node still applies its cache configuration.
    dataroot = testkit.pillar().get("moodle", {}).get("dataroot", "/var/moodledata")
    webs = _webs()
    for node in webs:
        text = host_exec(node, ["cat", CONFIG]).stdout
        assert "'moodle_ha_node'" in text, f"{node}: no node-local lock for the writer"
        assert text.index("'moodle_ha_node'") < text.index("'cachelock_file_default'"), node
    stale = f"{dataroot}/cache/filelocks/configwrite.lock"
    made = host_exec(webs[0], ["runuser", "-u", "www-data", "--", "sh", "-c",
                               f"mkdir -p {dataroot}/cache/filelocks && touch {stale}"])
    assert made.returncode == 0, made.stderr
    try:
        # A mapping changed by hand on every node: the state must write it back.
        for node in webs:
            host_exec(node, ["sed", "-i", f"s/'store' => '{LOCAL_STORE}',/'store' =>"
                                          " 'default_application',/", CONFIG])
        out = testkit.salt_json(",".join(webs), "state.apply", "moodle_ha.moodle.cache", "-L",
                                timeout=600)
        for node in webs:
            states = out.get(node)
            assert isinstance(states, dict), f"{node}: {states}"
            cache = next(s for k, s in states.items() if "moodle_ha-moodle-cache-configured" in k)
            assert cache["result"] is True and cache["changes"].get("mappings"), (node, cache)
    finally:
        host_exec(webs[0], ["rm", "-f", stale])

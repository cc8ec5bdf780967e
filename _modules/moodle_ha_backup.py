"""
Backups of a moodle_ha cluster, driven from Salt.

The work is done by the ``moodle_ha-backup`` script the ``moodle_ha.backup`` layer installs on
the backup node (it also runs from its systemd timer, without Salt); these functions call it
with ``--json`` and return its answer, raising ``CommandExecutionError`` with its message when
it fails. :py:func:`prepare_rejoin` runs on the other Galera nodes of a restore.
"""

import json
import os
import time

from salt.exceptions import CommandExecutionError

__virtualname__ = "moodle_ha_backup"
__func_alias__ = {"list_": "list"}

SCRIPT = "/usr/local/sbin/moodle_ha-backup"
CONFIG = "/etc/moodle_ha/backup.json"
DATADIR = "/var/lib/mysql"


def __virtual__():
    return __virtualname__


def parse_answer(stdout):
    """The script's JSON result: the last line of its stdout that parses as an object."""
    for line in reversed((stdout or "").strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def _call(args, script, config, timeout=None):
    if not os.path.exists(script):
        raise CommandExecutionError(
            f"{script} is missing: this host is not the backup node (apply moodle_ha.backup)"
        )
    res = __salt__["cmd.run_all"](
        [script, "--config", config, "--json"] + list(args),
        python_shell=False, timeout=timeout, output_loglevel="quiet", ignore_retcode=True,
    )
    answer = parse_answer(res["stdout"])
    if answer is None:
        raise CommandExecutionError(
            f"moodle_ha-backup gave no answer (exit {res['retcode']}): {res['stderr'][-2000:]}"
        )
    if not answer.get("result"):
        raise CommandExecutionError(answer.get("error") or "moodle_ha-backup failed")
    answer["log"] = [line for line in res["stderr"].splitlines() if line.strip()][-40:]
    return answer


def run(script=SCRIPT, config=CONFIG, timeout=None):
    """
    Take one backup now (database drained and desynced, then the dataroot), verify it and
    apply the retention. Returns its name, path, size, seconds and Galera position.

    CLI Example:

    .. code-block:: bash

        salt moodle3 moodle_ha_backup.run
    """
    return _call(["run"], script, config, timeout)


def list_(script=SCRIPT, config=CONFIG):
    """
    The backups on this node, newest first, and the last run's result.

    CLI Example:

    .. code-block:: bash

        salt moodle3 moodle_ha_backup.list
    """
    return _call(["list"], script, config, 60)


def verify(name, script=SCRIPT, config=CONFIG):
    """
    Re-read every archive of a backup and compare it with its manifest (sha256).

    CLI Example:

    .. code-block:: bash

        salt moodle3 moodle_ha_backup.verify 20261201T023000Z
    """
    return _call(["verify", name], script, config)


def restore_database(name, confirm=None, script=SCRIPT, config=CONFIG):
    """
    Replace this node's datadir with a backup and bootstrap a new Primary component from it.
    Refuses unless ``confirm`` equals ``name``, MariaDB is stopped here and Galera runs on no
    other node. The previous datadir is kept beside it. Used by ``moodle_ha.orch_restore``.

    CLI Example:

    .. code-block:: bash

        salt moodle3 moodle_ha_backup.restore_database 20261201T023000Z confirm=20261201T023000Z
    """
    return _call(["restore-db", name, "--confirm", str(confirm)], script, config)


def restore_dataroot(name, confirm=None, script=SCRIPT, config=CONFIG):
    """
    Extract a backup's dataroot archive over the mounted dataroot (refuses unless ``confirm``
    equals ``name``).

    CLI Example:

    .. code-block:: bash

        salt moodle3 moodle_ha_backup.restore_dataroot 20261201T023000Z confirm=20261201T023000Z
    """
    return _call(["restore-dataroot", name, "--confirm", str(confirm)], script, config)


# Galera's saved state in a datadir: position, primary-component view and the write-set
# cache. All three belong to the history the restore rewinds (the cluster keeps its UUID at
# a lower seqno): a joiner that keeps its cache fails the IST after its state transfer
# ("Unsupported CC action version", measured on Galera 26.4).
SAVED_STATE = ("grastate.dat", "gvwstate.dat", "galera.cache")


def prepare_rejoin(name, confirm=None, datadir=DATADIR):
    """
    On a Galera node other than the restored one: set its saved Galera state aside
    (``grastate.dat``, ``gvwstate.dat``, ``galera.cache``) so it joins the restored cluster by
    a full state transfer (its data is newer than the backup's, so Galera would refuse it
    otherwise). Refuses unless ``confirm`` equals ``name`` and MariaDB is stopped. The files are
    renamed, never deleted; the state transfer replaces the data.

    CLI Example:

    .. code-block:: bash

        salt moodle1 moodle_ha_backup.prepare_rejoin 20261201T023000Z confirm=20261201T023000Z
    """
    if confirm != name:
        raise CommandExecutionError(
            f"rejoin for the restore of {name} refused: confirm must be {name}"
        )
    if __salt__["galera.is_running"]():
        raise CommandExecutionError("MariaDB runs here: stop it before a restore")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    changes = {}
    for entry in SAVED_STATE:
        path = os.path.join(datadir, entry)
        if os.path.exists(path):
            kept = f"{path}.before-restore-{name}-{stamp}"
            os.rename(path, kept)
            changes[entry] = {"old": path, "new": kept}
    comment = (f"saved Galera state set aside ({', '.join(changes)}): joins by state transfer"
               if changes else "no saved Galera state: joins by state transfer")
    return {"result": True, "changes": changes, "comment": comment}

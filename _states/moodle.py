"""
Install or upgrade a Moodle site, exactly once, from the primary node.

.. code-block:: yaml

    moodle_ha-moodle-install-installed:
      moodle.installed:
        - name: /var/www/moodle
        - dbhost: 172.30.77.100
        - dbport: 3307
        - dbname: moodle
        - dbuser: moodle
        - dbpass: {{ db_password }}
        - adminpass: {{ admin_password }}
        - dataroot: /var/moodledata

Whether Moodle is installed is read from the database (the ``<prefix>config`` version row),
never from a marker file. Web requests must not reach Moodle while it installs or upgrades
(they poison the shared cache): the state puts the shared dataroot in CLI maintenance for the
duration (``climaintenance.html``, which Moodle checks before touching any cache, so every web
node answers 503) and purges the caches afterwards. Passwords never appear in changes or
comments.
"""

import dataclasses
import os
import shutil
import time

from salt.exceptions import CommandExecutionError

__virtualname__ = "moodle"

MAINTENANCE_PAGE = (
    "<!DOCTYPE html><html><head><title>Maintenance</title></head>"
    "<body><p>This site is being installed or upgraded. Please try again in a few minutes.</p>"
    "</body></html>\n"
)


def __virtual__():
    if "moodle.code_version" not in __salt__:
        return (False, "moodle: the moodle execution module is not available (no php CLI)")
    return __virtualname__


@dataclasses.dataclass(frozen=True)
class _Site:
    """The arguments of one moodle.installed call (the passwords stay out of its repr)."""

    dirroot: str
    dbhost: str
    dbport: int
    dbname: str
    dbuser: str
    dbpass: str = dataclasses.field(repr=False)
    adminpass: str = dataclasses.field(repr=False)
    prefix: str
    adminuser: str
    adminemail: str
    fullname: str
    shortname: str
    lang: str
    dataroot: str | None
    runas: str
    php: str | None
    timeout: int
    purge_caches: bool
    db_wait: int = 60

    @property
    def db(self):
        """Keyword arguments of moodle.db_state / moodle.db_version."""
        return {"dbhost": self.dbhost, "dbport": self.dbport, "dbname": self.dbname,
                "dbuser": self.dbuser, "dbpass": self.dbpass, "prefix": self.prefix,
                "php": self.php}

    @property
    def install(self):
        """Keyword arguments of moodle.install (after the dirroot)."""
        return {"adminpass": self.adminpass, "adminuser": self.adminuser,
                "adminemail": self.adminemail, "fullname": self.fullname,
                "shortname": self.shortname, "lang": self.lang, "runas": self.runas,
                "php": self.php, "timeout": self.timeout}

    @property
    def maintenance_flag(self):
        return os.path.join(self.dataroot, "climaintenance.html") if self.dataroot else None

    @property
    def secrets(self):
        return [self.dbpass, self.adminpass]


def _write_flag(flag, runas):
    """The formula's maintenance page at ``flag``, owned by the web user. Salt's file.write
    ends every argument with a newline: the page goes without its own."""
    __salt__["file.write"](flag, MAINTENANCE_PAGE.rstrip("\n"))
    __salt__["file.chown"](flag, runas, runas)


def _is_our_flag(flag):
    """Whether ``flag`` holds the formula's page (anyone else's flag is never removed)."""
    return __salt__["file.read"](flag).rstrip("\n") == MAINTENANCE_PAGE.rstrip("\n")


def _install_with_maintenance(site):
    """Install with the shared dataroot in CLI maintenance; keep maintenance on failure.

    A flag that an earlier failed install of this state left (its page, byte for byte) is
    this state's too, and goes once an install succeeds; any other flag (an administrator's
    maintenance) stays."""
    flag = site.maintenance_flag
    placed = False
    if flag and not __salt__["file.file_exists"](flag):
        _write_flag(flag, site.runas)
        placed = True
    elif flag:
        placed = _is_our_flag(flag)
    __salt__["moodle.install"](site.dirroot, **site.install)
    if placed:
        __salt__["file.remove"](flag)


def _scrubbed(ret, secrets):
    """Last line of defence: no secret in the comment, whatever a command printed."""
    for secret in secrets:
        if secret:
            ret["comment"] = ret["comment"].replace(str(secret), "********")
    return ret


def installed(
    name,
    dbhost,
    dbport,
    dbname,
    dbuser,
    dbpass,
    adminpass,
    prefix="mdl_",
    adminuser="admin",
    adminemail="",
    fullname="Moodle",
    shortname="moodle",
    lang="en",
    dataroot=None,
    runas="www-data",
    php=None,
    timeout=1800,
    purge_caches=True,
    db_wait=60,
):
    """
    Make sure the Moodle database matches the code in ``name`` (the dirroot).

    - No Moodle tables: run the installer once (``install_database.php``), then purge caches.
    - Installed and the code is newer: upgrade (``upgrade.php`` with maintenance around it,
      or inside a maintenance flag already in place, which then stays for its holder:
      :py:func:`upgrade_window_opened`, an administrator), then purge caches.
    - Installed at the code's version: nothing to do.
    - Code older than the database, or Moodle tables without a version row (a failed install):
      fail and change nothing.

    name
        Moodle's dirroot (holds config.php and admin/cli).
    dbhost, dbport, dbname, dbuser, dbpass, prefix
        The database as config.php uses it (the single-writer endpoint).
    adminpass, adminuser, adminemail, fullname, shortname, lang
        Used by a first install only.
    dataroot
        Shared dataroot: a CLI maintenance flag is placed there during install.
    runas
        The web server's user; Moodle's CLI scripts run as it.
    db_wait
        Seconds to wait for the database endpoint to take connections (a load balancer that
        has just started has no writer until its first checks pass); a refused login fails
        at once.
    """
    site = _Site(dirroot=name, dbhost=dbhost, dbport=dbport, dbname=dbname, dbuser=dbuser,
                 dbpass=dbpass, adminpass=adminpass, prefix=prefix, adminuser=adminuser,
                 adminemail=adminemail, fullname=fullname, shortname=shortname, lang=lang,
                 dataroot=dataroot, runas=runas, php=php, timeout=timeout,
                 purge_caches=purge_caches, db_wait=int(db_wait))
    return _scrubbed(_installed(site), site.secrets)


def _installed(site):
    name, prefix = site.dirroot, site.prefix
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    try:
        code = __salt__["moodle.code_info"](name)
        state = __salt__["moodle.db_state"](**site.db, wait=site.db_wait)
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret

    code_version = code["version"]
    db_version = state["version"]
    release = code.get("release") or code_version

    if db_version is None and state["tables"]:
        ret["comment"] = (
            f"The database has {state['tables']} tables with prefix {prefix!r} but no Moodle"
            " version row (a failed or foreign install?): refusing to install over it."
            " Drop the tables (or the database) to install from scratch."
        )
        return ret

    if db_version is None:
        if __opts__["test"]:
            ret["result"] = None
            ret["comment"] = f"Moodle {release} ({code_version}) would be installed"
            ret["changes"] = {"version": {"old": None, "new": code_version}}
            return ret
        try:
            _install_with_maintenance(site)
            after = __salt__["moodle.db_version"](**site.db)
        except CommandExecutionError as exc:
            ret["comment"] = (
                f"Installing Moodle {release} failed: {exc}"
                + (
                    f" ({site.maintenance_flag} is left in place: the site stays in"
                    " maintenance)"
                    if site.maintenance_flag
                    else ""
                )
            )
            return ret
        if after is None or __salt__["moodle.compare_versions"](code_version, after) != 0:
            ret["comment"] = (
                f"The installer finished but the database reports version {after!r},"
                f" expected {code_version}"
            )
            return ret
        ret["changes"] = {"version": {"old": None, "new": after}}
        comment = f"Installed Moodle {release} ({after})"
        return _purged(ret, site, comment)

    try:
        order = __salt__["moodle.compare_versions"](code_version, db_version)
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret
    if order == 0:
        ret["result"] = True
        ret["comment"] = f"Moodle {release} ({db_version}) is installed; nothing to do"
        return ret
    if order < 0:
        ret["comment"] = (
            f"The code in {name} ({code_version}) is older than the database ({db_version}):"
            " Moodle cannot downgrade; deploy the newer code again"
        )
        return ret

    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = f"Moodle would be upgraded from {db_version} to {release} ({code_version})"
        ret["changes"] = {"version": {"old": db_version, "new": code_version}}
        return ret
    # A flag already in the dataroot (the orchestration's upgrade window, an administrator's
    # maintenance) is its holder's: upgrade.php runs inside it and leaves it in place.
    flag = site.maintenance_flag
    held = bool(flag) and __salt__["file.file_exists"](flag)
    try:
        __salt__["moodle.upgrade"](name, runas=site.runas, php=site.php, timeout=site.timeout,
                                   maintenance_window=not held)
        after = __salt__["moodle.db_version"](**site.db)
    except CommandExecutionError as exc:
        ret["comment"] = f"Upgrading Moodle from {db_version} to {code_version} failed: {exc}"
        return ret
    ret["changes"] = {"version": {"old": db_version, "new": after}}
    if after is None or __salt__["moodle.compare_versions"](code_version, after) > 0:
        ret["comment"] = f"upgrade.php finished but the database is at {after}, not {code_version}"
        return ret
    comment = f"Upgraded Moodle from {db_version} to {release} ({after})"
    return _purged(ret, site, comment)


def _purged(ret, site, comment):
    if not site.purge_caches:
        ret["result"] = True
        ret["comment"] = comment
        return ret
    try:
        __salt__["moodle.purge_caches"](site.dirroot, runas=site.runas, php=site.php)
    except CommandExecutionError as exc:
        ret["comment"] = f"{comment}, but purging the caches failed: {exc}"
        return ret
    ret["result"] = True
    ret["comment"] = f"{comment}; caches purged"
    return ret


def _db_args(dbhost, dbport, dbname, dbuser, dbpass, prefix, php):
    return {"dbhost": dbhost, "dbport": dbport, "dbname": dbname, "dbuser": dbuser,
            "dbpass": dbpass, "prefix": prefix, "php": php}


def upgrade_window_opened(name, release, dbhost, dbport, dbname, dbuser, dbpass, dataroot,
                          prefix="mdl_", runas="www-data", php=None, db_wait=60):
    """
    Put the site in CLI maintenance before an upgrade goes live, so that no web node ever
    serves old code against an upgraded database, nor new code against an old one.

    The orchestration stages the new release on every web node first (``release``: its
    Moodle top directory, not live yet), then applies this state on the primary node, then
    switches every node and upgrades once, then ends the window with
    :py:func:`upgrade_window_closed`. The flag (``<dataroot>/climaintenance.html``, the
    formula's page) is written only when ``release`` is newer than the database; a first
    install (the installer keeps its own maintenance), a release at the database's version
    and a site an administrator already holds in maintenance change nothing.

    name
        Moodle's dirroot (the live release).
    release
        The staged release's Moodle directory.
    dbhost, dbport, dbname, dbuser, dbpass, prefix
        The database as config.php uses it; its version decides.
    """
    ret = _upgrade_window_opened(name, release, dbhost, dbport, dbname, dbuser, dbpass,
                                 dataroot, prefix, runas, php, db_wait)
    return _scrubbed(ret, [dbpass])


def _upgrade_window_opened(name, release, dbhost, dbport, dbname, dbuser, dbpass, dataroot,
                          prefix="mdl_", runas="www-data", php=None, db_wait=60):
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    flag = os.path.join(dataroot, "climaintenance.html")
    db = _db_args(dbhost, dbport, dbname, dbuser, dbpass, prefix, php)
    try:
        code = __salt__["moodle.code_info"](release)
        state = __salt__["moodle.db_state"](**db, wait=int(db_wait))
        db_version = state["version"]
        order = (None if db_version is None else
                 __salt__["moodle.compare_versions"](code["version"], db_version))
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret
    if order is None or order <= 0:
        ret["result"] = True
        ret["comment"] = ("No upgrade pending: " + (
            "Moodle is not installed yet (the installer holds its own maintenance)"
            if order is None else
            f"the database is at {db_version}, the staged release at {code['version']}"))
        return ret
    if __salt__["file.file_exists"](flag):
        ours = _is_our_flag(flag)
        ret["result"] = True
        ret["comment"] = (f"The upgrade window is open ({flag})" if ours else
                          f"The site is already in maintenance ({flag}, not the formula's"
                          " page): the upgrade runs inside it and the flag stays")
        return ret
    change = {"maintenance": {"old": False, "new": True}, "flag": flag,
              "upgrade": {"old": db_version, "new": code["version"]}}
    if __opts__["test"]:
        ret.update(result=None, changes=change,
                   comment="The site would go into maintenance for the upgrade to"
                           f" {code['version']}")
        return ret
    _write_flag(flag, runas)
    ret.update(result=True, changes=change,
               comment=f"The site is in maintenance for the upgrade from {db_version} to"
                       f" {code['version']} ({flag})")
    return ret


def upgrade_window_closed(name, dbhost, dbport, dbname, dbuser, dbpass, dataroot,
                          prefix="mdl_", php=None, db_wait=60):
    """
    End the upgrade window of :py:func:`upgrade_window_opened`: remove the formula's flag
    once the database is at the live code's version (every web node has switched by then:
    the orchestration applies this state last). An administrator's flag stays; a database
    that does not match the code keeps the site in maintenance and fails.

    name
        Moodle's dirroot (the live release).
    """
    ret = _upgrade_window_closed(name, dbhost, dbport, dbname, dbuser, dbpass, dataroot,
                                 prefix, php, db_wait)
    return _scrubbed(ret, [dbpass])


def _upgrade_window_closed(name, dbhost, dbport, dbname, dbuser, dbpass, dataroot,
                          prefix="mdl_", php=None, db_wait=60):
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    flag = os.path.join(dataroot, "climaintenance.html")
    if not __salt__["file.file_exists"](flag):
        ret["result"] = True
        ret["comment"] = "The site is not in maintenance"
        return ret
    if not _is_our_flag(flag):
        ret["result"] = True
        ret["comment"] = f"{flag} is not the formula's: the administrator's maintenance stays"
        return ret
    db = _db_args(dbhost, dbport, dbname, dbuser, dbpass, prefix, php)
    try:
        code = __salt__["moodle.code_info"](name)
        db_version = __salt__["moodle.db_state"](**db, wait=int(db_wait))["version"]
        same = (db_version is not None and
                __salt__["moodle.compare_versions"](code["version"], db_version) == 0)
    except CommandExecutionError as exc:
        ret["comment"] = f"{exc} ({flag} stays: the site stays in maintenance)"
        return ret
    if not same:
        ret["comment"] = (f"The database is at {db_version}, the live code at {code['version']}:"
                          f" {flag} stays and the site stays in maintenance")
        return ret
    change = {"maintenance": {"old": True, "new": False}, "flag": flag}
    if __opts__["test"]:
        ret.update(result=None, changes=change, comment="The upgrade window would end")
        return ret
    __salt__["file.remove"](flag)
    ret.update(result=True, changes=change,
               comment=f"The upgrade window ended at {db_version}: {flag} removed")
    return ret


def releases_pruned(name, dirroot, keep=2, component_cache_dir=None):
    """
    Remove old release directories under ``name`` (the releases directory): the current one
    (where ``dirroot`` points) and the newest others stay, ``keep`` in all. Only directories
    the formula made (with its release marker) are counted or removed; when ``dirroot`` is no
    link into ``name``, nothing is removed. With ``component_cache_dir``, a removed release's
    component map there (``<release>.php``) goes with it.

    .. code-block:: yaml

        moodle_ha-moodle-code-releases-pruned:
          moodle.releases_pruned:
            - name: /var/www/moodle-releases
            - dirroot: /var/www/moodle
            - keep: 2
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    current = __salt__["moodle.current_release"](name, dirroot)
    if current is None:
        ret["result"] = True
        ret["comment"] = f"{dirroot} is no link into {name}: no release removed"
        return ret
    found = __salt__["moodle.releases"](name)
    try:
        kept, removed = __salt__["moodle.release_plan"](found, current, int(keep))
    except ValueError as exc:
        ret["comment"] = str(exc)
        return ret
    if not removed:
        ret["result"] = True
        ret["comment"] = f"{len(kept)} release(s) kept ({', '.join(kept)}); none to remove"
        return ret
    ret["changes"] = {"removed": removed, "kept": kept}
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = f"{len(removed)} old release(s) would be removed"
        return ret
    failed = []
    for old in removed:
        path = os.path.join(name, old)
        try:
            shutil.rmtree(path)
        except OSError as exc:
            failed.append(f"{path}: {exc.strerror or exc}")
            continue
        if component_cache_dir:
            component_map = os.path.join(component_cache_dir, f"{old}.php")
            try:
                os.remove(component_map)
            except FileNotFoundError:
                pass
            except OSError as exc:
                failed.append(f"{component_map}: {exc.strerror or exc}")
    if failed:
        ret["comment"] = "Removing old releases failed: " + "; ".join(failed)
        return ret
    ret["result"] = True
    ret["comment"] = f"Removed {len(removed)} old release(s); kept {', '.join(kept)}"
    return ret


# Moodle's writer holds its configuration lock for the milliseconds of one file write; a lock
# file this old was left by a process that died holding it (Moodle's own file locks call 60 s
# the shortest lifetime worth trusting).
STALE_LOCK_SECONDS = 60


def _stale_lock(path):
    """Age in seconds of ``path`` when it is older than :data:`STALE_LOCK_SECONDS`, else None
    (missing, fresh, or unreadable)."""
    try:
        age = time.time() - os.stat(path).st_mtime
    except OSError:
        return None
    return age if age > STALE_LOCK_SECONDS else None


def cache_configured(name, stores=None, local_store=None, definitions=None, modes=None,
                     runas="www-data", php=None, lock_dir=None, shared_lock=None):
    """
    Moodle's cache configuration on this node as given (see ``moodle.cache_config``): the
    store instances exist with this configuration, every cache definition is mapped as asked
    (``local_store`` for what Moodle marks safe for a node-local store), and the modes named
    in ``modes`` have these stores as their default (the other modes keep Moodle's). Meant for
    a node-local configuration file (``$CFG->altcacheconfigpath``): each node runs it, and
    with ``lock_dir`` (a local directory) Moodle's writer locks that file there instead of in
    the shared cachedir. ``shared_lock`` is the lock file Moodle's default configuration takes
    there (``<cachedir>/filelocks/configwrite.lock``), which a node's first configuration
    still uses: one older than a minute was left by a dead process, and every node's first
    configuration would wait for it and fail; it is removed first (a change). Store passwords
    never appear in changes or comments.

    .. code-block:: yaml

        moodle-caches:
          moodle.cache_configured:
            - name: /var/www/moodle
            - local_store: moodle_ha_local
            - stores:
                moodle_ha_local:
                  plugin: file
                  configuration: {path: /var/cache/moodle_ha/muc-local, autocreate: true}
                moodle_ha_redis:
                  plugin: redis
                  configuration: {server: 172.30.77.100:6379, prefix: mdl_, password: ...}
            - modes:
                application: [moodle_ha_redis]
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    secrets = [((store or {}).get("configuration") or {}).get("password")
               for store in (stores or {}).values()]
    stale = {}
    age = _stale_lock(shared_lock) if shared_lock else None
    if age is not None:
        stale = {"stale_lock": {"removed": shared_lock, "age_seconds": int(age)}}
        if not __opts__["test"]:
            try:
                os.remove(shared_lock)
            except FileNotFoundError:
                stale = {}
            except OSError as exc:
                ret["comment"] = (f"Cannot remove the stale lock {shared_lock}"
                                  f" ({int(age)} s old): {exc.strerror or exc}")
                return ret
    try:
        changes = __salt__["moodle.cache_config"](
            name, stores=stores, local_store=local_store, definitions=definitions, modes=modes,
            test=__opts__["test"], runas=runas, php=php, lock_dir=lock_dir)
    except CommandExecutionError as exc:
        ret["changes"] = stale
        ret["comment"] = str(exc)
        return _scrubbed(ret, secrets)
    changes = {k: v for k, v in {**stale, **changes}.items() if v}
    if not changes:
        ret["result"] = True
        ret["comment"] = "Moodle's cache stores and mappings are as configured"
        return ret
    ret["changes"] = changes
    test = __opts__["test"]
    what = (f"{len(changes.get('stores', {}))} store(s),"
            f" {len(changes.get('mappings', {}))} definition mapping(s),"
            f" {len(changes.get('modes', {}))} mode mapping(s)"
            + (", the writer's node-local lock" if changes.get("locks") else "")
            + (" would be set" if test else " set"))
    if stale:
        what += (f"; the stale lock {shared_lock} ({stale['stale_lock']['age_seconds']} s old)"
                 + (" would be removed" if test else " removed"))
    ret["result"] = None if test else True
    ret["comment"] = what
    return ret

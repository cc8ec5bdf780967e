"""
Pillar validation and topology expansion for the moodle_ha formula.

``map.jinja`` hands the merged map to :py:func:`post_map` before any state is
rendered: it expands the release placeholders, :py:func:`validate` checks it, so a
bad pillar fails the whole run with one message naming the key, before any host
changes, and :py:func:`topology` derives the per-role node lists every template
reads (nothing hard-codes host names or IPs).
"""

import difflib
import ipaddress
import re

__virtualname__ = "moodle_ha"

# Required secrets (none has a default).
SECRETS = (
    "moodle_db_password",
    "sst_password",
    "clustercheck_password",
    "haproxy_stats_password",
    "moodle_admin_password",
)
# Required with lb:keepalived:vrrp_version 2 only (VRRP version 3 has no authentication);
# validated whenever it is given.
VRRP2_SECRET = "keepalived_auth_pass"
# Required while a host has role redis (_redis_errors).
REDIS_SECRET = "redis_password"
# Optional: backup_encryption_key's presence switches backup encryption on; tls_key (a PEM
# private key: line breaks allowed) is required while lb:tls:enabled is true (_tls_errors),
# galera_tls_key while galera:tls:enabled is true (_galera_tls_errors).
OPTIONAL_SECRETS = ("backup_encryption_key", "tls_key", "galera_tls_key")
# Accepted from older pillars and ignored: root keeps unix_socket authentication and nothing
# connects as root over TCP.
RETIRED_SECRETS = ("db_root_password",)

# keepalived silently truncates longer PASS authentication strings.
KEEPALIVED_AUTH_MAX = 8
# keepalived's config parser splits on whitespace, takes # and ! as comments, { } as block
# delimiters even inside a word and $ for its parameter substitution, and does not reliably
# honour quotes (backslashes neither): printable ASCII without these only.
_KEEPALIVED_BAD = frozenset(' #!"\'\\{}$')

# Salt minion ids of this formula's hosts are lower case: the node lists sort by name and
# keepalived priorities follow that order.
_HOSTNAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# haproxy.cfg carries the stats user unquoted.
_STATS_USER_RE = re.compile(r"^[A-Za-z0-9._-]+$")

# Mappings whose keys are the user's (host names, option and ini names, state ids), besides
# every mapping that is empty in the defaults.
_OPEN_MAPPINGS = ("topology:hosts", "tofs:source_files", "galera:provider_options",
                  "garbd:options", "gluster:options", "web:php")
# Known keys the defaults do not show: a host entry's, the git source's ref and the
# documented source version, the secrets (a closed set whatever the defaults hold).
_HOST_KEYS = ("ip", "roles", "decommission")
_EXTRA_KEYS = {"moodle:source": ("ref", "version")}
# Sections this module reads into (checked even without the defaults' key tree).
_MAPPINGS = ("topology", "topology:hosts", "secrets", "galera", "galera:clustercheck",
             "galera:tls",
             "gluster", "lb", "lb:haproxy", "lb:tls", "lb:keepalived", "web", "moodle",
             "moodle:source",
             "metrics", "metrics:node_exporter", "metrics:mysqld_exporter", "metrics:haproxy",
             "garbd", "backup", "restore")


def __virtual__():
    return __virtualname__


def _get(data, path, default=None):
    node = data
    for part in path.split(":"):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def _ip(value):
    try:
        return ipaddress.IPv4Address(str(value))
    except (ipaddress.AddressValueError, ValueError):
        return None


def _kind(value):
    """How YAML wrote `value`, for messages that must not echo it (it may be a secret)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _walk_mappings(tree, path=""):
    """Paths ('a:b') of the mappings in `tree`, not below the open mappings."""
    for key, value in tree.items():
        full = f"{path}{key}"
        if isinstance(value, dict):
            yield full
            if full not in _OPEN_MAPPINGS:
                yield from _walk_mappings(value, full + ":")


def _shape_errors(data, known, errors):
    """Every section that is a mapping in the defaults (and each host entry) is one here.

    Checked first and alone: the other checks read into these sections."""
    paths = set(_MAPPINGS)
    if isinstance(known, dict):
        paths.update(_walk_mappings(known))
    for path in sorted(paths, key=lambda p: (p.count(":"), p)):
        parent, _, key = path.rpartition(":")
        node = _get(data, parent) if parent else data
        if not isinstance(node, dict) or key not in node:
            continue  # a missing section, or one under a section already reported
        if not isinstance(node[key], dict):
            hint = (" (an empty section replaces all its defaults: remove it or give it keys)"
                    if node[key] is None else "")
            errors.append(f"moodle_ha:{path}: must be a mapping, not {_kind(node[key])}{hint}")
    hosts = _get(data, "topology:hosts")
    if isinstance(hosts, dict):
        for name in sorted(hosts, key=str):
            if not isinstance(hosts[name], dict):
                errors.append(f"moodle_ha:topology:hosts:{name}: must be a mapping"
                              f" ({{ip: ..., roles: [...]}}), not {_kind(hosts[name])}")


def _unknown_key(path, key, known, errors):
    names = sorted(str(k) for k in known)
    close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
    if close:
        errors.append(f"moodle_ha:{path}{key}: unknown key (did you mean moodle_ha:{path}"
                      f"{close[0]}?)")
    else:
        errors.append(f"moodle_ha:{path}{key}: unknown key (known here: {', '.join(names)})")


def _unknown_key_errors(data, known, errors, path=""):
    """Keys of `data` that the defaults' key tree `known` does not have (typos)."""
    for key in sorted(data, key=str):
        full = f"{path}{key}"
        if full == "secrets":
            names = (SECRETS + (VRRP2_SECRET, REDIS_SECRET) + OPTIONAL_SECRETS
                     + RETIRED_SECRETS)
            for name in sorted(data[key] if isinstance(data[key], dict) else (), key=str):
                if name not in names:
                    _unknown_key("secrets:", name, names, errors)
            continue
        if key not in known:
            _unknown_key(path, key, known, errors)
            continue
        sub, default = data[key], known[key]
        if full == "topology:hosts":
            for name in sorted(sub if isinstance(sub, dict) else (), key=str):
                entry = sub[name] if isinstance(sub[name], dict) else {}
                for entry_key in sorted(entry, key=str):
                    if entry_key not in _HOST_KEYS:
                        _unknown_key(f"{full}:{name}:", entry_key, _HOST_KEYS, errors)
        elif (isinstance(default, dict) and default and isinstance(sub, dict)
              and full not in _OPEN_MAPPINGS):
            extra = {k: None for k in _EXTRA_KEYS.get(full, ())}
            _unknown_key_errors(sub, {**extra, **default}, errors, full + ":")


def _is_port(value):
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536


def _port_keys(tree, path=""):
    """Paths of the `port` and `*_port` keys in `tree`, not below the open mappings."""
    for key, value in tree.items():
        full = f"{path}{key}"
        if isinstance(value, dict):
            if full not in _OPEN_MAPPINGS:
                yield from _port_keys(value, full + ":")
        elif key == "port" or str(key).endswith("_port"):
            yield full


def _port_errors(data, known, errors):
    """Every port of the map an integer 1..65535 (YAML reads yes/no as booleans, '3307' is a
    string); a disabled metrics layer's ports are not read."""
    for key in sorted(_port_keys(known if known is not None else data)):
        if key.startswith("metrics:") and _get(data, "metrics:enabled") is not True:
            continue
        value = _get(data, key)
        if not _is_port(value):
            errors.append(f"moodle_ha:{key}: {value!r} is not a TCP port (an integer 1..65535,"
                          " unquoted)")


def _char(ch):
    return f"{ch!r} (U+{ord(ch):04X})"


def _controls(text):
    """Distinct control characters (U+0000..U+001F, U+007F) of `text`, in order."""
    return list(dict.fromkeys(ch for ch in text if ord(ch) < 0x20 or ord(ch) == 0x7F))


def _secret_text_errors(key, value, errors, line_breaks=True):
    """A secret's control characters; a trailing newline (a YAML `|` block) said as such."""
    problems = []
    body = value
    if value.endswith("\n") and line_breaks:
        problems.append("ends with a newline (a YAML block scalar? use |-)")
        body = value.rstrip("\r\n")
    bad = [ch for ch in _controls(body) if line_breaks or ch not in "\r\n"]
    if bad:
        problems.append("contains control character(s) "
                        + ", ".join(f"U+{ord(ch):04X}" for ch in bad)
                        + " (not allowed in a secret)")
    if problems:
        errors.append(f"{key}: " + "; ".join(problems))


def _subnet_errors(data, errors):
    subnet = _get(data, "topology:subnet")
    try:
        net = ipaddress.IPv4Network(str(subnet), strict=True)
    except (ipaddress.AddressValueError, ipaddress.NetmaskValueError, ValueError):
        errors.append(
            f"moodle_ha:topology:subnet: {subnet!r} is not an IPv4 network in CIDR form"
            " (e.g. 172.30.77.0/24)"
        )
        return None
    return net


def _host_errors(data, net, errors):
    hosts = _get(data, "topology:hosts") or {}
    known = set(_get(data, "known_roles") or [])
    if not isinstance(hosts, dict) or not hosts:
        errors.append("moodle_ha:topology:hosts: no hosts defined")
        return {}
    seen = {}
    for name in sorted(hosts, key=str):
        spec = hosts[name]
        key = f"moodle_ha:topology:hosts:{name}"
        if isinstance(name, str) and _HOSTNAME_RE.match(name.lower()) and name != name.lower():
            errors.append(f"{key}: {name!r} is not lower case (Salt minion ids of this"
                          " formula's hosts must be lower case)")
        elif not isinstance(name, str) or not _HOSTNAME_RE.match(name):
            errors.append(f"{key}: {name!r} is not a valid host name")
        ip = _ip(spec.get("ip"))
        if ip is None:
            errors.append(f"{key}:ip: {spec.get('ip')!r} is not a valid IPv4 address")
        else:
            if str(ip) in seen:
                errors.append(f"{key}:ip: {ip} is already used by host {seen[str(ip)]}")
            seen[str(ip)] = name
            if net is not None and ip not in net:
                errors.append(f"{key}:ip: {ip} is outside moodle_ha:topology:subnet {net}")
        roles = spec.get("roles") or []
        if not isinstance(roles, list) or not roles:
            errors.append(f"{key}:roles: must be a non-empty list of {sorted(known)}")
            continue
        for role in roles:
            if not isinstance(role, str):
                errors.append(f"{key}:roles: {_kind(role)} is not a role name (known:"
                              f" {', '.join(sorted(known))})")
            elif role not in known:
                errors.append(
                    f"{key}:roles: unknown role {role!r} (known: {', '.join(sorted(known))})"
                )
    return seen


def _vip_errors(data, net, ips, errors):
    vip_raw = _get(data, "topology:vip")
    vip = _ip(vip_raw)
    if vip is None:
        errors.append(f"moodle_ha:topology:vip: {vip_raw!r} is not a valid IPv4 address")
        return
    if net is not None and vip not in net:
        errors.append(f"moodle_ha:topology:vip: {vip} is outside moodle_ha:topology:subnet {net}")
    if net is not None and vip in (net.network_address, net.broadcast_address):
        errors.append(f"moodle_ha:topology:vip: {vip} is the network or broadcast address")
    if str(vip) in ips:
        errors.append(f"moodle_ha:topology:vip: {vip} is the IP of host {ips[str(vip)]}")


def _vrrp_errors(data, errors):
    """lb:keepalived:vrrp_version and the advert interval it can carry (version 3 counts
    centiseconds in 12 bits, version 2 whole seconds in 8)."""
    key = "moodle_ha:lb:keepalived"
    version = _get(data, "lb:keepalived:vrrp_version")
    if version not in (2, 3) or isinstance(version, bool):
        errors.append(f"{key}:vrrp_version: {version!r} is not 2 or 3")
        return
    advert = _get(data, "lb:keepalived:advert_int")
    number = isinstance(advert, (int, float)) and not isinstance(advert, bool)
    if version == 3:
        centis = advert * 100 if number else 0
        if not number or abs(centis - round(centis)) > 1e-6 or not 1 <= round(centis) <= 4095:
            errors.append(f"{key}:advert_int: {advert!r} is not a multiple of 0.01 s from 0.01"
                          " to 40.95 (VRRP version 3 counts centiseconds)")
    elif not number or advert != int(advert) or not 1 <= advert <= 255:
        errors.append(f"{key}:advert_int: {advert!r} is not a whole number of seconds from 1"
                      " to 255 (VRRP version 2; version 3 takes fractions)")


def _conditional_secret(data, name, required, why, errors):
    """A secret needed only under a condition: missing while ``required`` (``why`` says
    when), else checked as every secret. Its text when it is a usable string, else None."""
    value = _get(data, f"secrets:{name}")
    key = f"moodle_ha:secrets:{name}"
    if value is None or value == "":
        if required:
            errors.append(f"{key}: missing (required {why}; no default password is shipped)")
        return None
    if not isinstance(value, str):
        errors.append(f"{key}: {_kind(value)} in YAML, not a string (quote it: YAML reads"
                      " e.g. 0123 as 83 and yes as true)")
        return None
    _secret_text_errors(key, value, errors, line_breaks=True)
    return value


def _secret_errors(data, errors):
    """Secrets are strings without control characters; per format, what it cannot carry.

    Not a string: YAML would have changed it already (0123 -> 83, yes -> true), so it is
    refused rather than passed through str(). The messages name the character, never the
    secret."""
    for name in SECRETS + OPTIONAL_SECRETS:
        key = f"moodle_ha:secrets:{name}"
        value = _get(data, f"secrets:{name}")
        if name in OPTIONAL_SECRETS and value is None:
            continue
        if value is None or value == "":
            errors.append(f"{key}: missing (no default password is shipped)")
        elif not isinstance(value, str):
            errors.append(f"{key}: {_kind(value)} in YAML, not a string (quote it: YAML reads"
                          " e.g. 0123 as 83 and yes as true)")
        else:
            # The backup key's line breaks have their own message (_backup_errors); a PEM key
            # is lines (a lone carriage return: _tls_errors).
            _secret_text_errors(key, value, errors, line_breaks=name not in OPTIONAL_SECRETS)
    key = f"moodle_ha:secrets:{VRRP2_SECRET}"
    auth = _conditional_secret(data, VRRP2_SECRET,
                               _get(data, "lb:keepalived:vrrp_version") == 2,
                               "with lb:keepalived:vrrp_version 2", errors)
    if auth is not None:
        if len(auth) > KEEPALIVED_AUTH_MAX:
            errors.append(f"{key}: longer than {KEEPALIVED_AUTH_MAX} characters (keepalived"
                          " would truncate it)")
        bad = list(dict.fromkeys(ch for ch in auth if ch in _KEEPALIVED_BAD or ord(ch) > 0x7F))
        if bad:
            errors.append(f"{key}: contains {', '.join(_char(ch) for ch in bad)}, which"
                          " keepalived's config parser cannot carry (printable ASCII without"
                          " space, # ! \" ' \\ { } $)")
    sst = _get(data, "secrets:sst_password")
    if isinstance(sst, str) and sst:
        # MariaDB's SST donor script reads the password from the server with `read` (no -r):
        # it drops backslashes and the spaces around the value, and the donor's mariabackup
        # then logs in with another password (seen in the lab: every SST refused).
        key = "moodle_ha:secrets:sst_password"
        if "\\" in sst:
            errors.append(f"{key}: contains {_char(chr(0x5C))}, which MariaDB's SST donor script"
                          " drops (it reads the password with read, without -r)")
        if sst != sst.strip(" \t"):
            errors.append(f"{key}: begins or ends with a space or tab, which MariaDB's SST donor"
                          " script strips")
    user = _get(data, "lb:haproxy:stats_user")
    if not isinstance(user, str) or not _STATS_USER_RE.match(user):
        errors.append(f"moodle_ha:lb:haproxy:stats_user: {user!r} is not a user name of"
                      " letters, digits, '.', '_' and '-' (haproxy.cfg carries it unquoted)")


def _voter_errors(galera, garbd, errors):
    """Galera nodes and garbd arbitrators: at least 3, an odd number, arbitrators a minority."""
    both = sorted(set(galera) & set(garbd))
    for name in both:
        errors.append(
            f"moodle_ha:topology:hosts:{name}:roles: galera and garbd on one host (an arbitrator"
            " is a vote of its own and listens on the Galera replication port: give it a host"
            " without galera)"
        )
    if both:
        return  # the counts below would count those hosts twice
    counts = (f"moodle_ha:topology:hosts: {len(galera)} galera node(s) and {len(garbd)}"
              " arbitrator(s)")
    if garbd and len(galera) < 2:
        errors.append(f"{counts}: an arbitrator holds no data and needs at least 2 galera nodes"
                      " (one data node and arbitrators are no cluster)")
    elif garbd and len(garbd) >= len(galera):
        errors.append(f"{counts}: arbitrators must be fewer than galera nodes (holding no data, a"
                      " majority of them would keep a Primary component while the data nodes"
                      " stop)")
    elif galera and (len(galera) < 3 and not garbd or (len(galera) + len(garbd)) % 2 == 0):
        errors.append(f"{counts}: Galera needs an odd number of at least 3 voters"
                      " (add a node or a garbd host)")


def _decommission_errors(data, errors):
    """Hosts marked ``decommission: true`` leave the cluster in the next run (moodle_ha.orch):
    never an lb host (the VIP's pair), a brick only when gluster:remove_bricks names it."""
    hosts = _get(data, "topology:hosts") or {}
    for name in sorted(hosts, key=str):
        flag = (hosts[name] or {}).get("decommission", False)
        if not isinstance(flag, bool):
            errors.append(f"moodle_ha:topology:hosts:{name}:decommission: {flag!r} is not true"
                          " or false")
    leaving = _role_hosts(data, leaving=True)
    for name in leaving.get("lb", []):
        errors.append(f"moodle_ha:topology:hosts:{name}:decommission: {name} is a load"
                      " balancer; the formula decommissions galera, garbd, gluster and web"
                      " hosts only (keepalived's pair and the VIP stay)")
    confirmed = _get(data, "gluster:remove_bricks")
    if not isinstance(confirmed, list) or not all(isinstance(n, str) for n in confirmed):
        errors.append(f"moodle_ha:gluster:remove_bricks: {confirmed!r} is not a list of host"
                      " names")
        return
    volume = _get(data, "gluster:volume")
    for name in leaving.get("gluster", []):
        if name not in confirmed:
            errors.append(
                f"moodle_ha:gluster:remove_bricks: {name} is marked decommission and holds a"
                f" brick of volume {volume}; its brick is removed only when listed here (set"
                f" moodle_ha:gluster:remove_bricks: [{name}] to confirm; nothing changes until"
                " then)")
    for name in confirmed:
        if name not in leaving.get("gluster", []):
            errors.append(f"moodle_ha:gluster:remove_bricks: {name!r} is not a gluster host"
                          " marked decommission (remove it from the list)")
    if leaving.get("gluster") and _get(data, "gluster:replica") is not None:
        errors.append(
            "moodle_ha:gluster:replica: removing bricks from a volume with a fixed replica"
            " count (distributed-replicated: data must migrate with remove-brick start/commit)"
            " is not done by the formula; with replica null the volume keeps one replica per"
            " gluster host and loses one replica per removed brick")


def _layer_errors(data, errors):
    nodes = _role_hosts(data)
    galera = nodes["galera"]
    before = len(errors)
    _voter_errors(galera, nodes["garbd"], errors)
    leaving = _role_hosts(data, leaving=True)
    gone = sorted(set(leaving.get("galera", []) + leaving.get("garbd", [])))
    if gone and len(errors) > before:
        errors[before:] = [f"{e} (counting without {', '.join(gone)}, marked decommission)"
                           for e in errors[before:]]
    boot = _get(data, "galera:bootstrap_node")
    if boot is not None and boot not in galera:
        errors.append(f"moodle_ha:galera:bootstrap_node: {boot!r} is not a galera host")

    gluster = nodes["gluster"]
    replica = _get(data, "gluster:replica")
    if gluster:
        if replica is None:
            replica = len(gluster)
        if isinstance(replica, bool) or not isinstance(replica, int) or replica < 1:
            errors.append(f"moodle_ha:gluster:replica: {replica!r} is not a positive integer")
        elif len(gluster) % replica != 0:
            errors.append(
                f"moodle_ha:gluster:replica: {len(gluster)} brick(s) do not fit replica {replica}"
                " (the brick count must be a multiple of the replica count)"
            )
        elif replica == 1 and _get(data, "gluster:allow_no_redundancy") is not True:
            errors.append(
                "moodle_ha:gluster:replica: replica 1 keeps a single copy of each file (a"
                f" distribute volume over {len(gluster)} brick(s): a lost brick loses its"
                " files); use 3, or set moodle_ha:gluster:allow_no_redundancy: true"
            )
        elif replica == 2:
            errors.append(
                "moodle_ha:gluster:replica: replica 2 splits brain on a partition; use 3"
            )

    primary = _get(data, "moodle:primary_node")
    if primary is not None and primary not in nodes["web"]:
        errors.append(f"moodle_ha:moodle:primary_node: {primary!r} is not a web host")

    lbs = nodes["lb"]
    if nodes["web"] and not lbs:
        errors.append("moodle_ha:topology:hosts: no host has role 'lb' to carry the VIP")
    # Listeners of the lb hosts and the galera port (an lb host may be a galera host too);
    # each is an integer port already (_port_errors).
    ports = {f"lb:haproxy:{k}": _get(data, f"lb:haproxy:{k}")
             for k in ("writer_port", "reader_port", "web_port", "stats_port")}
    ports["galera:port"] = _get(data, "galera:port")
    values = list(ports.values())
    for key, value in ports.items():
        if values.count(value) > 1:
            errors.append(f"moodle_ha:{key}: port {value} is used twice")
    vrid = _get(data, "lb:keepalived:virtual_router_id")
    if isinstance(vrid, bool) or not isinstance(vrid, int) or not 1 <= vrid <= 255:
        errors.append(f"moodle_ha:lb:keepalived:virtual_router_id: {vrid!r} is not in 1..255")
    _vrrp_errors(data, errors)

    keep = _get(data, "moodle:releases_keep")
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        errors.append(f"moodle_ha:moodle:releases_keep: {keep!r} is not a number >= 1 (the"
                      " current release always stays)")
    source = _get(data, "moodle:source") or {}
    if nodes["web"]:
        kind = source.get("type")
        if kind not in ("archive", "git"):
            errors.append(f"moodle_ha:moodle:source:type: {kind!r} is not 'archive' or 'git'")
        elif not source.get("url"):
            errors.append("moodle_ha:moodle:source:url: missing (where to get the Moodle code)")
        elif kind == "archive" and not str(source["url"]).startswith("salt://"):
            digest = str(source.get("sha256") or "")
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                errors.append(
                    "moodle_ha:moodle:source:sha256: a 64-hex-digit sha256 is required"
                    " for a non-salt:// archive"
                )
        elif kind == "git" and not source.get("ref"):
            errors.append("moodle_ha:moodle:source:ref: missing (branch, tag or commit)")


# garb-systemd passes the group, the options and the log file through `eval` inside single
# quotes: nothing that would end or expand them, nor the options' `;` separator.
_GARBD_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_GARBD_OPTION_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
_GARBD_VALUE_RE = re.compile(r"^[A-Za-z0-9_.:/@,+-]+$")
_GARBD_LOG_RE = re.compile(r"^/var/log/garbd/[A-Za-z0-9_.-]+$")


def _garbd_errors(data, errors):
    if not _role_hosts(data).get("garbd"):
        return
    name = _get(data, "galera:cluster_name")
    if not isinstance(name, str) or not _GARBD_NAME_RE.match(name):
        errors.append(f"moodle_ha:galera:cluster_name: {name!r} is not a plain name (letters,"
                      " digits, . _ -) as garbd's service script needs it")
    options = _get(data, "garbd:options")
    if not isinstance(options, dict) or not all(
            isinstance(key, str) and _GARBD_OPTION_RE.match(key)
            and isinstance(value, (str, int)) and _GARBD_VALUE_RE.match(str(value))
            for key, value in options.items()):
        errors.append(f"moodle_ha:garbd:options: {options!r} is not a map of provider option"
                      " names (e.g. socket.ssl_cert) to values without spaces, quotes, ; or $")
    log_file = _get(data, "garbd:log_file")
    if log_file is not None and not (isinstance(log_file, str) and _GARBD_LOG_RE.match(log_file)):
        errors.append(f"moodle_ha:garbd:log_file: {log_file!r} is not null (the journal) or a"
                      " file in /var/log/garbd/ (the only log directory garbd may write)")
    restart = _get(data, "garbd:restart_sec")
    if isinstance(restart, bool) or not isinstance(restart, int) or restart < 1:
        errors.append(f"moodle_ha:garbd:restart_sec: {restart!r} is not a number of seconds >= 1")


# Redis's eviction policies (redis.conf maxmemory-policy).
REDIS_POLICIES = ("noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru",
                  "volatile-lfu", "volatile-random", "volatile-ttl")
# A Redis memory size as redis.conf reads it (bytes, or k/kb/m/mb/g/gb).
_REDIS_MEMORY_RE = re.compile(r"^[1-9][0-9]*(?:[kmg]b?)?$", re.IGNORECASE)
# Moodle's cachestore_redis key prefix (letters, digits, _ and -; 5 at most here).
_REDIS_PREFIX_RE = re.compile(r"^[A-Za-z0-9_-]{1,5}$")
_REDIS_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
APPLICATION_STORES = ("file", "redis")
SESSION_STORES = ("database", "redis")
_SESSION_PREFIX_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def _positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _store_choice(data, key, choices, hosts, errors):
    """``key``'s value, one of ``choices``; redis needs redis ``hosts``."""
    value = _get(data, key)
    if value not in choices:
        errors.append(f"moodle_ha:{key}: {value!r} is not one of {', '.join(choices)}")
    elif value == "redis" and not hosts:
        errors.append(f"moodle_ha:{key}: redis needs hosts with role redis in"
                      " moodle_ha:topology:hosts")
    return value


def _redis_memory_errors(data, key, why, errors):
    memory = _get(data, key)
    if not (isinstance(memory, (str, int)) and not isinstance(memory, bool)
            and _REDIS_MEMORY_RE.match(str(memory))):
        errors.append(f"moodle_ha:{key}: {memory!r} is not a Redis memory size"
                      f" (e.g. 256mb, 1gb{why})")


def _redis_name_errors(data, key, errors):
    """True when ``key`` is no plain name (and the error is reported)."""
    name = _get(data, key)
    if isinstance(name, str) and _REDIS_NAME_RE.match(name):
        return False
    errors.append(f"moodle_ha:{key}: {name!r} is not a plain name (letters, digits, . _ -)")
    return True


def _redis_errors(data, errors):
    """The redis layer's settings, and the need of it of moodle:cache:application_store and
    moodle:session:store."""
    hosts = _role_hosts(data).get("redis") or []
    store = _store_choice(data, "moodle:cache:application_store", APPLICATION_STORES, hosts,
                          errors)
    sessions = _store_choice(data, "moodle:session:store", SESSION_STORES, hosts, errors)
    for name in ("lock_timeout", "lock_expire"):
        value = _get(data, f"moodle:session:{name}")
        if not _positive_int(value):
            errors.append(f"moodle_ha:moodle:session:{name}: {value!r} is not a positive"
                          " number of seconds")
    prefix = _get(data, "moodle:session:redis_prefix")
    if sessions == "redis" and not (isinstance(prefix, str)
                                    and _SESSION_PREFIX_RE.match(prefix)):
        errors.append(f"moodle_ha:moodle:session:redis_prefix: {prefix!r} is not 1 to 32"
                      " letters, digits, _ or -")
    if store == "redis":
        prefix = _get(data, "moodle:cache:redis_prefix")
        if not (isinstance(prefix, str) and _REDIS_PREFIX_RE.match(prefix)):
            errors.append(f"moodle_ha:moodle:cache:redis_prefix: {prefix!r} is not 1 to 5"
                          " letters, digits, _ or - (Moodle's Redis key prefix)")
    if not hosts:
        return
    if len(hosts) < 3:
        errors.append(f"moodle_ha:topology:hosts: role redis on {len(hosts)} host(s)"
                      f" ({', '.join(hosts)}): Sentinel needs three or more, so that the loss"
                      " of one host leaves a majority to promote a replica")
    key = f"moodle_ha:secrets:{REDIS_SECRET}"
    password = _conditional_secret(data, REDIS_SECRET, True, "while a host has role redis",
                                   errors)
    if password is not None:
        # Sentinel rewrites its file at its first start and on every failover with
        # `sentinel auth-pass` unquoted (measured, Redis 8.0.2): a password with a space or a
        # quote does not survive the rewrite, and the next start fails.
        bad = list(dict.fromkeys(ch for ch in password if ch.isspace() or ch in "\"'"))
        if bad:
            errors.append(f"{key}: contains {', '.join(_char(ch) for ch in bad)}: Sentinel"
                          " rewrites its file with the password unquoted, so it may hold no"
                          " whitespace and no quotes")
    quorum = _get(data, "redis:quorum")
    if quorum is not None and not (_positive_int(quorum) and quorum <= len(hosts)):
        errors.append(f"moodle_ha:redis:quorum: {quorum!r} is not null (a majority) or a number"
                      f" of sentinels from 1 to {len(hosts)} (the redis hosts)")
    for name in ("down_after_ms", "failover_timeout_ms", "parallel_syncs", "check_interval"):
        value = _get(data, f"redis:{name}")
        if not _positive_int(value):
            errors.append(f"moodle_ha:redis:{name}: {value!r} is not a positive integer")
    _redis_memory_errors(data, "redis:maxmemory", "; a cache needs a limit", errors)
    policy = _get(data, "redis:maxmemory_policy")
    if policy not in REDIS_POLICIES:
        errors.append(f"moodle_ha:redis:maxmemory_policy: {policy!r} is not one of"
                      f" {', '.join(REDIS_POLICIES)}")
    _redis_name_errors(data, "redis:master_name", errors)
    if sessions == "redis":
        _redis_sessions_errors(data, errors)


def _redis_sessions_errors(data, errors):
    """redis:sessions, the second server (moodle:session:store redis)."""
    _redis_memory_errors(data, "redis:sessions:maxmemory", "", errors)
    name = _get(data, "redis:sessions:master_name")
    if not _redis_name_errors(data, "redis:sessions:master_name", errors) \
            and name == _get(data, "redis:master_name"):
        errors.append(f"moodle_ha:redis:sessions:master_name: {name!r} is the cache server's"
                      " (redis:master_name): the Sentinels tell the two apart by name")
    # One host runs both servers and Sentinel; a load balancer both endpoints.
    for key, others in (("redis:sessions:port", ("redis:port", "redis:sentinel_port")),
                        ("redis:sessions:endpoint_port", _ROLE_LISTENERS["lb"])):
        value = _get(data, key)
        clash = [other for other in others if other != key and _get(data, other) == value]
        if clash:
            errors.append(f"moodle_ha:{key}: {value!r} is also {clash[0]}: each server and"
                          " endpoint needs a port of its own")


def redis_instances(data):
    """
    The Redis servers every redis host runs (none without role redis): the cache server
    (``redis``), and the sessions server (``redis:sessions``) while
    ``moodle:session:store`` is redis. Each with what its states, HAProxy's endpoint, the
    firewall and the status view use: ``name``, ``unit``, ``port``, ``endpoint_port``,
    ``master_name``, ``maxmemory``, ``maxmemory_policy``, ``config_file``, ``pidfile``,
    ``dbfilename``, ``follow_script`` and ``proxy`` (HAProxy's listen section).

    CLI Example:

    .. code-block:: bash

        salt 'lb1' state.show_sls moodle_ha._mapdata   # redis_instances
    """
    if not _role_hosts(data).get("redis"):
        return []
    r = _get(data, "redis") or {}
    services = _get(data, "services") or {}

    def server(name, spec, unit, policy, dbfilename, proxy):
        keys = ("port", "endpoint_port", "master_name", "maxmemory", "config_file", "pidfile",
                "follow_script")
        return {"name": name, "unit": services.get(unit), "maxmemory_policy": policy,
                "dbfilename": dbfilename, "proxy": proxy, **{k: spec.get(k) for k in keys}}

    out = [server("cache", r, "redis", r.get("maxmemory_policy"), "dump.rdb", "redis")]
    if _get(data, "moodle:session:store") == "redis":
        s = r.get("sessions") or {}
        # Sessions are never evicted (a cache that evicts logs users out).
        out.append(server("sessions", s, "redis_sessions", "noeviction", s.get("dbfilename"),
                          "redis-sessions"))
    return out


def _web_errors(data, errors):
    workers = _get(data, "web:apache:max_request_workers")
    if workers is not None and not (_positive_int(workers) and workers <= 20000):
        errors.append(f"moodle_ha:web:apache:max_request_workers: {workers!r} is not null (from"
                      " the host's memory) or a number of workers from 1 to 20000")


_PHP_SIZE_RE = re.compile(r"^([0-9]+)([KMG]?)$", re.IGNORECASE)


def max_request_workers(setting, memory_limit, mem_total_mb):
    """
    Apache's MaxRequestWorkers for a web node: ``setting`` (web:apache:max_request_workers)
    when it is a number; else half of ``mem_total_mb`` (the host's memory, grain
    ``mem_total``) over PHP's ``memory_limit`` (``256M``, ``1G``; ``-1`` or unreadable counts
    as 256M), from 4 to 150 (Apache's own default).

    CLI Example:

    .. code-block:: bash

        salt-call moodle_ha.max_request_workers null 256M 4096
    """
    if setting is not None:
        return int(setting)
    match = _PHP_SIZE_RE.match(str(memory_limit).strip())
    per = 256
    if match:
        number, unit = int(match.group(1)), match.group(2).upper()
        per = {"": number / 1024 ** 2, "K": number / 1024, "M": number,
               "G": number * 1024}[unit] or 256
    return max(4, min(150, int(float(mem_total_mb or 0) / 2 // per)))


# An NTP server of chrony.conf: a host name or an IP address (no spaces: no extra options).
_NTP_SERVER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")


def _chrony_errors(data, errors):
    enabled = _get(data, "chrony:enabled")
    if not isinstance(enabled, bool):
        errors.append(f"moodle_ha:chrony:enabled: {enabled!r} is not true or false")
        return
    if not enabled:
        return
    servers = _get(data, "chrony:servers")
    if not isinstance(servers, list) or not all(
            isinstance(s, str) and _NTP_SERVER_RE.match(s) for s in servers):
        errors.append(f"moodle_ha:chrony:servers: {servers!r} is not a list of NTP server"
                      " host names or IP addresses (without spaces)")
        servers = None
    local = _get(data, "chrony:local_servers")
    hosts = _get(data, "topology:hosts") or {}
    if local is None:
        local = _role_hosts(data).get("lb", [])
    elif not isinstance(local, list) or not all(
            isinstance(n, str) and n in hosts for n in local) or len(set(local)) != len(local):
        errors.append(f"moodle_ha:chrony:local_servers: {local!r} is not null (the lb hosts) or"
                      " a list of distinct moodle_ha:topology:hosts names")
        return
    if servers == [] and not local:
        errors.append("moodle_ha:chrony:servers: empty and no local time server"
                      " (chrony:local_servers is empty, or null without an lb host): no host"
                      " would have a time source")


BACKUP_COMPRESSION = ("gzip", "zstd", "none")


def _one_of(data, key, choices, errors):
    value = _get(data, key)
    if value not in choices:
        errors.append(f"moodle_ha:{key}: {value!r} is not one of {', '.join(choices)}")


def backup_node(data):
    """The backup node: backup:node, else the last galera host by name that mounts the
    dataroot (a web host); None when there is none."""
    chosen = _get(data, "backup:node")
    if chosen is not None:
        return chosen
    nodes = _role_hosts(data)
    both = [n for n in nodes.get("galera", []) if n in nodes.get("web", [])]
    return both[-1] if both else None


_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# galera:sst_user reaches MariaDB's SST script as `user:password`, split at the first colon.
_SST_USER_RE = re.compile(r"^[A-Za-z0-9_]{1,32}$")


def _galera_safety_errors(data, errors):
    """The data-safety switches of the galera layer (_states/galera.py reads them)."""
    old = _get(data, "galera:force_bootstrap_node")
    if old is not None:
        errors.append("moodle_ha:galera:force_bootstrap_node: retired (a node name has no"
                      " expiry); remove it and use galera:force_bootstrap: {node: <name>,"
                      " seqno: <its recovered seqno>}")
    force = _get(data, "galera:force_bootstrap")
    if force is not None:
        key = "moodle_ha:galera:force_bootstrap"
        if not isinstance(force, dict):
            errors.append(f"{key}: must be null or a mapping {{node, seqno[, uuid]}}, got"
                          f" {_kind(force)}")
        else:
            node, seqno, uuid = force.get("node"), force.get("seqno"), force.get("uuid")
            extra = sorted(set(map(str, force)) - {"node", "seqno", "uuid"})
            if extra:
                errors.append(f"{key}: unknown key(s) {extra} (node, seqno, uuid)")
            if node not in _role_hosts(data).get("galera", []):
                errors.append(f"{key}:node: {node!r} is not a galera host")
            if isinstance(seqno, bool) or not isinstance(seqno, int):
                errors.append(f"{key}:seqno: must be an integer (the seqno that node"
                              f" recovered), got {_kind(seqno)}")
            if uuid is not None and not (isinstance(uuid, str) and _UUID_RE.match(uuid)):
                errors.append(f"{key}:uuid: {uuid!r} is not a cluster uuid")
    discard = _get(data, "galera:discard_existing_schemas")
    if not isinstance(discard, bool):
        errors.append("moodle_ha:galera:discard_existing_schemas: must be true or false, got"
                      f" {_kind(discard)}")
    user = _get(data, "galera:sst_user")
    if not isinstance(user, str) or not _SST_USER_RE.match(user):
        errors.append(f"moodle_ha:galera:sst_user: {user!r} is not a MariaDB user name of up to"
                      " 32 letters, digits and '_' (the SST script splits user:password at the"
                      " first ':')")


def _backup_errors(data, errors):
    if not _get(data, "backup:enabled"):
        return
    nodes = _role_hosts(data)
    if not nodes.get("galera"):
        return
    node = backup_node(data)
    if node is None:
        errors.append("moodle_ha:backup:node: no galera host mounts the dataroot (role web);"
                      " name one or set backup:enabled false")
    elif node not in nodes.get("galera", []) or node not in nodes.get("web", []):
        errors.append(f"moodle_ha:backup:node: {node!r} is not a host with roles galera and web"
                      " (the backup reads the database and the mounted dataroot)")
    retention = _get(data, "backup:retention")
    if isinstance(retention, bool) or not isinstance(retention, int) or retention < 1:
        errors.append(f"moodle_ha:backup:retention: {retention!r} is not an integer >= 1"
                      " (the newest verified backup is never removed)")
    _one_of(data, "backup:compression", BACKUP_COMPRESSION, errors)
    target = str(_get(data, "backup:target_dir") or "")
    if not target.startswith("/") or target.rstrip("/") in ("", _get(data, "galera:datadir"),
                                                           _get(data, "moodle:dataroot")):
        errors.append(f"moodle_ha:backup:target_dir: {target!r} is not an absolute directory"
                      " of its own (not the datadir or the dataroot)")
    key = _get(data, "secrets:backup_encryption_key")
    if key is not None:
        key = str(key)
        if "\n" in key or "\r" in key or len(key) < 16:
            errors.append("moodle_ha:secrets:backup_encryption_key: must be one line of at least"
                          " 16 characters (openssl reads the first line of the key file)")
    restore = _get(data, "restore:backup")
    if restore is not None and not re.fullmatch(r"[0-9]{8}T[0-9]{6}Z", str(restore)):
        errors.append(f"moodle_ha:restore:backup: {restore!r} is not a backup name"
                      " (YYYYMMDDTHHMMSSZ, see moodle_ha-backup list)")


# What each role listens on (map keys): an exporter binds the host's own IP, so any of these
# on the same host and port would refuse to start.
_ROLE_LISTENERS = {
    "galera": ("galera:port", "galera:replication_port", "galera:ist_port", "galera:sst_port",
               "galera:clustercheck:port"),
    "garbd": ("galera:replication_port",),
    "web": ("lb:haproxy:web_backend_port",),
    "lb": ("lb:haproxy:writer_port", "lb:haproxy:reader_port", "lb:haproxy:web_port",
           "lb:haproxy:stats_port", "lb:tls:https_port", "redis:endpoint_port",
           "redis:sessions:endpoint_port"),
    "redis": ("redis:port", "redis:sentinel_port", "redis:sessions:port"),
}
# Exporter ports and the role of the hosts that run each (None: every host).
_EXPORTER_PORTS = (("metrics:node_exporter:port", None), ("metrics:mysqld_exporter:port", "galera"))
METRICS_CONNECTIONS = ("my_cnf", "dsn")
_FLAG_RE = re.compile(r"^--[^\s\"'\\]+$")


def _port_clash(data, key, port, role, earlier):
    """(other key, host) of the first listener on `port` on a host running exporter `key`."""
    hosts = _get(data, "topology:hosts") or {}
    for name in sorted(hosts, key=str):
        roles = (hosts[name] or {}).get("roles") or []
        if role is not None and role not in roles:
            continue
        others = [k for r in roles for k in _ROLE_LISTENERS.get(r, ())]
        others += [k for k, r in earlier if r is None or r in roles]
        for other in others:
            if _get(data, other) == port:
                return other, name
    return None


def _metrics_errors(data, errors):
    enabled = _get(data, "metrics:enabled")
    if not isinstance(enabled, bool):
        errors.append(f"moodle_ha:metrics:enabled: {enabled!r} is not true or false")
        return
    if not enabled:
        return
    earlier = []
    for key, role in _EXPORTER_PORTS:
        port = _get(data, key)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            errors.append(f"moodle_ha:{key}: {port!r} is not a TCP port")
            continue
        clash = _port_clash(data, key, port, role, earlier)
        if clash:
            errors.append(f"moodle_ha:{key}: port {port} is also moodle_ha:{clash[0]}"
                          f" on host {clash[1]}")
        earlier.append((key, role))
    for key in ("metrics:node_exporter:args", "metrics:mysqld_exporter:args"):
        args = _get(data, key)
        if not isinstance(args, list) or not all(
                isinstance(arg, str) and _FLAG_RE.match(arg) for arg in args):
            errors.append(f"moodle_ha:{key}: {args!r} is not a list of --flags"
                          " (without spaces or quotes)")
    _one_of(data, "metrics:mysqld_exporter:connection", METRICS_CONNECTIONS, errors)
    path = _get(data, "metrics:haproxy:path")
    if not isinstance(path, str) or not re.fullmatch(r"/[A-Za-z0-9._~/-]+", path):
        errors.append(f"moodle_ha:metrics:haproxy:path: {path!r} is not a URL path such as"
                      " /metrics (the stats page keeps /)")


def _network_list_errors(key, value, errors, nullable=False):
    if value is None and nullable:
        return
    if not isinstance(value, list):
        errors.append(f"moodle_ha:{key}: {value!r} is not a list of networks"
                      + (" (or null)" if nullable else ""))
        return
    for item in value:
        try:
            ipaddress.ip_network(str(item), strict=False)
        except ValueError:
            errors.append(f"moodle_ha:{key}: {item!r} is not an IP address or network"
                          " such as 192.0.2.0/24")
            return
        if isinstance(item, bool) or not isinstance(item, str):
            errors.append(f"moodle_ha:{key}: {item!r} must be a string such as"
                          " '192.0.2.0/24'")
            return


def _firewall_errors(data, errors):
    enabled = _get(data, "firewall:enabled")
    if not isinstance(enabled, bool):
        errors.append(f"moodle_ha:firewall:enabled: {enabled!r} is not true or false")
        return
    for key in ("ssh_allow", "metrics_allow"):
        _network_list_errors(f"firewall:{key}", _get(data, f"firewall:{key}"), errors,
                             nullable=True)
    for key in ("web_allow", "db_allow"):
        value = _get(data, f"firewall:{key}")
        _network_list_errors(f"firewall:{key}", value, errors)
        if isinstance(value, list) and any(
                ":" in str(item) for item in value if isinstance(item, str)):
            errors.append(f"moodle_ha:firewall:{key}: {value!r} has an IPv6 network, but the"
                          " VIP and the lb hosts' addresses are IPv4: it would admit nothing")
    ssh = _get(data, "firewall:ssh_port")
    roles = {r for h in (_get(data, "topology:hosts") or {}).values()
             for r in ((h or {}).get("roles") or [])}
    listeners = [k for r in sorted(roles) for k in _ROLE_LISTENERS.get(r, ())]
    if _get(data, "metrics:enabled") is True:
        listeners += [k for k, _ in _EXPORTER_PORTS]
    clash = next((k for k in listeners if _get(data, k) == ssh), None)
    if _is_port(ssh) and clash:
        errors.append(f"moodle_ha:firewall:ssh_port: port {ssh} is also moodle_ha:{clash}"
                      " (the firewall would open it to firewall:ssh_allow)")
    first = _get(data, "firewall:gluster_brick_ports:first")
    last = _get(data, "firewall:gluster_brick_ports:last")
    if not (_is_port(first) and _is_port(last) and first <= last):
        errors.append(f"moodle_ha:firewall:gluster_brick_ports: first {first!r} and last"
                      f" {last!r} must be ports with first <= last (glusterd.vol base-port"
                      " and max-port)")
    extra = _get(data, "firewall:extra_rules")
    if not isinstance(extra, list) or not all(
            isinstance(line, str) and line.strip() and not _controls(line) for line in extra):
        errors.append(f"moodle_ha:firewall:extra_rules: {extra!r} is not a list of one-line"
                      " nft rule statements")
    auth = _get(data, "gluster:auth_allow")
    if auth is not None and (not isinstance(auth, list) or not auth or not all(
            isinstance(a, str) and re.fullmatch(r"[0-9A-Za-z.*:\[\]-]+", a) for a in auth)):
        errors.append(f"moodle_ha:gluster:auth_allow: {auth!r} is not null or a non-empty list"
                      " of client addresses (IP addresses, * wildcards allowed)")
    bind = _get(data, "galera:bind_address")
    if bind is not None:
        try:
            ipaddress.ip_address(str(bind))
        except ValueError:
            errors.append(f"moodle_ha:galera:bind_address: {bind!r} is not null or an IP"
                          " address")


# haproxy.cfg carries lb:tls:pem_file unquoted (bind ... ssl crt <file>).
_PEM_FILE_RE = re.compile(r"^/[A-Za-z0-9._/-]+$")


def _pem_certificates(text):
    """The certificates of a PEM chain, in order (cryptography >= 39 parses a chain at once)."""
    from cryptography import x509
    if hasattr(x509, "load_pem_x509_certificates"):
        return x509.load_pem_x509_certificates(text.encode())
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", text, re.S)
    if not blocks:
        raise ValueError("no CERTIFICATE block")
    return [x509.load_pem_x509_certificate(block.encode()) for block in blocks]


def _san_covers(names, server_name):
    """Whether DNS SAN `names` cover `server_name`: exactly, or a `*.` wildcard standing for
    its first label (one label only, as browsers match)."""
    host = server_name.rstrip(".").lower()
    for name in (n.rstrip(".").lower() for n in names):
        if name == host:
            return True
        first, _, rest = host.partition(".")
        if name.startswith("*.") and first and rest and name[2:] == rest:
            return True
    return False


def _pem_secret(data, secret, errors):
    """secrets:<secret>, a PEM text: lines, so a carriage return only ends one."""
    text = _get(data, f"secrets:{secret}")
    if isinstance(text, str) and re.search(r"\r(?!\n)", text):
        errors.append(f"moodle_ha:secrets:{secret}: contains a carriage return (U+000D) that"
                      " does not end a line")
    return text


def _plain_path_errors(data, path, why, errors):
    value = _get(data, path)
    if not isinstance(value, str) or not _PEM_FILE_RE.match(value):
        errors.append(f"moodle_ha:{path}: {value!r} is not an absolute path of letters, digits,"
                      f" . _ - and / ({why})")


def _pem_chain(data, path, what, switch, secret, errors):
    """The certificates of the PEM chain at `path` (None, with an error, when it is none)."""
    key = f"moodle_ha:{path}"
    text = _get(data, path)
    if not isinstance(text, str) or "-----BEGIN CERTIFICATE-----" not in text:
        errors.append(f"{key}: {_kind(text)}, not a PEM certificate chain ({what}:"
                      f" -----BEGIN CERTIFICATE----- blocks), required while {switch} is true")
    elif "PRIVATE KEY-----" in text:
        errors.append(f"{key}: holds a private key: it belongs in secrets:{secret} (a secret,"
                      " masked in the map dumps), the certificates only here")
    else:
        try:
            return _pem_certificates(text)
        except ValueError as exc:
            errors.append(f"{key}: not a PEM certificate chain ({exc})")
    return None


def _tls_key_errors(key_text, errors, secret="tls_key", certificate="lb:tls:certificate",
                    switch="lb:tls:enabled", reader="HAProxy"):
    """secrets:<secret> parsed: a PEM private key, unencrypted (None when it is not). The
    messages never quote the key."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    key = f"moodle_ha:secrets:{secret}"
    if not isinstance(key_text, str) or not key_text.strip():
        errors.append(f"{key}: missing (the PEM private key of {certificate}, required while"
                      f" {switch} is true)")
        return None
    if "-----BEGIN CERTIFICATE-----" in key_text:
        errors.append(f"{key}: holds a certificate as well: give the private key only (the"
                      f" certificate chain is {certificate})")
    try:
        private = serialization.load_pem_private_key(key_text.encode(), password=None)
    except TypeError:
        errors.append(f"{key}: the private key is encrypted (a passphrase): {reader} needs it"
                      " unencrypted (e.g. openssl pkey -in <encrypted key> -out <plain key>)")
        return None
    except (ValueError, UnsupportedAlgorithm):
        errors.append(f"{key}: not a PEM private key (-----BEGIN PRIVATE KEY-----, or EC/RSA"
                      " PRIVATE KEY)")
        return None
    return private


def _public_der(key):
    from cryptography.hazmat.primitives import serialization
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def _tls_errors(data, errors):
    """lb:tls (HTTPS on the VIP): the switches; while enabled, lb:tls:certificate and
    secrets:tls_key: a PEM chain and its unencrypted key, the key the first certificate's,
    that certificate's subjectAltName covering the site's name (web:server_name, else the
    VIP); not its dates. cryptography (in Salt's own environment) is imported only then."""
    enabled = _get(data, "lb:tls:enabled")
    for name in ("enabled", "redirect_http"):
        value = _get(data, f"lb:tls:{name}")
        if not isinstance(value, bool):
            errors.append(f"moodle_ha:lb:tls:{name}: {value!r} is not true or false")
    hsts = _get(data, "lb:tls:hsts_max_age")
    if isinstance(hsts, bool) or not isinstance(hsts, int) or hsts < 0:
        errors.append(f"moodle_ha:lb:tls:hsts_max_age: {hsts!r} is not a number of seconds >= 0"
                      " (0 sends no Strict-Transport-Security header)")
    key_text = _pem_secret(data, "tls_key", errors)
    if enabled is not True or not _role_hosts(data).get("lb"):
        return
    from cryptography import x509
    _plain_path_errors(data, "lb:tls:pem_file", "haproxy.cfg carries it unquoted", errors)
    port = _get(data, "lb:tls:https_port")
    for other in ("lb:haproxy:writer_port", "lb:haproxy:reader_port", "lb:haproxy:web_port",
                  "lb:haproxy:stats_port", "galera:port"):
        if _get(data, other) == port:
            errors.append(f"moodle_ha:lb:tls:https_port: port {port} is also moodle_ha:{other}")
    key = "moodle_ha:lb:tls:certificate"
    certs = _pem_chain(data, "lb:tls:certificate", "the site certificate, then its"
                       " intermediates", "lb:tls:enabled", "tls_key", errors)
    private = _tls_key_errors(key_text, errors)
    if not certs:
        return
    cert = certs[0]
    mine = _public_der(private.public_key()) if private is not None else None
    if mine is not None and _public_der(cert.public_key()) != mine:
        later = [i for i, c in enumerate(certs[1:], 2)
                 if _public_der(c.public_key()) == mine]
        errors.append("moodle_ha:secrets:tls_key: is not the private key of the first"
                      f" certificate of lb:tls:certificate ({cert.subject.rfc4514_string()})"
                      + (f"; it is certificate {later[0]}'s: the site certificate must come"
                         " first, then its intermediates" if later else ""))
    name = _get(data, "web:server_name") or _get(data, "topology:vip")
    source = "web:server_name" if _get(data, "web:server_name") else "topology:vip"
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        errors.append(f"{key}: the first certificate ({cert.subject.rfc4514_string()}) has no"
                      f" subjectAltName: browsers ignore the CN (it needs one covering {name},"
                      f" moodle_ha:{source})")
        san = None
    if san is not None:
        ips = san.get_values_for_type(x509.IPAddress)
        dns = san.get_values_for_type(x509.DNSName)
        try:
            address = ipaddress.ip_address(str(name))
        except ValueError:
            address = None
        covered = address in ips if address is not None else _san_covers(dns, str(name))
        if not covered:
            have = ", ".join([f"IP:{ip}" for ip in ips] + [f"DNS:{d}" for d in dns]) or "none"
            need = "an IP address SAN" if address is not None else "a DNS SAN"
            errors.append(f"{key}: the first certificate does not cover {name} (moodle_ha:"
                          f"{source}, the site's address): it needs {need} for it; its"
                          f" subjectAltName has {have}")
    # No check of the validity dates: an expired certificate must never stop the states of
    # every host (a Galera recovery included) until the pillar has a new one.


# SST modes of MariaDB's mariabackup SST script ([sst] ssl-mode) that encrypt: VERIFY_CA
# also has each side check the other's certificate against galera:tls:ca.
_SST_SSL_MODES = ("REQUIRED", "VERIFY_CA")
# The joiner's SST script passes its certificate's CN to the donor in the transfer request.
_SST_CN_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")


def _issued_by(cert, issuer):
    """Whether `issuer` signed `cert` (cryptography >= 40; older ones compare the names)."""
    from cryptography.exceptions import InvalidSignature
    if not hasattr(cert, "verify_directly_issued_by"):
        return cert.issuer == issuer.subject
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _chains_to(certs, cas):
    """Whether certs[0] leads to one of `cas` through the intermediates after it."""
    current, rest = certs[0], list(certs[1:])
    for _ in range(len(certs)):
        if any(_issued_by(current, ca) for ca in cas):
            return True
        parent = next((c for c in rest if _issued_by(current, c)), None)
        if parent is None:
            return False
        rest.remove(parent)
        current = parent
    return False


def _galera_tls_errors(data, errors):
    """galera:tls (replication and IST through the Galera provider, SST through the
    mariabackup script, all over TLS): while enabled, galera:tls:ca, galera:tls:certificate
    and secrets:galera_tls_key, the key the certificate's, the certificate issued by the CA
    (or by an intermediate that follows it in galera:tls:certificate). One certificate
    serves every galera and garbd host: Galera checks the peer's chain, not its name."""
    enabled = _get(data, "galera:tls:enabled")
    if not isinstance(enabled, bool):
        errors.append(f"moodle_ha:galera:tls:enabled: {enabled!r} is not true or false")
    key_text = _pem_secret(data, "galera_tls_key", errors)
    if enabled is not True or not _role_hosts(data).get("galera"):
        return
    _plain_path_errors(data, "galera:tls:dir", "the provider options carry it unquoted", errors)
    _one_of(data, "galera:tls:sst_ssl_mode", _SST_SSL_MODES, errors)
    if _get(data, "galera:sst_method") != "mariabackup":
        errors.append(f"moodle_ha:galera:sst_method: {_get(data, 'galera:sst_method')!r}: SST"
                      " over TLS (galera:tls:enabled) is built for mariabackup (socat with"
                      " OpenSSL); rsync would send the data in clear text")
    for path in ("galera:provider_options", "garbd:options"):
        options = _get(data, path)
        clash = sorted(k for k in (options if isinstance(options, dict) else {})
                       if str(k).startswith("socket.ssl"))
        if clash:
            errors.append(f"moodle_ha:{path}: {', '.join(clash)} while galera:tls:enabled is"
                          " true, which sets the socket.ssl options itself")
    ca = _pem_chain(data, "galera:tls:ca", "the CA certificate(s) the nodes trust",
                    "galera:tls:enabled", "galera_tls_key", errors)
    certs = _pem_chain(data, "galera:tls:certificate", "the nodes' certificate, then its"
                       " intermediates", "galera:tls:enabled", "galera_tls_key", errors)
    private = _tls_key_errors(key_text, errors, "galera_tls_key", "galera:tls:certificate",
                              "galera:tls:enabled", "Galera (server and garbd)")
    if not certs:
        return
    cert = certs[0]
    subject = cert.subject.rfc4514_string()
    if private is not None and _public_der(cert.public_key()) != _public_der(
            private.public_key()):
        errors.append("moodle_ha:secrets:galera_tls_key: is not the private key of the first"
                      f" certificate of galera:tls:certificate ({subject})")
    if _get(data, "galera:tls:sst_ssl_mode") == "VERIFY_CA":
        from cryptography.x509.oid import NameOID
        names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if names and not _SST_CN_RE.match(str(names[0])):
            # Measured: with CN "moodle_ha galera" every donor refused the joiners ("Bad
            # remote auth string. SST canceled.").
            errors.append(f"moodle_ha:galera:tls:certificate: the first certificate's common"
                          f" name {names[0]!r} is not a host-name-like name (letters, digits,"
                          " '.' and '-'): with sst_ssl_mode VERIFY_CA the SST script sends it"
                          " to the donor, which refuses the transfer")
    if ca and not _chains_to(certs, ca):
        errors.append(f"moodle_ha:galera:tls:certificate: the first certificate ({subject}) is"
                      " not issued by a certificate of galera:tls:ca (nor by an intermediate"
                      " after it): every node would refuse its peers")


def _leaving(spec):
    return isinstance(spec, dict) and spec.get("decommission") is True


def _role_hosts(data, leaving=False):
    """{role: [host...]} of the members (``leaving``: of the hosts marked ``decommission``)."""
    hosts = _get(data, "topology:hosts") or {}
    out = {role: [] for role in _get(data, "known_roles") or []}
    for name in sorted(hosts, key=str):
        if _leaving(hosts[name]) != leaving:
            continue
        for role in (hosts[name] or {}).get("roles") or []:
            out.setdefault(role, []).append(name)
    return out


def validate(data, minion_id=None, grain_roles=None, known=None):
    """
    Check the merged moodle_ha map and return a list of problems, each naming its pillar key.

    An empty list means the map is valid. When ``minion_id`` is a host of the topology and
    ``grain_roles`` is given, the host's ``roles`` grain must be a subset of its pillar roles.
    ``known`` is the key tree of the parameters files (defaults, OS family and release merged,
    without the pillar): with it, a key the tree does not have is an error naming the closest
    known key, and every section that is a mapping there must be one in the map.

    CLI Example:

    .. code-block:: bash

        # data is the merged map (defaults, OS family, release, lookup, pillar), not raw
        # pillar; map.jinja passes it. To see one minion's verdict, render its map:
        salt 'moodle1' state.show_sls moodle_ha._mapdata
    """
    errors = []
    if not isinstance(data, dict):
        return ["moodle_ha: the merged map is not a dictionary"]
    _shape_errors(data, known, errors)
    shapes_ok = not errors
    if isinstance(known, dict):
        _unknown_key_errors(data, known, errors)
    if not shapes_ok:
        return errors  # the checks below read into the sections reported
    net = _subnet_errors(data, errors)
    ips = _host_errors(data, net, errors)
    _vip_errors(data, net, ips, errors)
    _secret_errors(data, errors)
    _port_errors(data, known if isinstance(known, dict) else None, errors)
    if not errors:
        _decommission_errors(data, errors)
        _layer_errors(data, errors)
        _garbd_errors(data, errors)
        _redis_errors(data, errors)
        _web_errors(data, errors)
        _chrony_errors(data, errors)
        _metrics_errors(data, errors)
        _backup_errors(data, errors)
        _galera_safety_errors(data, errors)
        _firewall_errors(data, errors)
        _tls_errors(data, errors)
        _galera_tls_errors(data, errors)
    hosts = _get(data, "topology:hosts") or {}
    if minion_id in hosts and grain_roles is not None:
        if isinstance(grain_roles, str):
            grain_roles = [grain_roles]
        pillar_roles = hosts[minion_id].get("roles") or []
        if isinstance(pillar_roles, list) and all(isinstance(r, str) for r in pillar_roles):
            extra = sorted(set(map(str, grain_roles)) - set(pillar_roles))
            if extra:
                errors.append(
                    f"moodle_ha:topology:hosts:{minion_id}:roles: grain roles {extra} of this"
                    " minion are not in its pillar roles"
                )
    return errors


def topology(data, minion_id=None):
    """
    Derive the node lists every layer reads from the (validated) map.

    Returns ``{"roles": {role: [{"name", "ip", "fqdn"}...]}, "leaving": {role: [...]},
    "self": {...}, "bootstrap_node": ..., "primary_node": ..., "replica": ...}``. ``roles``
    lists the members; a host marked ``decommission: true`` is in ``leaving`` only (the
    firewall and /etc/hosts still admit it while it leaves; nothing else counts it).

    CLI Example:

    .. code-block:: bash

        # map.jinja adds the result as mapdata.nodes; to see it for one minion:
        salt 'moodle1' state.show_sls moodle_ha._mapdata
    """
    hosts = _get(data, "topology:hosts") or {}
    domain = _get(data, "topology:domain")

    def node(name):
        fqdn = f"{name}.{domain}" if domain else name
        return {"name": name, "ip": str(hosts[name]["ip"]), "fqdn": fqdn}

    roles = {role: [node(n) for n in names] for role, names in _role_hosts(data).items()}
    leaving = {role: [node(n) for n in names]
               for role, names in _role_hosts(data, leaving=True).items() if names}
    galera = [n["name"] for n in roles.get("galera", [])]
    web = [n["name"] for n in roles.get("web", [])]
    gluster = roles.get("gluster", [])
    me = node(minion_id) if minion_id in hosts else None
    if me is not None:
        me["roles"] = list(hosts[minion_id].get("roles") or [])
        me["decommission"] = _leaving(hosts[minion_id])
    return {
        "roles": roles,
        "leaving": leaving,
        "self": me,
        "bootstrap_node": _get(data, "galera:bootstrap_node") or (galera[0] if galera else None),
        "primary_node": _get(data, "moodle:primary_node") or (web[0] if web else None),
        "replica": _get(data, "gluster:replica") or len(gluster),
        "backup_node": backup_node(data) if _get(data, "backup:enabled") else None,
    }


# Sections of the map whose strings may carry release placeholders (never secrets).
_PLACEHOLDER_SECTIONS = ("pkgs", "web")


def _expand(value, names):
    if isinstance(value, str):
        for name, replacement in names.items():
            value = value.replace("{" + name + "}", replacement)
        return value
    if isinstance(value, list):
        return [_expand(item, names) for item in value]
    if isinstance(value, dict):
        return {key: _expand(item, names) for key, item in value.items()}
    return value


def post_map(data, minion_id=None, grain_roles=None, known=None):
    """
    The step after the merge in ``map.jinja``: expand, validate, derive.

    ``{php_version}`` in the ``pkgs`` and ``web`` sections becomes ``web:php_version``;
    the result is checked with :py:func:`validate` (``known``: the parameters files'
    merge, whose keys are the known keys) and, when valid, gets the derived
    topology under ``nodes``. Returns ``{"errors": [...], "map": {...}}``; ``map`` is the
    expanded map (without ``nodes`` when there are errors).

    CLI Example:

    .. code-block:: bash

        # map.jinja calls it with the merged map; to see one minion's result:
        salt 'moodle1' state.show_sls moodle_ha._mapdata
    """
    if not isinstance(data, dict):
        return {"errors": ["moodle_ha: the merged map is not a dictionary"], "map": data}
    out = dict(data)
    php_version = _get(data, "web:php_version")
    if php_version is not None:
        names = {"php_version": str(php_version)}
        for section in _PLACEHOLDER_SECTIONS:
            if section in out:
                out[section] = _expand(out[section], names)
    errors = validate(out, minion_id, grain_roles, known)
    if not isinstance(out.get("web"), dict):
        pass  # reported by validate
    elif php_version is None or not re.match(r"^\d+\.\d+$", str(php_version)):
        errors.append(
            f"moodle_ha:web:php_version: {php_version!r} is not a PHP version such as '8.4'"
        )
    if not errors:
        out["nodes"] = topology(out, minion_id)
        out["redis_instances"] = redis_instances(out)
    return {"errors": errors, "map": out}

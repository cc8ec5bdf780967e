"""
The per-host firewall of moodle_ha (``moodle_ha.firewall``): which sources may reach which
ports on this host, derived from the topology and the layers' ports.

The ruleset is one nftables table, ``inet moodle_ha``, with a default-drop input chain: a
host accepts loopback, established/related traffic, the ICMP a network needs, SSH from
``firewall:ssh_allow``, and then exactly what its roles serve, from exactly the hosts that
use it. Output and forwarding are not filtered (Salt's minion connects out to the master;
its replies come back as established traffic, so no input rule can cut Salt off).

Pure functions of the map (``mapdata`` with ``nodes``): the unit tests call them directly.
"""

import ipaddress

__virtualname__ = "moodle_ha_firewall"

TABLE = "moodle_ha"
# glusterd (24007) and its RDMA management port (24008).
GLUSTERD_PORTS = (24007, 24008)
NTP_PORT = 123


def __virtual__():
    return __virtualname__


def _get(data, path, default=None):
    node = data
    for key in path.split(":"):
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def _ips(data, role, exclude=None):
    """IPs of the hosts with ``role``: the members and those leaving (a host marked
    decommission is admitted until it is out of the topology, so it leaves Galera and the
    gluster pool cleanly rather than being cut off first)."""
    nodes = (_get(data, f"nodes:roles:{role}") or []) + (_get(data, f"nodes:leaving:{role}")
                                                         or [])
    return [n["ip"] for n in nodes if n["ip"] != exclude]


def _networks(values):
    """The networks of ``values`` collapsed (nft refuses overlapping elements in a set),
    IPv4 before IPv6, a single address written bare."""
    nets = [ipaddress.ip_network(str(v), strict=False) for v in values]
    out = []
    for version in (4, 6):
        for net in ipaddress.collapse_addresses(n for n in nets if n.version == version):
            out.append(str(net.network_address) if net.prefixlen == net.max_prefixlen
                       else str(net))
    return out


def _allow(data, key, default):
    value = _get(data, f"firewall:{key}")
    return default if value is None else list(value)


def rules(data, minion_id=None):
    """
    The accept rules of this host's input chain, beyond the base ones (loopback, conntrack,
    ICMP): a list of ``{"comment", "sources", "proto", "ports", "destinations"}``.

    ``sources`` is a list of networks, or None for anywhere; ``ports`` a list of ports or
    ``"first-last"`` ranges (empty for a protocol without ports, such as VRRP);
    ``destinations`` None (any address of the host) or a list of addresses.

    CLI Example:

    .. code-block:: bash

        salt moodle1 moodle_ha_firewall.rules "$(salt-call --out=json ...)"  # map from map.jinja
    """
    me = _get(data, "nodes:self") or {}
    my_ip = me.get("ip")
    roles = set(me.get("roles") or [])
    vip = str(_get(data, "topology:vip"))
    subnet = str(_get(data, "topology:subnet"))
    lbs = _ips(data, "lb", my_ip)
    # HAProxy's and keepalived's connections leave from the lb host's own address; the VIP
    # is listed too, since the kernel may pick it as the source on the host holding it.
    lb_sources = lbs + [vip] if lbs else []
    web = _ips(data, "web", my_ip)
    galera = _ips(data, "galera", my_ip)
    garbd = _ips(data, "garbd", my_ip)
    gluster = _ips(data, "gluster", my_ip)
    redis = _ips(data, "redis", my_ip)
    out = []

    def add(comment, sources, proto, ports, destinations=None):
        if sources is not None:
            sources = _networks(sources)
            if not sources:
                return
        out.append({"comment": comment, "sources": sources, "proto": proto,
                    "ports": [str(p) for p in ports],
                    "destinations": destinations})

    add("ssh", _allow(data, "ssh_allow", [subnet]), "tcp", [_get(data, "firewall:ssh_port")])

    galera_cfg = _get(data, "galera") or {}
    hp = _get(data, "lb:haproxy") or {}
    if "galera" in roles:
        add("mariadb from the load balancers and the web nodes", lb_sources + web, "tcp",
            [galera_cfg["port"]])
        add("galera group communication from the peers and arbitrators", galera + garbd,
            "tcp", [galera_cfg["replication_port"]])
        add("galera IST and SST from the peers", galera, "tcp",
            [galera_cfg["ist_port"], galera_cfg["sst_port"]])
        # The peers read each other's clustercheck to decide on bootstrap and joins.
        add("clustercheck from the load balancers and the galera peers", lb_sources + galera,
            "tcp", [galera_cfg["clustercheck"]["port"]])
    if "garbd" in roles:
        add("galera group communication from the galera nodes", galera, "tcp",
            [galera_cfg["replication_port"]])
    if "gluster" in roles:
        clients = gluster + web
        add("glusterd from the gluster peers and the dataroot clients", clients, "tcp",
            list(GLUSTERD_PORTS))
        ports = _get(data, "firewall:gluster_brick_ports") or {}
        add("gluster bricks from the gluster peers and the dataroot clients", clients, "tcp",
            [f"{ports.get('first')}-{ports.get('last')}"])
    redis_cfg = _get(data, "redis") or {}
    # The cache server, and the sessions server while Moodle's sessions are in Redis.
    instances = data.get("redis_instances") or []
    if "redis" in roles:
        add("redis from the load balancers and the redis peers", lb_sources + redis, "tcp",
            [inst["port"] for inst in instances])
        add("redis sentinel from the redis peers", redis, "tcp", [redis_cfg["sentinel_port"]])
    if "web" in roles:
        add("apache from the load balancers", lb_sources, "tcp", [hp["web_backend_port"]])
    if "lb" in roles:
        listen = [vip] + ([my_ip] if my_ip else [])
        web_allow = _allow(data, "web_allow", ["0.0.0.0/0"])
        site = [hp["web_port"]]
        if _get(data, "lb:tls:enabled"):
            site.append(_get(data, "lb:tls:https_port"))
        add("the site on the VIP", web_allow, "tcp", site, listen)
        add("database endpoints from the web nodes", web + _allow(data, "db_allow", []),
            "tcp", [hp["writer_port"], hp["reader_port"]], listen)
        if instances:
            add("redis endpoints from the web nodes", web, "tcp",
                [inst["endpoint_port"] for inst in instances], listen)
        add("haproxy stats", [subnet] + list(hp.get("stats_allow") or []), "tcp",
            [hp["stats_port"]])
        add("vrrp from the other load balancers", lbs, "vrrp", [])
    if _get(data, "metrics:enabled"):
        scrapers = _allow(data, "metrics_allow", [subnet])
        add("node exporter", scrapers, "tcp", [_get(data, "metrics:node_exporter:port")])
        if "galera" in roles:
            add("mysqld exporter", scrapers, "tcp",
                [_get(data, "metrics:mysqld_exporter:port")])
    if _get(data, "chrony:enabled"):
        local = _get(data, "chrony:local_servers")
        if local is None:
            local = [n["name"] for n in _get(data, "nodes:roles:lb") or []]
        if me.get("name") in local:
            hosts = _get(data, "topology:hosts") or {}
            add("ntp from the cluster hosts",
                [str(h["ip"]) for _, h in sorted(hosts.items()) if str(h["ip"]) != my_ip],
                "udp", [NTP_PORT])
    return out


def _set(items):
    items = list(items)
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def rule_lines(data, minion_id=None):
    """
    The nft statements of :py:func:`rules`, one string per rule (IPv4 and IPv6 sources
    become separate statements).

    CLI Example:

    .. code-block:: bash

        salt moodle1 state.show_sls moodle_ha.firewall  # the rendered table shows them
    """
    lines = []
    for rule in rules(data, minion_id):
        families = [None]
        if rule["sources"] is not None:
            families = sorted({ipaddress.ip_network(s).version for s in rule["sources"]})
        for version in families:
            parts = []
            if version is not None:
                family = "ip" if version == 4 else "ip6"
                sources = [s for s in rule["sources"]
                           if ipaddress.ip_network(s).version == version]
                parts.append(f"{family} saddr {_set(sources)}")
            if rule["destinations"]:
                dests = [d for d in rule["destinations"]
                         if version is None or ipaddress.ip_address(d).version == version]
                if not dests:
                    continue
                family = "ip" if ipaddress.ip_address(dests[0]).version == 4 else "ip6"
                parts.append(f"{family} daddr {_set(dests)}")
            if rule["proto"] == "vrrp":
                parts.append("ip protocol vrrp")
            else:
                parts.append(f"{rule['proto']} dport {_set(rule['ports'])}")
            parts.append(f'accept comment "{rule["comment"]}"')
            lines.append(" ".join(parts))
    return lines

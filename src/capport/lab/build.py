"""Building and removing the namespace laboratory (`capport lab up` and `down`)."""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from collections.abc import Mapping
from typing import Any

from capport.config import load_config
from capport.lab import dhcp, system
from capport.lab.labconfig import gateway_document, merge, write_config
from capport.lab.system import LabError, ProcessRecord
from capport.lab.topology import (
    CAPTIVE_API_URI,
    CLIENT_ROLES,
    DEFAULT_PREFIX,
    DHCP_RANGE,
    GARDEN_HOST,
    GARDEN_HOST_ADDRESS,
    GARDEN_NETWORK_ADDRESS,
    GATEWAY_LAN_ADDRESS,
    GATEWAY_LAN_ADDRESS6,
    GATEWAY_LAN_MAC,
    GATEWAY_WAN_ADDRESS,
    GATEWAY_WAN_ADDRESS6,
    HOSTS_ROLES,
    LAN_INTERFACE,
    LAN_NETWORK,
    LAN_NETWORK6,
    ORIGIN_HOST,
    PORTAL_HOST,
    PREFIX_LENGTH,
    PREFIX_LENGTH6,
    PROBE_HOSTS,
    UPSTREAM_ADDRESS,
    UPSTREAM_ADDRESS6,
    WAN_INTERFACE,
    Lab,
    hosts_dir,
    plan,
)

log = logging.getLogger("capport.lab")


def up(
    prefix: str = DEFAULT_PREFIX,
    session_duration: float = 3600.0,
    extra_config: Mapping[str, Any] | None = None,
    *,
    start_gateway: bool = True,
    dhcp: bool = False,
    timeout: float = 20.0,
    tls: bool = False,
) -> Lab:
    """Build the laboratory and, unless start_gateway is false, start the gateway in it.

    With dhcp, the clients get their IPv4 addresses from dnsmasq with
    dhclient instead of static ones, and ask DHCPv6 for their options.
    extra_config is merged over the generated configuration, table by table.
    With tls, a local CA (Lab.ca_path) and a certificate for portal.lab are
    created and the gateway serves the portal and its API over HTTPS too.
    On any failure, Ctrl-C included, whatever was built is removed again
    before the error propagates.
    """
    lab = plan(prefix)
    lab.dhcp = dhcp
    existing = [
        name for name in lab.namespaces.values() if system.namespace_exists(name)
    ]
    if existing or lab.state_dir.exists():
        found = ", ".join(existing) or str(lab.state_dir)
        raise LabError(
            f"a laboratory with prefix {prefix!r} already exists ({found}); "
            f"remove it with `capport lab down --prefix {prefix}` or use another prefix"
        )
    started = time.monotonic()
    try:
        _build(lab, session_duration, extra_config or {}, timeout, tls)
        if start_gateway:
            lab.start_gateway(timeout)
    except BaseException:
        log.warning("Building laboratory %s failed; removing what was built.", prefix)
        try:
            down(prefix)
        except LabError as cleanup_error:
            log.error("Removing laboratory %s failed: %s", prefix, cleanup_error)
        raise
    log.info("Built laboratory %s in %.1f s.", prefix, time.monotonic() - started)
    return lab


def down(prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Remove everything named with prefix; return a description of each removal.

    Works on a complete, partial or crashed laboratory and on none at all.
    Only the four namespaces, the two /etc/netns directories and the state
    directory derived from prefix are touched, and only processes inside
    those namespaces or recorded with a matching start time are signalled.
    """
    lab = plan(prefix)
    removed: list[str] = []
    for name, record in _recorded_processes(lab).items():
        if system.is_running(record):
            system.terminate(record)
            removed.append(f"process {name} (PID {record.pid})")
    for namespace in lab.namespaces.values():
        for record in system.namespace_processes(namespace):
            system.terminate(record)
            removed.append(f"process {record.pid} in {namespace}")
    for namespace in lab.namespaces.values():
        if system.namespace_exists(namespace):
            system.run_checked(["ip", "netns", "delete", namespace])
            removed.append(f"namespace {namespace}")
    for directory in [hosts_dir(lab, role) for role in HOSTS_ROLES] + [lab.state_dir]:
        if directory.exists():
            shutil.rmtree(directory)
            removed.append(f"directory {directory}")
    for item in removed:
        log.info("Removed %s.", item)
    return removed


def _recorded_processes(lab: Lab) -> dict[str, ProcessRecord]:
    """Return the processes state.json records, or none if it is unreadable."""
    try:
        data = lab.state_path.read_text()
        return Lab.from_json(_json_object(data)).processes
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as error:
        # The atomic save rules out a half-written file, but a person may have
        # edited it. The namespace scan in down() still finds the processes.
        log.warning("Ignoring unreadable %s: %s", lab.state_path, error)
        return {}


def _json_object(text: str) -> dict[str, Any]:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


# Building, step by step


def _build(
    lab: Lab,
    session_duration: float,
    extra_config: Mapping[str, Any],
    timeout: float,
    tls: bool,
) -> None:
    lab.state_dir.mkdir(parents=True)
    lab.save()
    for namespace in lab.namespaces.values():
        system.run_checked(["ip", "netns", "add", namespace])
        _ip(namespace, "link", "set", "lo", "up")
        # Interfaces created from now on skip duplicate address detection,
        # so their IPv6 addresses are usable at once instead of after about
        # a second. Nothing else on these links can hold the same address.
        sysctl = ["sysctl", "-q", "-w", "net.ipv6.conf.default.accept_dad=0"]
        system.run_checked(system.netns_argv(namespace, sysctl))
    _wire_lan(lab)
    _wire_wan(lab)
    _enable_forwarding(lab)
    _write_hosts(lab)
    document = gateway_document(
        interface=LAN_INTERFACE,
        portal_address=GATEWAY_LAN_ADDRESS,
        state_dir=lab.state_dir,
        session_duration=session_duration,
        extra_config=merge(_dual_stack_config(), extra_config),
        tls=tls,
    )
    write_config(document, lab.config_path)
    if tls:
        # Imported here: cryptography is only needed for a TLS laboratory.
        from capport.tlsinit import init_tls

        files = init_tls(load_config(lab.config_path))
        log.info("Created the laboratory CA %s.", files.ca_certificate)
    _start_origin(lab, timeout)
    dhcp.start_dnsmasq(lab)
    dhcp.wait_for_slaac(lab, timeout)
    if lab.dhcp:
        _lease_addresses(lab, timeout)


def _dual_stack_config() -> dict[str, Any]:
    return {
        "portal": {"address6": GATEWAY_LAN_ADDRESS6},
        "provisioning": {
            "api_uri": CAPTIVE_API_URI,
            "dhcp_range": list(DHCP_RANGE),
            "lease_time": "1h",
            "prefix6": LAN_NETWORK6,
            "hosts": {
                ORIGIN_HOST: [UPSTREAM_ADDRESS, UPSTREAM_ADDRESS6],
                PORTAL_HOST: [GATEWAY_LAN_ADDRESS, GATEWAY_LAN_ADDRESS6],
            },
        },
    }


def _lease_addresses(lab: Lab, timeout: float) -> None:
    for role in CLIENT_ROLES:
        dhcp.start_dhclient4(lab, role)
    for role in CLIENT_ROLES:
        lease = dhcp.wait_for_lease4(lab, role, timeout)
        lab.addresses[role] = dhcp.configure_lease4(lab, role, lease)
        dhcp.request_dhcp6_options(lab, role, timeout)
    lab.save()


def _ip(namespace: str, *argv: str) -> None:
    system.run_checked(["ip", "-n", namespace, *argv])


def _wire_lan(lab: Lab) -> None:
    gateway = lab.namespace("gw")
    # A fixed bridge MAC: by default a bridge takes the lowest MAC of its
    # ports, which would change the gateway's MAC as clients join.
    _ip(
        gateway,
        "link",
        "add",
        LAN_INTERFACE,
        "address",
        GATEWAY_LAN_MAC,
        "type",
        "bridge",
    )
    _ip(
        gateway,
        "address",
        "add",
        f"{GATEWAY_LAN_ADDRESS}/{PREFIX_LENGTH}",
        "dev",
        LAN_INTERFACE,
    )
    _configure_lan_ipv6(gateway)
    _ip(gateway, "link", "set", LAN_INTERFACE, "up")
    for role in CLIENT_ROLES:
        client = lab.namespace(role)
        port = f"lan-{role}"
        # The veth pair is created inside the gateway's namespace with its
        # peer placed straight into the client's, so no interface ever
        # appears in the host's own namespace.
        _ip(
            gateway,
            "link",
            "add",
            port,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            client,
        )
        _ip(gateway, "link", "set", port, "master", LAN_INTERFACE, "up")
        _ip(client, "link", "set", "eth0", "address", lab.macs[role])
        _ip(client, "link", "set", "eth0", "up")
        if lab.dhcp:
            continue
        _ip(
            client,
            "address",
            "add",
            f"{lab.addresses[role]}/{PREFIX_LENGTH}",
            "dev",
            "eth0",
        )
        _ip(client, "route", "add", "default", "via", GATEWAY_LAN_ADDRESS)


def _configure_lan_ipv6(gateway: str) -> None:
    _ip(
        gateway,
        "address",
        "add",
        f"{GATEWAY_LAN_ADDRESS6}/{PREFIX_LENGTH6}",
        "dev",
        LAN_INTERFACE,
        "nodad",
    )
    # Without multicast snooping, the bridge floods IPv6 multicast (router
    # advertisements, neighbour solicitations) to every port like broadcast,
    # whatever MLD reports the clients have or have not sent yet.
    _ip(gateway, "link", "set", LAN_INTERFACE, "type", "bridge", "mcast_snooping", "0")


def _wire_wan(lab: Lab) -> None:
    gateway = lab.namespace("gw")
    upstream = lab.namespace("up")
    _ip(
        gateway,
        "link",
        "add",
        WAN_INTERFACE,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        upstream,
    )
    _ip(
        gateway,
        "address",
        "add",
        f"{GATEWAY_WAN_ADDRESS}/{PREFIX_LENGTH}",
        "dev",
        WAN_INTERFACE,
    )
    _ip(
        gateway,
        "address",
        "add",
        f"{GATEWAY_WAN_ADDRESS6}/{PREFIX_LENGTH6}",
        "dev",
        WAN_INTERFACE,
        "nodad",
    )
    _ip(gateway, "link", "set", WAN_INTERFACE, "up")
    _ip(
        upstream, "address", "add", f"{UPSTREAM_ADDRESS}/{PREFIX_LENGTH}", "dev", "eth0"
    )
    _ip(
        upstream,
        "address",
        "add",
        f"{UPSTREAM_ADDRESS6}/{PREFIX_LENGTH6}",
        "dev",
        "eth0",
        "nodad",
    )
    for extra in (GARDEN_NETWORK_ADDRESS, GARDEN_HOST_ADDRESS):
        _ip(upstream, "address", "add", f"{extra}/32", "dev", "eth0")
    _ip(upstream, "link", "set", "eth0", "up")
    # Routed back without NAT, so the origin receives each client's own address.
    _ip(upstream, "route", "add", LAN_NETWORK, "via", GATEWAY_WAN_ADDRESS)
    _ip(upstream, "-6", "route", "add", LAN_NETWORK6, "via", GATEWAY_WAN_ADDRESS6)


def _enable_forwarding(lab: Lab) -> None:
    gateway = lab.namespace("gw")
    sysctl = [
        "sysctl",
        "-q",
        "-w",
        "net.ipv4.ip_forward=1",
        "net.ipv6.conf.all.forwarding=1",
    ]
    system.run_checked(system.netns_argv(gateway, sysctl))
    # When br_netfilter is loaded on the host, a new namespace starts with
    # bridge-nf-call-* set to 1 and bridged frames pass the IPv4 and IPv6
    # hooks with a bridge port as input interface. A plain router sees them
    # only once, on lan0, so those are switched off in the gateway; -e skips
    # the keys when the module is not loaded.
    bridge_keys = [
        f"net.bridge.bridge-nf-call-{family}=0"
        for family in ("iptables", "ip6tables", "arptables")
    ]
    system.run_checked(
        system.netns_argv(gateway, ["sysctl", "-q", "-e", "-w", *bridge_keys])
    )


def _write_hosts(lab: Lab) -> None:
    hosts = (
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost\n"
        f"{UPSTREAM_ADDRESS}\t{ORIGIN_HOST}\n"
        f"{GATEWAY_LAN_ADDRESS}\t{PORTAL_HOST}\n"
        # The operating systems' probe hosts are served by the origin, so a
        # probe reaches a "real host" once the device has logged in.
        f"{UPSTREAM_ADDRESS}\t{' '.join(PROBE_HOSTS)}\n"
        f"{GARDEN_HOST_ADDRESS}\t{GARDEN_HOST}\n"
    )
    for role in HOSTS_ROLES:
        directory = hosts_dir(lab, role)
        directory.mkdir(parents=True)
        (directory / "hosts").write_text(hosts)


def _start_origin(lab: Lab, timeout: float) -> None:
    argv = [sys.executable, "-m", "capport.lab.origin"]
    record = system.spawn(lab.namespace("up"), argv, lab.origin_log_path)
    lab.processes["origin"] = record
    lab.save()
    lab.wait_for_http("up", f"http://{UPSTREAM_ADDRESS}/", "origin", timeout)

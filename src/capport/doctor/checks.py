"""The host checks of `capport doctor`, each returning a Check with its fix.

Every check only reads, except the port check, which binds and closes the
gateway's listening sockets, and the nftables check, which sends the
ruleset to the kernel as a dry run (nothing is installed). A check that
the running daemon would fail at start is a failure; one that leaves the
gateway running but degraded is a warning.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import os
import resource
import socket
from collections.abc import Callable
from pathlib import Path

from cryptography import x509

from capport import netlink
from capport.config import Config
from capport.doctor import sockets
from capport.doctor.report import Check
from capport.errors import ConfigError
from capport.listeners import (
    FILE_LIMIT_MARGIN,
    check_forwarding,
    listen_addresses,
    tcp_ports,
)

# A certificate that ends sooner than this gets a warning, so there is time
# to renew it before guests' devices reject the portal.
CERTIFICATE_WARNING_DAYS = 30

DHCP_PORTS = (("udp", 67),)
DNS_PORTS = (("udp", 53), ("tcp", 53))


def run_checks(config: Config) -> list[Check]:
    """Run every check against this host and namespace, in a fixed order."""
    checks: list[Callable[[Config], Check]] = [
        check_nftables,
        check_forwarding_on,
        check_interface,
        check_ports,
        check_certificate,
        check_store,
        check_dhcp,
        check_dns,
        check_file_limit,
    ]
    return [check(config) for check in checks]


def check_nftables(config: Config) -> Check:
    try:
        netlink.check_nftables(config)
    except ConfigError as error:
        return Check.fail(
            "nftables",
            f"the kernel rejected the ruleset in a dry run: {error}",
            "run as root or with CAP_NET_ADMIN, on a kernel with nf_tables "
            "(modprobe nf_tables), and install libnftables1",
        )
    return Check.ok("nftables", "the kernel accepts the ruleset in a dry run")


def check_forwarding_on(config: Config) -> Check:
    try:
        check_forwarding()
    except ConfigError as error:
        return Check.fail(
            "forwarding",
            str(error).split(",")[0],
            "sysctl -w net.ipv4.ip_forward=1, and set it in /etc/sysctl.d/",
        )
    return Check.ok("forwarding", "IPv4 forwarding is on")


def check_interface(config: Config) -> Check:
    """Check that the LAN interface exists and carries portal.address."""
    try:
        netlink.check_interface(config)
    except ConfigError as error:
        detail, _, fix = str(error).partition("; ")
        return Check.fail("interface", detail, fix or "correct gateway.interface")
    return Check.ok(
        "interface",
        f"{config.gateway.interface} exists and has {config.portal.address}",
    )


def check_ports(config: Config) -> Check:
    """Check that every listening port is free or taken by the running capport."""
    listeners = [
        (address, port, key)
        for address in listen_addresses(config)
        for key, port in tcp_ports(config).items()
    ]
    if config.admin.enabled:
        listeners.append((str(config.admin.address), config.admin.port, "admin.port"))
    found: dict[int, list[str]] = {}
    absent: list[str] = []
    for address, port, key in listeners:
        error = _bind_error(address, port)
        if error == errno.EADDRNOTAVAIL:
            if address not in absent:
                absent.append(address)
        elif error is not None:
            found.setdefault(error, []).append(f"{key} {address}:{port}")
    if absent:
        # The namespace lacks the address, so a capport that holds the
        # store's lock runs in another namespace and these ports are not its.
        return Check.fail(
            "ports",
            f"{', '.join(absent)} is not an address in this network namespace, "
            "so the gateway cannot listen on it here",
            "run capport doctor in the gateway's network namespace "
            "(ip netns exec NAME capport doctor), or correct the address key",
        )
    busy = found.pop(errno.EADDRINUSE, [])
    if found:
        problems = [
            f"{', '.join(labels)}: {os.strerror(error)}"
            for error, labels in found.items()
        ]
        return Check.fail(
            "ports",
            f"cannot listen on {'; '.join(problems)}",
            "run as root or with CAP_NET_BIND_SERVICE, or change the key",
        )
    if not busy:
        listed = ", ".join(f"{address}:{port}" for address, port, _ in listeners)
        return Check.ok("ports", f"free: {listed}")
    if store_locked(config.store.path):
        return Check.ok("ports", f"in use by the running capport: {', '.join(busy)}")
    return Check.fail(
        "ports",
        f"in use by another program: {', '.join(busy)}",
        "stop that program (`ss -ltnp` names it) or change the key",
    )


def _bind_error(address: str, port: int) -> int | None:
    """Bind and listen on address and port as the daemon does; return the errno."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
            sock.listen(1)
        except OSError as error:
            return error.errno
    return None


def check_certificate(config: Config, now: datetime.datetime | None = None) -> Check:
    tls = config.tls
    if tls.certificate is None:
        return Check.ok("certificate", "no [tls] section; the portal is HTTP only")
    try:
        certificate = x509.load_pem_x509_certificate(tls.certificate.read_bytes())
    except (OSError, ValueError) as error:
        return Check.fail(
            "certificate",
            f"cannot load {tls.certificate}: {error}",
            "fix tls.certificate, or run `capport tls init`",
        )
    return certificate_validity(certificate, tls.hostname or "", now)


def certificate_validity(
    certificate: x509.Certificate, hostname: str, now: datetime.datetime | None = None
) -> Check:
    """Check the validity period and the subjectAltName of certificate."""
    now = now or datetime.datetime.now(datetime.UTC)
    ends = certificate.not_valid_after_utc
    left = ends - now
    renew = "renew the certificate (for a local CA: capport tls init --force)"
    if certificate.not_valid_before_utc > now:
        return Check.fail(
            "certificate",
            f"not valid before {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
            "check the gateway's clock, or issue a certificate valid now",
        )
    if left <= datetime.timedelta(0):
        return Check.fail("certificate", f"expired on {ends:%Y-%m-%d}", renew)
    if hostname and hostname not in _dns_names(certificate):
        return Check.fail(
            "certificate",
            f"does not name {hostname} in its subjectAltName",
            "issue a certificate for tls.hostname",
        )
    if left < datetime.timedelta(days=CERTIFICATE_WARNING_DAYS):
        return Check.warn(
            "certificate", f"expires in {left.days} days, on {ends:%Y-%m-%d}", renew
        )
    return Check.ok("certificate", f"valid until {ends:%Y-%m-%d} ({left.days} days)")


def _dns_names(certificate: x509.Certificate) -> list[str]:
    try:
        extension = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        )
    except x509.ExtensionNotFound:
        return []
    return extension.value.get_values_for_type(x509.DNSName)


def check_store(config: Config) -> Check:
    """The store file, or the directory it will be created in, is writable.

    SQLite in WAL mode also creates -wal and -shm files beside the store,
    so the directory must be writable too.
    """
    path = config.store.path
    directory = _existing_parent(path)
    if directory != path.parent:
        if not os.access(directory, os.W_OK):
            return Check.fail(
                "store",
                f"{path.parent} does not exist and {directory} is not writable",
                f"create {path.parent} (systemd: StateDirectory=capport)",
            )
        return Check.ok("store", f"{path.parent} will be created at the first start")
    if not directory.is_dir():
        return Check.fail(
            "store", f"{path.parent} is not a directory", "correct store.path"
        )
    if not os.access(directory, os.W_OK):
        return Check.fail(
            "store",
            f"{directory} is not writable",
            f"give the daemon write access to {directory}",
        )
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return Check.fail(
            "store", f"{path} is not writable", f"chmod 600 {path} as its owner"
        )
    state = "exists and is writable" if path.exists() else "will be created"
    return Check.ok("store", f"{path} {state}")


def _existing_parent(path: Path) -> Path:
    directory = path.parent
    while not directory.exists() and directory != directory.parent:
        directory = directory.parent
    return directory


def check_dhcp(config: Config) -> Check:
    return _service_check(
        "dhcp",
        config,
        DHCP_PORTS,
        "a DHCP server on the LAN (dnsmasq or isc-kea); without one, devices "
        "get no address unless a relay or another host serves them",
    )


def check_dns(config: Config) -> Check:
    return _service_check(
        "dns",
        config,
        DNS_PORTS,
        "a DNS resolver listening on the portal address (dnsmasq or unbound), "
        "and point the DHCP server's DNS option at it",
    )


def _service_check(
    name: str, config: Config, ports: tuple[tuple[str, int], ...], fix: str
) -> Check:
    # capport opens these ports to captive devices but runs neither service,
    # so a missing one is a warning: another host may serve the LAN.
    address = config.portal.address
    missing = [
        f"{protocol.upper()} {port}"
        for protocol, port in ports
        if not sockets.reaches(sockets.bound(protocol, port), address)
    ]
    if missing:
        return Check.warn(
            name, f"nothing listens on {address} {', '.join(missing)}", f"run {fix}"
        )
    described = ", ".join(f"{protocol.upper()} {port}" for protocol, port in ports)
    return Check.ok(name, f"a service listens on {address} {described}")


def check_file_limit(config: Config) -> Check:
    needed = (
        config.responder.max_connections
        + config.portal.max_connections
        + FILE_LIMIT_MARGIN
    )
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    fix = (
        f"set LimitNOFILE={needed} or more in the unit, or lower the connection limits"
    )
    if soft >= needed:
        return Check.ok("open files", f"limit {soft}, needed {needed}")
    if hard == resource.RLIM_INFINITY or hard >= needed:
        return Check.ok(
            "open files",
            f"soft limit {soft}, raised to {needed} at start (hard {hard})",
        )
    return Check.warn(
        "open files", f"hard limit {hard} is below the {needed} needed", fix
    )


def store_locked(store_path: Path) -> bool:
    """Tell whether a capport holds the lock beside the store, so it runs."""
    lock = store_path.with_name(store_path.name + ".lock")
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as error:
        return error.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    finally:
        os.close(fd)
    return False

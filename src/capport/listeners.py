"""Host resources the daemon takes before it changes the firewall.

Everything here can fail because of another program on the host (a port in
use, a second capport, a low descriptor limit), so it runs, and reports the
configuration key to change, before the nftables table is installed.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import resource
import socket
from pathlib import Path

from capport.config import Config
from capport.errors import ConfigError

log = logging.getLogger("capport.daemon")

# Descriptors beyond the responder's connections: the portal's and the
# control socket's connections, the store, netlink and libnftables sockets.
FILE_LIMIT_MARGIN = 1024


def tcp_ports(config: Config) -> dict[str, int]:
    """Return the TCP ports the daemon listens on, by configuration key."""
    ports = {"portal.port": config.portal.port, "responder.port": config.responder.port}
    if config.tls.enabled:
        ports["tls.port"] = config.tls.port
    return ports


def listen_addresses(config: Config) -> list[str]:
    """Return portal.address and, when set, portal.address6."""
    addresses = [str(config.portal.address)]
    if config.portal.address6 is not None:
        addresses.append(str(config.portal.address6))
    return addresses


def bind_tcp(address: str, port: int, key: str, backlog: int = 1024) -> socket.socket:
    """Return a listening, non-blocking socket, or raise ConfigError naming key."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(backlog)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"{key}: {address}:{port} is already in use by another program; "
                "stop it (is another capport running?) or choose another port"
            ) from None
        raise ConfigError(
            f"{key}: cannot listen on {address}:{port}: {error.strerror}"
        ) from None
    sock.setblocking(False)
    return sock


def check_listeners(config: Config) -> None:
    """Raise ConfigError if a port the daemon needs cannot be bound."""
    for address in listen_addresses(config):
        for key, port in tcp_ports(config).items():
            bind_tcp(address, port, key).close()


class InstanceLock:
    """An exclusive lock beside the store, so one store has one daemon.

    Two daemons on one store would each rebuild the firewall from it and
    reset each other's counters. flock(2) is released by the kernel when the
    process dies, so a killed daemon leaves no stale lock.
    """

    def __init__(self, store_path: Path) -> None:
        self.path = store_path.with_name(store_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise self._held() from None
        self._fd = fd

    def check_free(self) -> None:
        """Raise ConfigError if another process holds the lock; create nothing."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            # Without a lock file no capport runs on this store. A file this
            # user cannot open is left to acquire(), which names the reason.
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise self._held() from None
        finally:
            os.close(fd)

    def _held(self) -> ConfigError:
        return ConfigError(
            f"store.path: another capport is already running with the store "
            f"{self.path.with_suffix('')} (lock {self.path} is held)"
        )

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def check_forwarding() -> None:
    """Raise ConfigError unless the kernel forwards IPv4 in this namespace."""
    path = Path("/proc/sys/net/ipv4/ip_forward")
    try:
        enabled = path.read_text().strip() == "1"
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    if not enabled:
        raise ConfigError(
            "IPv4 forwarding is off (net.ipv4.ip_forward = 0), so authorised "
            "devices could not reach anything; enable it with "
            "`sysctl -w net.ipv4.ip_forward=1` and in /etc/sysctl.d/"
        )


def raise_file_limit(needed: int) -> None:
    """Raise RLIMIT_NOFILE to at least needed, or warn that it is too low.

    systemd starts services with a soft limit of 1024. Below the responder's
    connection limit, the event loop closes new connections silently once
    descriptors run out, which would cut off the portal for every device.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else max(needed, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, max(target, hard)))
    except (ValueError, OSError) as error:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        log.warning(
            "The open-file limit is %d but the responder may need %d (%s); "
            "lower responder.max_connections or raise LimitNOFILE.",
            hard,
            needed,
            error,
        )
        return
    log.info("Raised the open-file limit from %d to %d.", soft, target)

"""The intercepting responder: an asyncio server that responds to every request.

nftables redirects TCP port 80 of unauthenticated devices here. The server
admits connections within the configured limits, runs one
InterceptConnection per connection, and closes connections whose deadline
has passed from one periodic sweep rather than one timer each.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from capport.config import ResponderSection
from capport.intercept.connection import LINGER_SECONDS, InterceptConnection
from capport.intercept.destination import socket_address_ip
from capport.intercept.responses import ResponseBuilder
from capport.logformat import RepeatCounter, suppressed_note
from capport.models import Epoch, IPAddress
from capport.probes import ProbeTable, merge_probes
from capport.tokens import TokenSigner

log = logging.getLogger("capport.intercept")

# An identical warning (connection limits, internal errors) is logged at most
# once per this many seconds, with the number left out since the last one.
LOG_INTERVAL_SECONDS = 60.0

# Complete responses are cached for the current wall-clock second, because
# each carries a Date and a portal token stamped with the second it was built
# in. Only responses up to MAX_CACHED_RESPONSE_BYTES are kept, which bounds
# the cache's memory whatever URLs devices send.
MAX_CACHED_RESPONSES = 1024
MAX_CACHED_RESPONSE_BYTES = 4096

# Parsed client addresses are kept for reuse up to this many entries.
MAX_CACHED_CLIENT_IPS = 4096


@dataclass(frozen=True, slots=True)
class Limits:
    """The per-connection limits, copied from ResponderSection."""

    max_header_bytes: int
    max_target_bytes: int
    max_body_bytes: int
    header_timeout: float
    keepalive_timeout: float

    @classmethod
    def from_settings(cls, settings: ResponderSection) -> Limits:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            max_target_bytes=settings.max_target_bytes,
            max_body_bytes=settings.max_body_bytes,
            header_timeout=settings.header_timeout,
            keepalive_timeout=settings.keepalive_timeout,
        )


@dataclass(slots=True)
class ResponderStats:
    """Counters since the responder started, for metrics."""

    connections_accepted: int = 0
    connections_rejected: int = 0
    open_connections: int = 0
    requests: int = 0
    captive_responses: int = 0
    redirects: int = 0
    errors: int = 0
    timeouts: int = 0


class Responder:
    """Responds to intercepted HTTP requests with 511 (or 307 once logged in).

    portal_url is the portal's base URL ending in "/". is_authorised tells
    whether a client IP has logged in since its connection was redirected.
    portal_url6, when given, is the portal link for clients that connect
    over IPv6, so that a device without IPv4 gets a link it can follow.
    has_session returns whether any session has a client IP, and
    address_epoch advances whenever an IP gains one. Given both, a
    connection whose client has no session skips is_authorised until the
    epoch moves on.
    """

    def __init__(
        self,
        settings: ResponderSection,
        portal_url: str,
        signer: TokenSigner,
        is_authorised: Callable[[IPAddress], bool],
        probes: ProbeTable | None = None,
        portal_url6: str | None = None,
        has_session: Callable[[IPAddress], bool] | None = None,
        address_epoch: Epoch | None = None,
    ) -> None:
        self.settings = settings
        # The built-in probe table unless the configuration gives one.
        self.probes = probes if probes is not None else ProbeTable(merge_probes(()))
        self.limits = Limits.from_settings(settings)
        self.builder = ResponseBuilder(portal_url, signer)
        self.response_cache: dict[Hashable, bytes] = {}
        # Responses to IPv6 clients differ in their portal link, so they
        # have a builder and a cache of their own.
        self.builder6 = self.builder
        self.response_cache6 = self.response_cache
        if portal_url6 is not None and portal_url6 != portal_url:
            self.builder6 = ResponseBuilder(portal_url6, signer)
            self.response_cache6 = {}
        self._client_ips: dict[str, IPAddress] = {}
        self.is_authorised = is_authorised
        if has_session is None or address_epoch is None:
            # Without both, every request calls is_authorised.
            has_session, address_epoch = _always_has_session, Epoch()
        self.has_session = has_session
        self.address_epoch = address_epoch
        self.stats = ResponderStats()
        self._connections: set[InterceptConnection] = set()
        self._per_client: dict[str, int] = {}
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._cache_timer: asyncio.TimerHandle | None = None
        # Client addresses and errors are part of each message, so one
        # client's repeats are counted and no other client's line is lost.
        self._repeats = RepeatCounter(LOG_INTERVAL_SECONDS)

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Return the (host, port) pairs the responder listens on."""
        if self._server is None:
            return []
        return [sock.getsockname()[:2] for sock in self._server.sockets]

    async def start(self, host: str | Sequence[str], port: int) -> None:
        """Listen on host (one address or several) and port; 0 picks a free port."""
        if self._server is not None:
            raise RuntimeError("the responder is already running")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: InterceptConnection(self),
            host,
            port,
            reuse_address=True,
            # Match the listen queue to the connection limit so a burst of
            # new connections waits in the kernel instead of being dropped.
            backlog=min(self.settings.max_connections, 4096),
        )
        self._sweeper = asyncio.create_task(self._sweep(), name="capport.intercept")
        self._clear_cache()
        log.info(
            "Intercepting responder listening on %s.",
            ", ".join(f"{h}:{p}" for h, p in self.addresses),
        )

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        if self._server is None:
            return
        self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._cache_timer is not None:
            self._cache_timer.cancel()
        for connection in list(self._connections):
            connection.abort()
        await self._server.wait_closed()
        self._server = None
        self._sweeper = None
        self._cache_timer = None
        self.response_cache.clear()
        self.response_cache6.clear()
        log.info(
            "Intercepting responder stopped after %d requests (%d got 511).",
            self.stats.requests,
            self.stats.captive_responses,
        )

    # Called by the connections

    def client_ip(self, peername: tuple[str, int] | Any) -> IPAddress:
        """Return the IP address of a peer, parsed once per address."""
        ip = self._client_ips.get(peername[0])
        if ip is None:
            if len(self._client_ips) >= MAX_CACHED_CLIENT_IPS:
                self._client_ips.clear()
            ip = socket_address_ip(peername)
            self._client_ips[peername[0]] = ip
        return ip

    def cache_response(
        self,
        key: Hashable,
        response: bytes,
        cache: dict[Hashable, bytes] | None = None,
    ) -> None:
        """Keep response for reuse by requests with the same key this second.

        cache is response_cache (the default) or response_cache6.
        """
        if len(response) > MAX_CACHED_RESPONSE_BYTES:
            return
        if cache is None:
            cache = self.response_cache
        if len(cache) >= MAX_CACHED_RESPONSES:
            # Dicts keep insertion order, so this evicts the oldest entry.
            del cache[next(iter(cache))]
        cache[key] = response

    def admit(self, connection: InterceptConnection) -> bool:
        """Register connection if the total and per-client limits allow it."""
        self.stats.connections_accepted += 1
        key = connection.client_key
        count = self._per_client.get(key, 0)
        if len(self._connections) >= self.settings.max_connections:
            self._reject_connection(connection, "the responder is at max_connections")
            return False
        if count >= self.settings.max_connections_per_client:
            self._reject_connection(connection, "it is at max_connections_per_client")
            return False
        self._connections.add(connection)
        self._per_client[key] = count + 1
        self.stats.open_connections = len(self._connections)
        return True

    def release(self, connection: InterceptConnection) -> None:
        """Forget a closed connection; unknown connections are ignored."""
        if connection not in self._connections:
            return
        self._connections.remove(connection)
        self.stats.open_connections = len(self._connections)
        key = connection.client_key
        count = self._per_client.get(key, 0) - 1
        if count > 0:
            self._per_client[key] = count
        else:
            self._per_client.pop(key, None)

    def report_error(self, error: BaseException, client_ip: IPAddress) -> None:
        """Log an unexpected error raised while serving client_ip, rate-limited."""
        message = (
            f"Serving a connection from {client_ip} failed with {error!r}; the "
            "connection was closed."
        )
        suppressed = self._repeats.check(message)
        if suppressed is None:
            return
        log.error("%s", message + suppressed_note(suppressed), exc_info=error)

    # Internal

    def _reject_connection(self, connection: InterceptConnection, reason: str) -> None:
        self.stats.connections_rejected += 1
        message = f"Rejected a connection from {connection.client_ip} because {reason}."
        suppressed = self._repeats.check(message)
        if suppressed is not None:
            log.warning("%s", message + suppressed_note(suppressed))

    def _clear_cache(self) -> None:
        self.response_cache.clear()
        self.response_cache6.clear()
        # Run again just after the next second begins; the 1 ms margin keeps
        # an early timer from clearing twice within the old second.
        delay = 1.001 - time.time() % 1.0
        loop = asyncio.get_running_loop()
        self._cache_timer = loop.call_later(delay, self._clear_cache)

    async def _sweep(self) -> None:
        limits = self.limits
        shortest = min(limits.header_timeout, limits.keepalive_timeout, LINGER_SECONDS)
        # A deadline is enforced up to one interval late.
        interval = min(1.0, max(0.05, shortest / 4))
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            for connection in [c for c in self._connections if c.deadline <= now]:
                try:
                    connection.time_out()
                except Exception as error:  # noqa: BLE001 - the sweep must go on
                    self.report_error(error, connection.client_ip)
                    connection.abort()


def _always_has_session(ip: IPAddress) -> bool:
    return True

"""Connection limits and a request timeout for the portal's HTTP listener.

uvicorn closes idle keep-alive connections but has no per-client limit and
no deadline for a request that arrives slowly, so one LAN device could hold
every descriptor of the gateway. The guarded protocol adds both: a client
may keep a bounded number of connections, and each request must arrive
whole within a deadline measured from the connection's start or from the
previous response.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from capport.logformat import RepeatCounter, suppressed_note
from capport.portal.accesslog import log_request

log = logging.getLogger("capport.portal")

# Connections closed at the limit are logged once per client and this
# interval, and the others are counted.
REJECTION_LOG_INTERVAL_SECONDS = 60.0


@dataclass
class ConnectionGuard:
    """Limits shared by every connection of one listener."""

    max_connections: int
    max_per_client: int
    request_timeout: float
    open_by_client: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    timed_out: int = 0
    repeats: RepeatCounter = field(
        default_factory=lambda: RepeatCounter(REJECTION_LOG_INTERVAL_SECONDS)
    )

    @property
    def open_total(self) -> int:
        return self.open_by_client.total()

    def admit(self, client: str) -> bool:
        """Count a new connection from client, unless a limit is reached."""
        if (
            self.open_total >= self.max_connections
            or self.open_by_client[client] >= self.max_per_client
        ):
            self.rejected += 1
            self._log_rejection(client)
            return False
        self.open_by_client[client] += 1
        return True

    def _log_rejection(self, client: str) -> None:
        # The limits are the same for every connection, so messages differ
        # only in the client address, which is the key.
        suppressed = self.repeats.check(client)
        if suppressed is None:
            return
        log.warning(
            "Closed a portal connection from %s at its limit (%d per client, "
            "%d in total).%s",
            client,
            self.max_per_client,
            self.max_connections,
            suppressed_note(suppressed),
        )

    def release(self, client: str) -> None:
        self.open_by_client[client] -= 1
        if self.open_by_client[client] <= 0:
            del self.open_by_client[client]


def guarded_protocol(guard: ConnectionGuard) -> type[HttpToolsProtocol]:
    """Return an httptools protocol class that enforces guard's limits."""

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _admitted_client: str | None = None
        _request_timer: asyncio.TimerHandle | None = None
        # When the connection opened or the previous response was sent. A
        # rejected request's duration is measured from here.
        _request_started: float = 0.0

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            client = self.client[0] if self.client else "unknown"
            if not guard.admit(client):
                transport.abort()
                return
            self._admitted_client = client
            self._arm_request_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_request_timer()
            if self._admitted_client is not None:
                guard.release(self._admitted_client)
                self._admitted_client = None
            super().connection_lost(exc)

        def send_400_response(self, msg: str) -> None:
            # uvicorn sends this 400 itself when httptools cannot parse a
            # request (a malformed request line or header), without calling
            # the application, so the access log middleware never receives it.
            super().send_400_response(msg)
            client = self.client[0] if self.client else "-"
            log_request(client, "-", "-", 400, self._request_elapsed())

        def _request_elapsed(self) -> float:
            return time.perf_counter() - self._request_started

        def on_message_complete(self) -> None:
            self._cancel_request_timer()
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_request_timer()

        def _arm_request_timer(self) -> None:
            self._cancel_request_timer()
            self._request_started = time.perf_counter()
            self._request_timer = self.loop.call_later(
                guard.request_timeout, self._request_timed_out
            )

        def _cancel_request_timer(self) -> None:
            if self._request_timer is not None:
                self._request_timer.cancel()
                self._request_timer = None

        def _request_timed_out(self) -> None:
            self._request_timer = None
            if not self.transport.is_closing():
                guard.timed_out += 1
                self.transport.close()

    return GuardedHttpToolsProtocol

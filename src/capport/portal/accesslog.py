"""The portal's access log: one line per request on the `capport.access` logger.

The query string is left out, because the portal's links carry signed
tokens in it, and so is every header.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("capport.access")


class AccessLogMiddleware:
    """Logs client address, method, path, status and duration of each request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self._log(scope, status, time.perf_counter() - started)

    @staticmethod
    def _log(scope: Scope, status: int, seconds: float) -> None:
        client = scope.get("client")
        log_request(
            client[0] if client else "-",
            scope.get("method", "-"),
            scope.get("path", "-"),
            status,
            seconds,
        )


def log_request(
    address: str, method: str, path: str, status: int, seconds: float
) -> None:
    """Log one access line; "-" stands for a part the request did not give."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    duration_ms = round(seconds * 1000, 1)
    access_log.info(
        "%s %s %s %d %.1f ms",
        address,
        method,
        path,
        status,
        duration_ms,
        extra={
            "client": address,
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
        },
    )

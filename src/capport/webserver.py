"""uvicorn servers embedded in the daemon, each logging its start and stop by name.

The daemon runs up to four uvicorn servers in one process (portal over
HTTP and HTTPS, admin API, control socket). uvicorn's own lifecycle lines,
such as "Started server process [PID]" and "Shutting down", name neither the
server nor its address, so four identical copies of each reached the log.
They are dropped, and each server logs one line naming itself and its
addresses when it starts and one when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

log = logging.getLogger("capport.daemon")

# Message templates of uvicorn 0.55's lifecycle lines on "uvicorn.error"
# (uvicorn/server.py and uvicorn/lifespan/on.py). A template that a later
# version changes passes the filter again, which only brings back the
# unnamed line.
UVICORN_LIFECYCLE_MESSAGES = frozenset(
    {
        "Started server process [%d]",
        "Finished server process [%d]",
        "Shutting down",
        "Waiting for application startup.",
        "Application startup complete.",
        "Waiting for application shutdown.",
        "Application shutdown complete.",
        "Waiting for connections to close. (CTRL+C to force quit)",
        "Waiting for background tasks to complete. (CTRL+C to force quit)",
    }
)


class UvicornLifecycleFilter(logging.Filter):
    """Drops uvicorn's lifecycle lines, which EmbeddedServer replaces."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in UVICORN_LIFECYCLE_MESSAGES


def silence_uvicorn_lifecycle() -> None:
    """Install UvicornLifecycleFilter on uvicorn's logger, once."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, UvicornLifecycleFilter) for f in logger.filters):
        logger.addFilter(UvicornLifecycleFilter())


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the daemon.

    name says what it serves ("portal", "admin API") in its log lines.
    """

    def __init__(self, config: uvicorn.Config, name: str) -> None:
        super().__init__(config)
        self.name = name
        self._addresses = ""
        silence_uvicorn_lifecycle()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        scheme = "https" if self.config.is_ssl else "http"
        self._addresses = ", ".join(
            describe_socket(sock, scheme) for sock in sockets or []
        )
        log.info("Serving the %s on %s.", self.name, self._addresses)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        open_connections = len(self.server_state.connections)
        if open_connections:
            log.info(
                "Stopping the %s on %s: waiting up to %.0f s for %d open "
                "connections to finish.",
                self.name,
                self._addresses,
                self.config.timeout_graceful_shutdown or 0,
                open_connections,
            )
        await super().shutdown(sockets)
        log.info("Stopped the %s on %s.", self.name, self._addresses)


def describe_socket(sock: socket.socket, scheme: str) -> str:
    """Return a listening socket as a URL base, or a Unix socket as its path."""
    if sock.family == socket.AF_UNIX:
        return str(Path(sock.getsockname()))
    host, port = sock.getsockname()[:2]
    if sock.family == socket.AF_INET6:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def web_server(
    app: ASGIApp,
    name: str,
    *,
    http: type[asyncio.Protocol] | str = "httptools",
    certificate: Path | None = None,
    key: Path | None = None,
) -> EmbeddedServer:
    """Return a server for app that the daemon starts with its own sockets."""
    config = uvicorn.Config(
        app,
        loop="none",
        http=http,
        lifespan="off",
        log_config=None,
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=3,
        ssl_certfile=str(certificate) if certificate is not None else None,
        ssl_keyfile=str(key) if key is not None else None,
    )
    return EmbeddedServer(config, name)

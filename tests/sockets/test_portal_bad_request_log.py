"""Access log lines for requests that the portal's HTTP parser rejects."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from capport.portal.accesslog import AccessLogMiddleware
from capport.portal.guard import ConnectionGuard, guarded_protocol


async def hello(request: object) -> PlainTextResponse:
    return PlainTextResponse("hello")


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[int]:
    app = AccessLogMiddleware(Starlette(routes=[Route("/", hello)]))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    guard = ConnectionGuard(100, 10, request_timeout=5.0)
    config = uvicorn.Config(
        app, http=guarded_protocol(guard), lifespan="off", log_config=None
    )
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


def exchange(request: bytes) -> bytes:
    """Send request to a portal on loopback and return its whole response."""

    async def main() -> bytes:
        async with serving() as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            response = await asyncio.wait_for(reader.read(), 5.0)
            writer.close()
            return response

    return asyncio.run(main())


@pytest.fixture(autouse=True)
def _propagate_access() -> None:
    # configure_logging in other tests may have stopped propagation to the
    # root logger, where caplog listens.
    logging.getLogger("capport.access").propagate = True


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "capport.access"]


def test_malformed_request_line_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "capport.access")
    response = exchange(b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 400 ")
    [record] = access_records(caplog)
    assert record.client == "127.0.0.1"
    assert record.status == 400
    assert record.getMessage().startswith("127.0.0.1 - - 400 ")


def test_malformed_header_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "capport.access")
    response = exchange(b"GET / HTTP/1.1\r\nHost x\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 400 ")
    assert [r.status for r in access_records(caplog)] == [400]


def test_valid_request_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "capport.access")
    exchange(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert [r.status for r in access_records(caplog)] == [200]

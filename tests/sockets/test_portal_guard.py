"""The portal listener's per-client limit and request deadline."""

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from capport.portal.guard import ConnectionGuard, guarded_protocol


async def hello(request: object) -> PlainTextResponse:
    return PlainTextResponse("hello")


@contextlib.asynccontextmanager
async def serving(guard: ConnectionGuard) -> AsyncIterator[int]:
    app = Starlette(routes=[Route("/", hello)])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    config = uvicorn.Config(
        app, http=guarded_protocol(guard), lifespan="off", log_config=None
    )
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task


async def get(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    response = await reader.read()
    writer.close()
    return response


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), seconds) == b""
    except TimeoutError:
        return False


def test_idle_connection_closed_at_deadline() -> None:
    async def scenario() -> tuple[bool, bool]:
        guard = ConnectionGuard(100, 10, request_timeout=0.5)
        async with serving(guard) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            early = await closed_within(reader, 0.2)
            late = await closed_within(reader, 1.5)
            writer.close()
        return early, late

    early, late = asyncio.run(scenario())
    assert not early
    assert late


def test_partial_request_closed_at_deadline() -> None:
    async def scenario() -> bool:
        guard = ConnectionGuard(100, 10, request_timeout=0.5)
        async with serving(guard) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
            closed = await closed_within(reader, 2.0)
            writer.close()
        return closed

    assert asyncio.run(scenario())


def test_per_client_limit_closes_extra() -> None:
    async def scenario() -> tuple[list[bool], bytes, int]:
        guard = ConnectionGuard(100, 3, request_timeout=5)
        async with serving(guard) as port:
            held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            extra_closed = await closed_within(reader, 1.0)
            writer.close()
            for _, held_writer in held:
                held_writer.close()
            await asyncio.sleep(0.2)
            after = await get(port)
        return [extra_closed], after, guard.rejected

    closed, after, rejected = asyncio.run(scenario())
    assert closed == [True]
    assert rejected == 1
    assert after.startswith(b"HTTP/1.1 200")


def test_keepalive_request_after_response_allowed() -> None:
    async def scenario() -> list[bytes]:
        guard = ConnectionGuard(100, 10, request_timeout=1.0)
        async with serving(guard) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            answers = []
            for _ in range(2):
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                answers.append(await reader.readuntil(b"hello"))
            writer.close()
        return answers

    answers = asyncio.run(scenario())
    assert all(answer.startswith(b"HTTP/1.1 200") for answer in answers)

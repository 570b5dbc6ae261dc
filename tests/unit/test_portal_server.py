"""The portal served by uvicorn with httptools on a real loopback socket."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from ipaddress import ip_address

import httpx
import pytest
import uvicorn

from capport.config import parse_config
from capport.enforce.base import MemoryEnforcer
from capport.gateway import Gateway
from capport.models import Device
from capport.neighbours import MemoryNeighbours
from capport.portal import create_portal_app
from capport.store import SQLiteStore
from capport.tokens import TokenSigner

LOOPBACK = "127.0.0.1"
LOOPBACK_MAC = "02:00:00:00:00:7f"
CAPTURED_URL = "http://example.com/after-login"

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Served:
    base_url: str
    port: int
    enforcer: MemoryEnforcer
    signer: TokenSigner


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((LOOPBACK, 0))
    port = listener.getsockname()[1]

    store = SQLiteStore(":memory:")
    enforcer = MemoryEnforcer()
    neighbours = MemoryNeighbours({ip_address(LOOPBACK): LOOPBACK_MAC})
    gateway = Gateway(store, enforcer, neighbours, session_duration=600.0)
    signer = TokenSigner(b"server-test-token-secret", lifetime=900.0)
    config = parse_config(
        {"gateway": {"interface": "lo"}, "portal": {"address": LOOPBACK, "port": port}}
    )
    app = create_portal_app(gateway, signer, config, b"server-test-csrf-secret")
    await store.open()
    await gateway.start()

    server = uvicorn.Server(
        uvicorn.Config(
            app, http="httptools", lifespan="off", log_level="warning", access_log=False
        )
    )
    task = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield Served(f"http://{LOOPBACK}:{port}", port, enforcer, signer)
    finally:
        server.should_exit = True
        await task
        listener.close()
        await store.close()


async def test_served_accept_grants_and_redirects(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.base_url, trust_env=False) as client:
        splash = await client.get("/")
        csrf = splash.text.split('name="csrf" value="')[1].split('"')[0]
        response = await client.post(
            "/accept",
            data={"csrf": csrf, "t": served.signer.sign(CAPTURED_URL)},
            headers={"Origin": served.base_url},
        )
    assert response.status_code == 303
    assert response.headers["location"] == CAPTURED_URL
    assert Device.parse(LOOPBACK_MAC, LOOPBACK) in served.enforcer.authorised()


async def test_served_malformed_request_gets_400(served: Served) -> None:
    reader, writer = await asyncio.open_connection(LOOPBACK, served.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    assert status_line.startswith(b"HTTP/1.1 400")


async def test_served_after_malformed_request_still_serves(served: Served) -> None:
    reader, writer = await asyncio.open_connection(LOOPBACK, served.port)
    writer.write(b"\x00\x01garbage\r\n\r\n")
    await writer.drain()
    await reader.read()
    writer.close()
    await writer.wait_closed()
    async with httpx.AsyncClient(base_url=served.base_url, trust_env=False) as client:
        response = await client.get("/status")
    assert response.status_code == 200

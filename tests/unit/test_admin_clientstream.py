"""The admin API's client list, encoded a chunk of sessions at a time."""

from __future__ import annotations

import asyncio
import sqlite3
from ipaddress import IPv6Address, ip_address
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from starlette.testclient import TestClient

from capport.admin.app import create_socket_app
from capport.admin.clientstream import (
    CHUNK_SESSIONS,
    client_list_body,
    sort_sessions,
)
from capport.admin.context import AdminContext
from capport.admin.history import Sampler
from capport.admin.schemas import Client, ClientList
from capport.bench.devices import fake_device
from capport.enforce.base import MemoryEnforcer
from capport.gateway import Clocks, Gateway
from capport.lan import Lan
from capport.models import Session
from capport.neighbours import MemoryNeighbours
from capport.store.sqlite import SQLiteStore

# More than two chunks, the last one partial.
SESSIONS = 2 * CHUNK_SESSIONS + 500
WALL = 1_700_000_000.0
# FastAPI encodes a response_model with pydantic's JSON encoder of the model.
CLIENT_LIST = TypeAdapter(ClientList)


def session(index: int) -> Session:
    device = fake_device(index)
    subject = None if index % 3 else f"user{index % 7}"
    return Session(
        index + 1, device, "password", WALL - index, WALL + 600, None, None, subject
    )


def describe(session: Session) -> Client:
    """Describe session with values that depend on it alone."""
    return Client(
        session=session.id,
        mac=session.device.mac,
        ip=str(session.device.ip),
        method=session.method,
        subject=session.subject,
        since=session.started_at,
        expires=session.expires_at + 0.25,
        remaining=round(600 - session.id / 7, 1),
        bytes_up=session.id * 1500,
        bytes_down=session.id * 4000,
        learned_ipv6=[f"2001:db8::{session.id:x}"] if session.id % 5 == 0 else [],
    )


def collect(sessions: list[Session]) -> list[bytes]:
    async def chunks() -> list[bytes]:
        return [chunk async for chunk in client_list_body(sessions, describe)]

    return asyncio.run(chunks())


def test_body_is_the_client_list_encoding() -> None:
    sessions = [session(index) for index in range(SESSIONS)]

    body = b"".join(collect(sessions))

    expected = ClientList(clients=[describe(s) for s in sessions])
    assert body == CLIENT_LIST.dump_json(expected)


def test_body_comes_in_chunks_of_sessions() -> None:
    chunks = collect([session(index) for index in range(SESSIONS)])

    # The opening and closing brackets, and three chunks of sessions.
    assert len(chunks) == 5


def test_empty_body_is_the_empty_list_encoding() -> None:
    assert b"".join(collect([])) == CLIENT_LIST.dump_json(ClientList(clients=[]))


def test_sort_by_subject_puts_none_first() -> None:
    sessions = [session(index) for index in range(20)]

    sort_sessions(sessions, describe, "subject", descending=False)

    subjects = [s.subject for s in sessions]
    assert subjects[: subjects.count(None)] == [None] * subjects.count(None)
    named = [subject for subject in subjects if subject is not None]
    assert named == sorted(named)


def test_sort_descending_by_client_field() -> None:
    sessions = [session(index) for index in range(20)]

    sort_sessions(sessions, describe, "remaining", descending=True)

    remaining = [describe(s).remaining for s in sessions]
    assert remaining == sorted(remaining, reverse=True)


def test_sort_by_session_descending() -> None:
    sessions = [session(index) for index in range(20)]

    sort_sessions(sessions, describe, "session", descending=True)

    assert [s.id for s in sessions] == list(range(20, 0, -1))


def test_equal_sort_values_keep_session_order() -> None:
    sessions = [session(index) for index in range(20)]

    sort_sessions(sessions, describe, "method", descending=True)

    assert [s.id for s in sessions] == list(range(1, 21))


# Through the control socket's application, on a started gateway


def started_context(path: Path, sessions: int) -> AdminContext:
    """Start a gateway with fixed clocks on a store of sessions active sessions."""

    async def start() -> AdminContext:
        schema = SQLiteStore(path)
        await schema.open()
        await schema.close()
        with sqlite3.connect(path) as db:
            db.executemany(
                "INSERT INTO sessions (mac, ip, method, started_at, expires_at) "
                "VALUES (?, ?, 'click-through', ?, ?)",
                [
                    (fake_device(i).mac, str(fake_device(i).ip), WALL, WALL + 3600)
                    for i in range(sessions)
                ],
            )
        store = SQLiteStore(path)
        await store.open()
        clocks = Clocks(wall=lambda: WALL, monotonic=lambda: 50.0, boot=lambda: 9.0)
        gateway = Gateway(store, MemoryEnforcer(), MemoryNeighbours({}), 600, clocks)
        await gateway.start()
        return AdminContext(
            gateway,
            store,
            Sampler(gateway, store, retention=3600),
            "capport",
            lambda: True,
            wall=lambda: WALL,
            lan=lambda: Lan.parse("lan0", ["192.0.2.1/24"]),
        )

    return asyncio.run(start())


def test_listing_is_what_the_whole_model_encodes(tmp_path: Path) -> None:
    context = started_context(tmp_path / "s.db", SESSIONS)

    response = TestClient(create_socket_app(context)).get("/api/v1/clients")

    sessions = context.gateway.sessions()
    expected = ClientList(clients=[context.client(s) for s in sessions])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == CLIENT_LIST.dump_json(expected)


def test_listing_filters_before_streaming(tmp_path: Path) -> None:
    context = started_context(tmp_path / "s.db", 30)
    mac = fake_device(7).mac

    response = TestClient(create_socket_app(context)).get(f"/api/v1/clients?mac={mac}")

    assert [row["mac"] for row in response.json()["clients"]] == [mac]


def test_listing_sorts_by_ip_as_numbers(tmp_path: Path) -> None:
    context = started_context(tmp_path / "s.db", 300)

    client = TestClient(create_socket_app(context))
    rows = client.get("/api/v1/clients?sort=ip").json()["clients"]

    addresses = [ip_address(row["ip"]) for row in rows]
    assert addresses == sorted(addresses)
    assert len(addresses) == 300
    assert [str(a) for a in addresses] != sorted(str(a) for a in addresses)


def test_listing_finds_device_by_learned_ipv6(tmp_path: Path) -> None:
    context = started_context(tmp_path / "s.db", 3)
    mac = fake_device(1).mac
    learned = IPv6Address("2001:db8:1::99")
    assert asyncio.run(context.gateway.learn_ipv6(mac, learned))

    response = TestClient(create_socket_app(context)).get(
        f"/api/v1/clients?ip={learned}"
    )

    assert [row["mac"] for row in response.json()["clients"]] == [mac]


def test_listing_to_http10_is_not_chunked(tmp_path: Path) -> None:
    context = started_context(tmp_path / "s.db", SESSIONS)
    app = create_socket_app(context)

    start, body = asyncio.run(asgi_get(app, "/api/v1/clients", "1.0"))

    headers = dict(start["headers"])
    assert start["status"] == 200
    assert int(headers[b"content-length"]) == len(body)
    assert len(CLIENT_LIST.validate_json(body).clients) == SESSIONS


async def asgi_get(app: Any, path: str, version: str) -> tuple[dict, bytes]:
    """Run one GET through app with the HTTP version given; return start and body."""
    messages: list[dict] = []
    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict:
        if requests:
            return requests.pop()
        # The client stays connected until the response is complete.
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": version,
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)
    start = next(m for m in messages if m["type"] == "http.response.start")
    parts = [m for m in messages if m["type"] == "http.response.body"]
    return start, b"".join(m.get("body", b"") for m in parts)

"""The control API's client listing, which is encoded in chunks of sessions."""

import asyncio
import sqlite3
from pathlib import Path

from starlette.testclient import TestClient

from capport.bench.devices import fake_device
from capport.control import create_control_app
from capport.enforce.base import MemoryEnforcer
from capport.gateway import Gateway
from capport.neighbours import MemoryNeighbours
from capport.store.sqlite import SQLiteStore

# More than two chunks of 1,000 sessions, the last one partial.
SESSIONS = 2_500


def started_gateway(path: Path, sessions: int) -> Gateway:
    """Start a gateway on a store that contains sessions active sessions."""

    async def start() -> Gateway:
        schema = SQLiteStore(path)
        await schema.open()
        await schema.close()
        with sqlite3.connect(path) as db:
            db.executemany(
                "INSERT INTO sessions (mac, ip, method, started_at, expires_at) "
                "VALUES (?, ?, 'click-through', 0, 1e10)",
                [(fake_device(i).mac, str(fake_device(i).ip)) for i in range(sessions)],
            )
        store = SQLiteStore(path)
        await store.open()
        gateway = Gateway(store, MemoryEnforcer(), MemoryNeighbours({}), 600)
        await gateway.start()
        return gateway

    return asyncio.run(start())


def test_listing_contains_every_session_in_order(tmp_path: Path) -> None:
    gateway = started_gateway(tmp_path / "s.db", SESSIONS)

    response = TestClient(create_control_app(gateway)).get("/v1/clients")
    clients = response.json()["clients"]

    assert response.headers["content-type"] == "application/json"
    assert len(clients) == SESSIONS
    assert [c["session"] for c in clients] == [s.id for s in gateway.sessions()]
    assert clients[-1]["mac"] == fake_device(SESSIONS - 1).mac


def test_listing_without_sessions_is_empty(tmp_path: Path) -> None:
    gateway = started_gateway(tmp_path / "s.db", 0)

    response = TestClient(create_control_app(gateway)).get("/v1/clients")

    assert response.json() == {"clients": []}

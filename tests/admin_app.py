"""An admin application over a real Gateway with in-memory firewall and neighbours."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi.testclient import TestClient

from capport.admin.app import create_admin_app, create_socket_app
from capport.admin.context import AdminContext
from capport.admin.history import Sampler
from capport.admin.peers import PeerCredentialsProtocol
from capport.admin.records import ApiToken, generate_token, token_digest
from capport.enforce.base import DeviceUsage, MemoryEnforcer, Traffic
from capport.gateway import Gateway
from capport.intercept.server import ResponderStats
from capport.lan import Lan
from capport.metrics import LoginCounter
from capport.neighbours import MemoryNeighbours
from capport.store.sqlite import SQLiteStore

TOKEN_NAME = "ops"
SESSION_SECONDS = 3600.0
# Bytes the in-memory firewall reports for every authorised address.
DEVICE_BYTES = 1500
DOWN_BYTES = 4000
# The gateway's addresses on its LAN, against which grants are checked.
LAN = Lan.parse("lan0", ["192.0.2.1/24", "2001:db8:1::1/64"])


@dataclass
class Admin:
    client: TestClient
    gateway: Gateway
    store: SQLiteStore
    enforcer: MemoryEnforcer
    sampler: Sampler
    token: str
    responder: ResponderStats

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def call(self, function: Any, *args: Any) -> Any:
        return self.client.portal.call(function, *args)  # type: ignore[union-attr]

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.auth, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.client.post(path, json=body, headers=self.auth, **kwargs)

    def put(self, path: str, body: Any = None) -> Any:
        return self.client.put(path, json=body, headers=self.auth)

    def delete(self, path: str, **kwargs: Any) -> Any:
        headers = {**self.auth, **kwargs.pop("headers", {})}
        return self.client.delete(path, headers=headers, **kwargs)

    def count_traffic(self) -> None:
        """Give every authorised address traffic and run an accounting pass."""
        for device in self.enforcer.devices:
            traffic = Traffic(DEVICE_BYTES, DOWN_BYTES)
            self.enforcer.counters[device] = DeviceUsage(traffic)
        self.call(self.gateway.account)

    def grant(self, mac: str, ip: str, duration: float = 600) -> dict[str, Any]:
        response = self.post(
            "/api/v1/clients", {"mac": mac, "ip": ip, "duration": duration}
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


def build_context(
    store: SQLiteStore, enforcer: MemoryEnforcer, responder: ResponderStats
) -> tuple[Gateway, Sampler, AdminContext]:
    gateway = Gateway(store, enforcer, MemoryNeighbours(), SESSION_SECONDS)
    gateway.add_observer(LoginCounter())

    sampler = Sampler(gateway, store, retention=7 * 86400)
    context = AdminContext(
        gateway,
        store,
        sampler,
        "capport",
        lambda: enforcer.installed,
        responder_stats=lambda: responder,
        lan=lambda: LAN,
    )
    return gateway, sampler, context


def start_admin(**options: Any) -> Iterator[Admin]:
    store = SQLiteStore(":memory:")
    enforcer = MemoryEnforcer()
    responder = ResponderStats()
    gateway, sampler, context = build_context(store, enforcer, responder)
    app = create_admin_app(context, **options)
    token = generate_token()
    with TestClient(app, follow_redirects=False) as client:
        admin = Admin(client, gateway, store, enforcer, sampler, token, responder)
        admin.call(store.open)
        admin.call(gateway.start)
        admin.call(store.add_token, ApiToken(TOKEN_NAME, token_digest(token), 0.0))
        try:
            yield admin
        finally:
            admin.call(store.close)


@dataclass
class Served:
    """An admin application served by uvicorn on a real socket in a thread."""

    url: str
    token: str
    gateway: Gateway
    store: SQLiteStore
    enforcer: MemoryEnforcer


@contextmanager
def serve_admin(
    store_path: Path,
    sock: socket.socket,
    *,
    require_token: bool = True,
    token_name: str = TOKEN_NAME,
) -> Iterator[Served]:
    """Serve a fresh gateway's admin API on sock until the block ends.

    token_name names the token it stores, so that two servers can share
    one store file.
    """
    store = SQLiteStore(store_path)
    enforcer = MemoryEnforcer()
    gateway, _, context = build_context(store, enforcer, ResponderStats())
    token = generate_token()

    async def prepare() -> None:
        await store.open()
        await gateway.start()
        await store.add_token(ApiToken(token_name, token_digest(token), 0.0))

    asyncio.run(prepare())
    http: Any = "httptools"
    if require_token:
        app: Any = create_admin_app(context)
    else:
        # As on the gateway, the control socket's protocol reads the peer's uid.
        app = create_socket_app(context)
        http = PeerCredentialsProtocol
    config = uvicorn.Config(
        app, lifespan="off", log_config=None, loop="asyncio", http=http
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        if sock.family == socket.AF_INET:
            host, port = sock.getsockname()[:2]
            url = f"http://{host}:{port}"
        else:
            url = "http://capport"
        yield Served(url, token, gateway, store, enforcer)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        asyncio.run(store.close())

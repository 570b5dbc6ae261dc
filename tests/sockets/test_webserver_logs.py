"""Start and stop lines of the daemon's embedded uvicorn servers."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from capport.webserver import web_server


async def hello(request: object) -> PlainTextResponse:
    return PlainTextResponse("hello")


def listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    return sock


def serve_briefly(names: list[str]) -> list[int]:
    """Start one server per name on its own port, stop them, return the ports."""

    async def main() -> list[int]:
        app = Starlette(routes=[Route("/", hello)])
        sockets = [listening_socket() for _ in names]
        # uvicorn closes the sockets when it stops.
        ports = [sock.getsockname()[1] for sock in sockets]
        servers = [web_server(app, name) for name in names]
        tasks = [
            asyncio.create_task(server.serve(sockets=[sock]))
            for server, sock in zip(servers, sockets, strict=True)
        ]
        while not all(server.started for server in servers):
            await asyncio.sleep(0.01)
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks)
        return ports

    return asyncio.run(main())


def messages(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger]


def test_each_server_named_at_start_and_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    portal, admin = serve_briefly(["portal", "admin API"])
    lines = messages(caplog, "capport.daemon")
    assert f"Serving the portal on http://127.0.0.1:{portal}." in lines
    assert f"Serving the admin API on http://127.0.0.1:{admin}." in lines
    assert f"Stopped the portal on http://127.0.0.1:{portal}." in lines
    assert f"Stopped the admin API on http://127.0.0.1:{admin}." in lines


def test_uvicorn_lifecycle_lines_dropped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    serve_briefly(["portal", "admin API"])
    lines = messages(caplog, "uvicorn.error")
    assert not [line for line in lines if line.startswith("Started server")]
    assert not [line for line in lines if line.startswith("Finished server")]
    assert "Shutting down" not in lines


def test_uvicorn_other_lines_kept(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    serve_briefly(["portal"])
    logging.getLogger("uvicorn.error").warning("Invalid HTTP request received.")
    assert messages(caplog, "uvicorn.error") == ["Invalid HTTP request received."]

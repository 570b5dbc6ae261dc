"""The control API of a running gateway, on a Unix socket.

The command line (`capport clients`, `capport revoke`, `capport trust` and
the other MAC list commands) talks to the daemon through it. The socket is
created with mode 0600, so only the daemon's user (root on a gateway) can
use it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from capport.gateway import Gateway
from capport.models import EndReason, Session, normalise_mac


def session_json(gateway: Gateway, session: Session) -> dict[str, Any]:
    """Describe a session for the control API."""
    remaining = gateway.remaining(session)
    usage = gateway.usage(session)
    return {
        "session": session.id,
        "mac": session.device.mac,
        "ip": str(session.device.ip),
        "method": session.method,
        "subject": session.subject,
        "since": session.started_at,
        "expires": time.time() + remaining,
        "remaining": round(remaining, 1),
        "bytes_up": usage.up,
        "bytes_down": usage.down,
    }


# Sessions encoded per chunk of the client listing.
_CHUNK_SESSIONS = 1000


async def _client_listing(
    gateway: Gateway, sessions: list[Session]
) -> AsyncIterator[bytes]:
    """Encode {"clients": [...]} a chunk of sessions at a time.

    Encoding all at once would hold a dict per session and the whole body
    together, an estimated 100 MB or more with 100,000 sessions. Each
    chunk's "remaining" is read when the chunk is encoded.
    """
    yield b'{"clients":['
    for start in range(0, len(sessions), _CHUNK_SESSIONS):
        chunk = sessions[start : start + _CHUNK_SESSIONS]
        text = json.dumps(
            [session_json(gateway, session) for session in chunk],
            ensure_ascii=False,
            allow_nan=False,
            separators=(",", ":"),
        )[1:-1]
        yield (text if start == 0 else "," + text).encode()
    yield b"]}"


# The MAC list command that each method on /v1/trusted and /v1/blocked runs.
_MAC_COMMANDS = {
    ("trusted", "PUT"): "trust",
    ("trusted", "DELETE"): "untrust",
    ("blocked", "PUT"): "block",
    ("blocked", "DELETE"): "unblock",
}


def create_control_app(gateway: Gateway) -> Starlette:
    """Build the control API for gateway."""

    async def list_clients(request: Request) -> StreamingResponse:
        listing = _client_listing(gateway, gateway.sessions())
        return StreamingResponse(listing, media_type="application/json")

    async def revoke_client(request: Request) -> JSONResponse:
        raw = request.path_params["mac"]
        try:
            mac = normalise_mac(raw)
        except ValueError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        ended = await gateway.revoke_mac(mac, EndReason.REVOKED)
        if not ended:
            message = f"no authorised device has MAC address {mac}"
            return JSONResponse({"error": message}, status_code=404)
        return JSONResponse({"revoked": [session_json(gateway, s) for s in ended]})

    async def list_macs(request: Request) -> JSONResponse:
        lists = gateway.mac_lists
        return JSONResponse(
            {"trusted": sorted(lists.trusted), "blocked": sorted(lists.blocked)}
        )

    async def change_mac(request: Request) -> JSONResponse:
        try:
            mac = normalise_mac(request.path_params["mac"])
        except ValueError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        list_name = request.url.path.split("/")[2]
        command = _MAC_COMMANDS[(list_name, request.method)]
        ended = await gateway.change_mac_list(mac, command)
        return JSONResponse(
            {
                "mac": mac,
                "policy": gateway.mac_lists.policy(mac),
                "ended": [session_json(gateway, s) for s in ended],
            }
        )

    return Starlette(
        routes=[
            Route("/v1/clients", list_clients, methods=["GET"]),
            Route("/v1/clients/{mac}", revoke_client, methods=["DELETE"]),
            Route("/v1/macs", list_macs, methods=["GET"]),
            Route("/v1/trusted/{mac}", change_mac, methods=["PUT", "DELETE"]),
            Route("/v1/blocked/{mac}", change_mac, methods=["PUT", "DELETE"]),
        ]
    )


def bind_control_socket(path: Path) -> socket.socket:
    """Create the listening Unix socket at path, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_socket():
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old_umask)
    sock.listen(64)
    return sock

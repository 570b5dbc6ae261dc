"""The client list of the admin API, encoded and sent a chunk of sessions at a time.

With 100,000 sessions, building every Client model and the whole JSON body
before sending took about 180 MB of the daemon's memory at once. The body
here is the same bytes that FastAPI writes for a ClientList (pydantic's
JSON encoder, compact), built from CHUNK_SESSIONS sessions at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from ipaddress import ip_address
from typing import Any

from pydantic import TypeAdapter

from capport.admin.schemas import Client
from capport.models import Session

# Sessions encoded per chunk: about 300 kB of JSON.
CHUNK_SESSIONS = 1000

_CLIENTS = TypeAdapter(list[Client])


async def client_list_body(
    sessions: Sequence[Session], describe: Callable[[Session], Client]
) -> AsyncIterator[bytes]:
    """Encode {"clients": [...]} with one Client per session, in chunks.

    Each chunk's remaining times and byte counts are read when the chunk
    is encoded, so a session that ends during the listing is still listed,
    with what the gateway has for it then (no time left).
    """
    yield b'{"clients":['
    for start in range(0, len(sessions), CHUNK_SESSIONS):
        chunk = [
            describe(session) for session in sessions[start : start + CHUNK_SESSIONS]
        ]
        items = _CLIENTS.dump_json(chunk)[1:-1]
        yield items if start == 0 else b"," + items
        # Let other requests run between chunks of a long listing.
        await asyncio.sleep(0)
    yield b"]}"


def sort_sessions(
    sessions: list[Session],
    describe: Callable[[Session], Client],
    key: str,
    descending: bool,
) -> None:
    """Sort sessions in place by the field key of their Client.

    Each Client is built for its sort value and dropped at once, so only
    the values are held. Sorting by session id needs none.
    """
    if key == "session":
        sessions.sort(key=lambda session: session.id, reverse=descending)
        return
    sessions.sort(
        key=lambda session: sort_value(describe(session), key), reverse=descending
    )


def sort_value(client: Client, key: str) -> tuple[bool, Any]:
    """Return the sort value of one field of client; None sorts first.

    Addresses sort by version and then numerically, so 10.0.0.9 comes
    before 10.0.0.10.
    """
    value = getattr(client, key)
    if key == "ip":
        address = ip_address(value)
        return (True, (address.version, address))
    # A click-through session has no subject.
    return (value is not None, value if value is not None else "")

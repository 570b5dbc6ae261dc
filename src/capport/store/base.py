"""The interface every session store implements."""

from __future__ import annotations

from typing import Protocol

from capport.models import Device, Session


class Store(Protocol):
    """Sessions and gateway state that must outlive the daemon.

    Every method is a coroutine so that a networked backend can implement
    the same interface without blocking the event loop.
    """

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def secret(self) -> bytes:
        """Return the gateway's signing key, creating it on first use."""
        ...

    async def start_session(
        self, device: Device, method: str, duration: float, now: float
    ) -> Session:
        """Commit a new session, ending any active one of the same device."""
        ...

    async def end_session(
        self, session_id: int, reason: str, now: float
    ) -> Session | None:
        """Mark a session ended; return it, or None if it was not active."""
        ...

    async def active_sessions(self) -> list[Session]:
        """Return every session that has not ended, oldest first."""
        ...

    async def expire_due(self, now: float) -> list[Session]:
        """End every active session whose time is up and return them."""
        ...

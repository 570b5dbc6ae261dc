"""The active sessions of each MAC address, for lookups that must not scan them all."""

from __future__ import annotations

from capport.models import Session


class SessionsByMac:
    """Active sessions by MAC address, in the order they were added.

    Almost every MAC has one session, which is stored as it is. Only a MAC
    with several gets a tuple, so the index costs one dict entry per MAC
    instead of one container per MAC (a set or dict is 200 bytes or more).
    """

    def __init__(self) -> None:
        self._index: dict[str, Session | tuple[Session, ...]] = {}

    def __contains__(self, mac: str) -> bool:
        return mac in self._index

    def of(self, mac: str) -> tuple[Session, ...]:
        """Return the active sessions of mac, in the order they were added."""
        found = self._index.get(mac)
        if found is None:
            return ()
        return found if isinstance(found, tuple) else (found,)

    def first(self, mac: str) -> Session | None:
        """Return the first active session of mac that is still indexed, if any."""
        sessions = self.of(mac)
        return sessions[0] if sessions else None

    def add(self, session: Session) -> None:
        """Add session, or put it in place of the entry with its id."""
        mac = session.device.mac
        present = self.of(mac)
        if any(s.id == session.id for s in present):
            self._store(
                mac, tuple(session if s.id == session.id else s for s in present)
            )
        else:
            self._store(mac, (*present, session))

    def remove(self, session: Session) -> None:
        """Remove the entry with session's id; succeed when there is none."""
        mac = session.device.mac
        self._store(mac, tuple(s for s in self.of(mac) if s.id != session.id))

    def clear(self) -> None:
        self._index.clear()

    def _store(self, mac: str, sessions: tuple[Session, ...]) -> None:
        if not sessions:
            self._index.pop(mac, None)
        elif len(sessions) == 1:
            self._index[mac] = sessions[0]
        else:
            self._index[mac] = sessions

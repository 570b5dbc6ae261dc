"""The process at the other end of the control socket, for the audit log.

Linux reports the pid, uid and gid of a Unix socket's peer, as they were
when it called connect(), through the SO_PEERCRED socket option (unix(7)).
The protocol below reads them once per connection and adds them to every
request's ASGI scope under "extensions", so the admin API can name the uid
that made a change.
"""

from __future__ import annotations

import logging
import socket
import struct
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("capport.admin")

PEER_CREDENTIALS = "capport.peer_credentials"

# struct ucred in <sys/socket.h>: pid_t pid, uid_t uid, gid_t gid.
_UCRED = struct.Struct("iII")


@dataclass(frozen=True, slots=True)
class PeerCredentials:
    """The process that connected to a Unix socket."""

    pid: int
    uid: int
    gid: int


def read_peer_credentials(sock: Any) -> PeerCredentials | None:
    """Return the credentials of sock's peer, or None if the kernel has none."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    except OSError as error:
        log.warning("Reading the control socket peer's credentials failed: %s", error)
        return None
    return PeerCredentials(*_UCRED.unpack(raw))


def peer_of(request: Request) -> PeerCredentials | None:
    """Return the credentials PeerCredentialsProtocol added to request, if any."""
    extensions = request.scope.get("extensions") or {}
    fields = extensions.get(PEER_CREDENTIALS)
    if fields is None:
        return None
    return PeerCredentials(fields["pid"], fields["uid"], fields["gid"])


class PeerCredentialsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, adding the peer's credentials to each scope."""

    _peer: PeerCredentials | None = None

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family == socket.AF_UNIX:
            self._peer = read_peer_credentials(sock)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._peer is not None:
            peer = self._peer
            fields: dict[object, object] = {
                "pid": peer.pid,
                "uid": peer.uid,
                "gid": peer.gid,
            }
            self.scope["extensions"] = {PEER_CREDENTIALS: fields}

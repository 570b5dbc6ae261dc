"""Backends of `capport tokens`: the running gateway or a store file.

GatewayTokens sends each request through the gateway's control socket, so
its audit log records the change with the caller's uid. StoreTokens opens a
SQLite store file directly: the offline mode, for creating the first token
before the gateway has ever started, whose changes reach no audit log.
Both return tokens as the admin API describes them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from capport.admin.records import ApiToken, generate_token, token_digest
from capport.auth.backends import with_store
from capport.controlclient import ControlClient
from capport.store.sqlite import SQLiteStore

T = TypeVar("T")


class Tokens(Protocol):
    """The operations of `capport tokens`.

    Each method raises CapportError with a message for the operator.
    """

    def tokens(self) -> list[dict[str, Any]]: ...

    def create_token(self, name: str) -> dict[str, Any]:
        """Create the token name and return it with its value under "token"."""
        ...

    def revoke_token(self, request: dict[str, Any]) -> dict[str, Any]:
        """Revoke the token that request names by "id" or "name"; return both."""
        ...


class GatewayTokens:
    """The tokens of the gateway that listens on a control socket."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path

    def tokens(self) -> list[dict[str, Any]]:
        with ControlClient(self.socket_path) as control:
            return control.tokens()

    def create_token(self, name: str) -> dict[str, Any]:
        with ControlClient(self.socket_path) as control:
            return control.create_token(name)

    def revoke_token(self, request: dict[str, Any]) -> dict[str, Any]:
        with ControlClient(self.socket_path) as control:
            return control.revoke_token(request)


class StoreTokens:
    """The tokens in a SQLite store file, changed without the gateway."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def tokens(self) -> list[dict[str, Any]]:
        tokens = self._run(lambda store: store.tokens())
        return [token_row(token) for token in tokens]

    def create_token(self, name: str) -> dict[str, Any]:
        value = generate_token()
        new = ApiToken(name, token_digest(value), time.time())
        token = self._run(lambda store: store.add_token(new), create=True)
        return {**token_row(token), "token": value}

    def revoke_token(self, request: dict[str, Any]) -> dict[str, Any]:
        if "id" in request:
            token_id: int = request["id"]
            token = self._run(lambda store: store.remove_token_by_id(token_id))
        else:
            name: str = request["name"]
            token = self._run(lambda store: store.remove_token(name))
        return {"id": token.id, "name": token.name}

    def _run(
        self, work: Callable[[SQLiteStore], Awaitable[T]], create: bool = False
    ) -> T:
        return asyncio.run(with_store(self.path, "full", work, create=create))


def token_row(token: ApiToken) -> dict[str, Any]:
    """Describe token as GET /api/v1/tokens does, without its digest."""
    return {
        "id": token.id,
        "name": token.name,
        "created": token.created_at,
        "last_used": token.last_used_at,
    }

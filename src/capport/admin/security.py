"""Bearer tokens, the origin check and the audit log of the admin API."""

from __future__ import annotations

import logging
import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from capport.admin.errors import ApiError
from capport.admin.peers import peer_of
from capport.admin.records import token_digest
from capport.store.base import Store

audit_log = logging.getLogger("capport.audit")

# Last use is written at most this often per token, so reads stay reads.
TOUCH_INTERVAL = 60.0
CONTROL_SOCKET_ACTOR = "control socket"

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer = HTTPBearer(
    auto_error=False,
    description="A token from `capport tokens create NAME`.",
)


class TokenCheck:
    """Finds the token a request carries in the store, by its SHA-256."""

    def __init__(self, store: Store, required: bool) -> None:
        self.store = store
        self.required = required
        self._touched: dict[str, float] = {}

    async def actor(
        self, request: Request, credentials: HTTPAuthorizationCredentials | None
    ) -> str:
        """Return who is acting: the token's name, or the control socket's peer."""
        if not self.required:
            return _socket_actor(request)
        if credentials is None:
            raise _unauthorised(
                "missing bearer token: send Authorization: Bearer <token>, "
                "made with `capport tokens create NAME`"
            )
        token = await self.store.token(token_digest(credentials.credentials))
        if token is None:
            raise _unauthorised("invalid or revoked token; `capport tokens list`")
        now = time.time()
        if now - self._touched.get(token.name, 0.0) >= TOUCH_INTERVAL:
            self._touched[token.name] = now
            await self.store.touch_token(token.name, now)
        return f"token {token.name}"


def _socket_actor(request: Request) -> str:
    peer = peer_of(request)
    if peer is None:
        return CONTROL_SOCKET_ACTOR
    return f"{CONTROL_SOCKET_ACTOR} (uid {peer.uid}, pid {peer.pid})"


def _unauthorised(message: str) -> ApiError:
    return ApiError(
        401, message, "Authorization", headers={"WWW-Authenticate": "Bearer"}
    )


def check_origin(request: Request) -> None:
    """Reject a state-changing request that a page of another origin sent.

    Browsers send Origin with every cross-origin POST, PUT and DELETE, and
    Sec-Fetch-Site where they support it, so a page elsewhere cannot make
    an operator's browser change the gateway. Programs send neither.

    Besides the listener's own origin, the origins of admin.origins are
    allowed. X-Forwarded-* and Forwarded headers are ignored, because any
    client can send them when no proxy strips them.
    """
    if request.method in _SAFE_METHODS:
        return
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
    allowed: frozenset[str] = request.app.state.origins
    if origin is not None and origin.lower() not in (own, *allowed):
        raise ApiError(
            403,
            f"cross-origin request from {origin} rejected; if a proxy serves "
            f'the admin API there, add "{origin}" to admin.origins',
            field="Origin",
        )
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        raise ApiError(403, "cross-site request rejected", field="Sec-Fetch-Site")


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """Check the origin and the token; remember the actor for the audit log."""
    check_origin(request)
    check: TokenCheck = request.app.state.token_check
    actor = await check.actor(request, credentials)
    request.state.actor = actor
    return actor


def audit(request: Request, message: str, *args: object) -> None:
    """Log a change with who made it. message takes lazy %-style args."""
    actor = getattr(request.state, "actor", "unknown")
    audit_log.info("%s: " + message, actor, *args)

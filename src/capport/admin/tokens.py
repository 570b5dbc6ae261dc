"""Admin API routes for the API's own bearer tokens, on the control socket only.

A request with a bearer token on the TCP admin listener gets 403 here,
because a token that could create tokens would let a leaked token outlive
its own revocation. Only root reaches the control socket (mode 0600), and root can
open the store anyway, so the socket adds no power, only the audit log.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from capport.admin.clients import context_of
from capport.admin.errors import ApiError
from capport.admin.records import ApiToken, generate_token, token_digest
from capport.admin.schemas import (
    CreatedToken,
    NewToken,
    RevokedToken,
    TokenBody,
    TokenList,
    TokenRevocation,
)
from capport.admin.security import audit
from capport.errors import RecordExists, RecordNotFound

TokenId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def require_control_socket(request: Request) -> None:
    """Reject a request that came through the TCP admin listener."""
    if request.app.state.token_check.required:
        raise ApiError(
            403,
            "API tokens can be listed, created and revoked only through the "
            "gateway's control socket: run `capport tokens` as root on the gateway",
            "Authorization",
        )


router = APIRouter(
    prefix="/tokens",
    dependencies=[Depends(require_control_socket)],
    tags=["tokens"],
)


@router.get("", response_model=TokenList)
async def list_tokens(request: Request) -> TokenList:
    """List the tokens by id and name. The store does not keep their values."""
    tokens = await context_of(request).store.tokens()
    return TokenList(tokens=[_token_body(token) for token in tokens])


@router.post("", response_model=CreatedToken, status_code=201)
async def create_token(request: Request, body: NewToken) -> CreatedToken:
    """Create a token. This response is the only place its value appears."""
    value = generate_token()
    new = ApiToken(body.name, token_digest(value), time.time())
    try:
        token = await context_of(request).store.add_token(new)
    except RecordExists as error:
        raise ApiError(409, str(error), "name") from None
    audit(request, "created API token %d (%s).", token.id, token.name)
    return CreatedToken(**_token_body(token).model_dump(), token=value)


@router.delete("/{token_id}", status_code=204)
async def revoke_token(request: Request, token_id: TokenId) -> Response:
    """Revoke a token. Requests with it get 401 from then on."""
    await _revoke(request, TokenRevocation(id=token_id))
    return Response(status_code=204)


@router.post("/revoke", response_model=RevokedToken)
async def revoke_token_by_id_or_name(
    request: Request, body: TokenRevocation
) -> RevokedToken:
    """Revoke the token with the given id or name, as `capport tokens revoke`."""
    return await _revoke(request, body)


async def _revoke(request: Request, body: TokenRevocation) -> RevokedToken:
    if (body.id is None) == (body.name is None):
        raise ApiError(422, "give exactly one of id and name", "name")
    store = context_of(request).store
    try:
        if body.id is not None:
            token = await store.remove_token_by_id(body.id)
        else:
            assert body.name is not None
            token = await store.remove_token(body.name)
    except RecordNotFound as error:
        raise ApiError(404, str(error), "id" if body.name is None else "name") from None
    given_by = "id" if body.name is None else "name"
    audit(request, "revoked API token %d (%s, given by %s).", token.id, token.name,
          given_by)  # fmt: skip
    return RevokedToken(id=token.id, name=token.name)


def _token_body(token: ApiToken) -> TokenBody:
    return TokenBody(
        id=token.id,
        name=token.name,
        created=token.created_at,
        last_used=token.last_used_at,
    )

"""Admin API routes for local users and vouchers."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from capport.admin.clients import context_of
from capport.admin.errors import ApiError
from capport.admin.schemas import (
    CreatedVoucher,
    CreatedVouchers,
    NewPassword,
    NewUser,
    NewVouchers,
    RevokedVoucher,
    UserBody,
    UserList,
    VoucherBody,
    VoucherList,
    VoucherRevocation,
)
from capport.admin.security import audit
from capport.auth.passwords import hash_password
from capport.auth.records import NewVoucher, User, Voucher
from capport.auth.users import normalise_username
from capport.auth.voucherrows import render_vouchers_csv, voucher_row
from capport.auth.vouchers import code_digest, generate_code, normalise_code
from capport.errors import RecordExists, RecordNotFound

router = APIRouter()

# SQLite integers are signed 64-bit; a larger id would overflow, not miss.
VoucherId = Annotated[int, Path(ge=1, le=2**63 - 1)]

# Users


@router.get("/users", response_model=UserList)
async def list_users(request: Request) -> UserList:
    users = await context_of(request).store.users()
    return UserList(users=[_user_body(user) for user in users])


@router.post("/users", response_model=UserBody, status_code=201)
async def add_user(request: Request, body: NewUser) -> UserBody:
    """Add a local user; the password is stored as an argon2id hash only."""
    password_hash = await _hash(body.password)
    user = User(body.name, password_hash, time.time(), body.max_devices)
    try:
        await context_of(request).store.add_user(user)
    except RecordExists as error:
        raise ApiError(409, str(error), "name") from None
    audit(request, "added user %s (%s).", user.name, _device_limit(user))
    return _user_body(user)


def _device_limit(user: User) -> str:
    if user.max_devices is None:
        # authenticate_user falls back to the configured limit, if any.
        return "device limit from auth.user_max_devices"
    return f"device limit {user.max_devices}"


# The name may contain "/", which a client sends as %2F and the router
# decodes before matching, so the parameter takes the rest of the path.
@router.delete("/users/{name:path}", status_code=204)
async def remove_user(request: Request, name: str) -> Response:
    """Remove a user; devices already signed in keep their sessions."""
    username = _username(name)
    try:
        await context_of(request).store.remove_user(username)
    except RecordNotFound as error:
        raise ApiError(404, str(error), "name") from None
    audit(request, "removed user %s.", username)
    return Response(status_code=204)


@router.put("/users/{name:path}/password", status_code=204)
async def set_password(request: Request, name: str, body: NewPassword) -> Response:
    """Replace a user's password. Neither the password nor its hash is logged."""
    username = _username(name)
    password_hash = await _hash(body.password)
    try:
        await context_of(request).store.set_password(username, password_hash)
    except RecordNotFound as error:
        raise ApiError(404, str(error), "name") from None
    audit(request, "changed the password of user %s.", username)
    return Response(status_code=204)


def _username(value: str) -> str:
    try:
        return normalise_username(value)
    except ValueError as error:
        raise ApiError(422, str(error), "name") from None


async def _hash(password: str) -> str:
    # argon2id takes about 64 MiB and tens of milliseconds, off the event loop.
    try:
        return await asyncio.to_thread(hash_password, password)
    except ValueError as error:
        raise ApiError(422, str(error), "password") from None


def _user_body(user: User) -> UserBody:
    return UserBody(
        name=user.name, created=user.created_at, max_devices=user.max_devices
    )


# Vouchers


@router.get("/vouchers", response_model=VoucherList)
async def list_vouchers(request: Request) -> VoucherList:
    vouchers = await context_of(request).store.vouchers()
    now = time.time()
    return VoucherList(vouchers=[_voucher_body(v, now) for v in vouchers])


@router.post("/vouchers", response_model=CreatedVouchers, status_code=201)
async def create_vouchers(request: Request, body: NewVouchers) -> CreatedVouchers:
    """Create vouchers; this response is the only place their codes appear."""
    codes = [generate_code() for _ in range(body.count)]
    new = [
        NewVoucher(
            code_digest(normalise_code(code) or ""),
            body.duration,
            body.quota_bytes,
            body.max_devices,
            body.max_uses,
        )
        for code in codes
    ]
    now = time.time()
    stored = await context_of(request).store.add_vouchers(new, now)
    audit(
        request, "created %d voucher(s), ids %d to %d, %.0f s each.", len(stored),
        stored[0].id, stored[-1].id, body.duration,
    )  # fmt: skip
    return CreatedVouchers(
        vouchers=[
            CreatedVoucher(**voucher_row(voucher, now), code=code)
            for code, voucher in zip(codes, stored, strict=True)
        ]
    )


@router.delete("/vouchers/{voucher_id}", status_code=204)
async def revoke_voucher(request: Request, voucher_id: VoucherId) -> Response:
    """Revoke a voucher; devices already using it keep their sessions."""
    try:
        await context_of(request).store.revoke_voucher(voucher_id, time.time())
    except RecordNotFound as error:
        raise ApiError(404, str(error), "voucher_id") from None
    audit(request, "revoked voucher %d.", voucher_id)
    return Response(status_code=204)


@router.post("/vouchers/revoke", response_model=RevokedVoucher)
async def revoke_voucher_by_code(
    request: Request, body: VoucherRevocation
) -> RevokedVoucher:
    """Revoke the voucher with the given id or code, as `capport vouchers revoke`.

    Devices already using it keep their sessions. Revoking a revoked voucher
    keeps its first revocation time.
    """
    store = context_of(request).store
    if (body.id is None) == (body.code is None):
        raise ApiError(422, "give exactly one of id and code", "code")
    if body.code is not None:
        voucher = await store.voucher(code_digest(body.code))
        if voucher is None:
            raise ApiError(
                404,
                "no voucher has this code: check it against the printed codes, "
                "or give the voucher's id from `capport vouchers list` or "
                "GET /api/v1/vouchers",
                "code",
            )
        voucher_id = voucher.id
    else:
        assert body.id is not None
        voucher_id = body.id
    try:
        await store.revoke_voucher(voucher_id, time.time())
    except RecordNotFound as error:
        raise ApiError(404, str(error), "id") from None
    given_by = "id" if body.code is None else "code"
    audit(request, "revoked voucher %d (given by %s).", voucher_id, given_by)
    return RevokedVoucher(id=voucher_id)


@router.get(
    "/vouchers.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def vouchers_csv(request: Request) -> Response:
    """Return the vouchers as CSV; codes are not stored, so none appear."""
    vouchers = await context_of(request).store.vouchers()
    now = time.time()
    text = render_vouchers_csv([voucher_row(voucher, now) for voucher in vouchers])
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="vouchers.csv"'},
    )


def _voucher_body(voucher: Voucher, now: float) -> VoucherBody:
    return VoucherBody(**voucher_row(voucher, now))

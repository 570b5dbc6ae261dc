"""Admin API routes for clients, trusted and blocked MACs, status and history."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from ipaddress import ip_address
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from capport import __version__
from capport.admin.clientstream import client_list_body, sort_sessions
from capport.admin.context import AdminContext
from capport.admin.errors import ApiError
from capport.admin.history import HOUR, hourly_series
from capport.admin.schemas import (
    MAX_HISTORY_HOURS,
    AccountingState,
    Client,
    ClientList,
    Extended,
    ExtendRequest,
    GrantRequest,
    History,
    HourPointBody,
    MacChange,
    MacList,
    Revoked,
    SessionCounts,
    Status,
    TableState,
)
from capport.admin.security import audit
from capport.auth.entitlement import Entitlement
from capport.errors import DeviceBlocked, SessionTooLong
from capport.maclists import BLOCKED, TRUSTED
from capport.metrics import ADMIN_METHOD
from capport.models import Device, EndReason, Session, normalise_mac
from capport.pacing import AccountingPacer

router = APIRouter()

# Path parameters are checked by parse_mac, whose message is clearer than a
# pattern mismatch; the description documents the format.
MacPath = Annotated[
    str,
    Path(
        description="MAC address, such as 02:00:00:00:00:11 (any case, : or -)",
        examples=["02:00:00:00:00:11"],
    ),
]

SortKey = Literal[
    "session", "mac", "ip", "method", "subject", "since", "expires", "remaining",
    "bytes_up", "bytes_down",
]  # fmt: skip


def context_of(request: Request) -> AdminContext:
    context: AdminContext = request.app.state.admin
    return context


def parse_mac(value: str, field: str = "mac") -> str:
    """Return value as a normalised MAC, or raise a 422 naming field."""
    try:
        return normalise_mac(value)
    except ValueError as error:
        raise ApiError(422, str(error), field) from None


# Status and history


@router.get("/status", response_model=Status)
async def status(request: Request) -> Status:
    context = context_of(request)
    sessions = context.gateway.sessions()
    listing = context.gateway.last_listing
    counts = {} if listing is None else listing.addresses
    elements = {"allowed4": counts.get(4, 0), "allowed6": counts.get(6, 0)}
    exists = await asyncio.to_thread(context.table_exists)
    stats = context.responder_stats()
    return Status(
        version=__version__,
        uptime_seconds=round(context.monotonic() - context.started, 1),
        table=TableState(
            name=context.table_name,
            exists=exists,
            elements=elements,
            listed_at=None if listing is None else listing.taken_at,
        ),
        sessions=SessionCounts(
            active=len(sessions),
            by_method=dict(collections.Counter(s.method for s in sessions)),
        ),
        responder={} if stats is None else dataclasses.asdict(stats),
        accounting=_accounting_state(context.gateway.accounting_pacer),
    )


def _accounting_state(pacer: AccountingPacer | None) -> AccountingState:
    if pacer is None:
        return AccountingState(
            configured_interval_seconds=None,
            interval_seconds=None,
            last_pass_cpu_seconds=None,
            passes=0,
        )
    return AccountingState(
        configured_interval_seconds=pacer.configured,
        interval_seconds=pacer.interval,
        last_pass_cpu_seconds=pacer.last_cpu_seconds,
        passes=pacer.passes,
    )


@router.get("/history", response_model=History)
async def history(
    request: Request,
    hours: Annotated[int, Query(ge=1, le=MAX_HISTORY_HOURS)] = 24,
) -> History:
    """Return hourly series: active devices, logins and forwarded bytes."""
    context = context_of(request)
    now = context.wall()
    since = now - hours * HOUR
    samples = await context.store.samples(since)
    starts = await context.store.session_starts(since)
    points = hourly_series(samples, starts, now, hours)
    return History(
        hours=hours,
        points=[HourPointBody(**dataclasses.asdict(point)) for point in points],
    )


# Clients


@router.get("/clients", response_model=ClientList)
async def list_clients(
    request: Request,
    mac: str | None = None,
    ip: str | None = None,
    method: str | None = None,
    subject: str | None = None,
    sort: SortKey = "session",
    descending: bool = False,
) -> Response:
    """List authorised devices, filtered by exact values and sorted by one key."""
    context = context_of(request)
    requested_mac = None if mac is None else parse_mac(mac)
    requested_ip = None if ip is None else _parse_ip(ip)
    gateway = context.gateway
    sessions = [
        session
        for session in gateway.sessions()
        if (requested_mac is None or session.device.mac == requested_mac)
        and (
            requested_ip is None
            or str(session.device.ip) == requested_ip
            # A device is found by the IPv6 addresses it was seen using too.
            or requested_ip in map(str, gateway.learned_addresses(session))
        )
        and (method is None or session.method == method)
        and (subject is None or session.subject == subject)
    ]
    sort_sessions(sessions, context.client, sort, descending)
    body = client_list_body(sessions, context.client)
    if request.scope.get("http_version") == "1.0":
        # RFC 9112 section 6.1: no chunked framing for an HTTP/1.0 client,
        # so its list is sent whole, with a Content-Length.
        content = b"".join([chunk async for chunk in body])
        return Response(content, media_type="application/json")
    return StreamingResponse(body, media_type="application/json")


@router.get("/clients/{mac}", response_model=ClientList)
async def get_client(request: Request, mac: MacPath) -> ClientList:
    """Return the sessions of one MAC (one per IP address)."""
    context = context_of(request)
    requested_mac = parse_mac(mac)
    clients = [
        context.client(s)
        for s in context.gateway.sessions()
        if s.device.mac == requested_mac
    ]
    if not clients:
        raise _not_authorised(requested_mac)
    return ClientList(clients=clients)


@router.post("/clients", response_model=Client, status_code=201)
async def grant_client(request: Request, body: GrantRequest) -> Client:
    """Grant a device access for duration seconds, as if it had signed in."""
    context = context_of(request)
    device = Device.parse(body.mac, body.ip)
    lan = await asyncio.to_thread(context.lan)
    try:
        lan.check_device_ip(device.ip)
    except ValueError as error:
        raise ApiError(422, str(error), "ip") from None
    duration = body.duration or context.gateway.session_duration
    try:
        session = await context.gateway.grant(
            device, Entitlement(ADMIN_METHOD, duration)
        )
    except DeviceBlocked as error:
        raise ApiError(409, f"{error}; unblock it first", "mac") from None
    audit(request, "granted %s for %.0f s (session %d).", device, duration, session.id)
    return context.client(session)


@router.delete("/clients/{mac}", response_model=Revoked)
async def revoke_client(request: Request, mac: MacPath) -> Revoked:
    """End every session of a MAC and cut the device off."""
    context = context_of(request)
    requested_mac = parse_mac(mac)
    ended = await context.gateway.revoke_mac(requested_mac, EndReason.REVOKED)
    if not ended:
        raise _not_authorised(requested_mac)
    audit(request, "revoked %s (sessions %s).", requested_mac, _ids(ended))
    return Revoked(revoked=[context.client(s) for s in ended])


@router.post("/clients/{mac}/extend", response_model=Extended)
async def extend_client(
    request: Request, mac: MacPath, body: ExtendRequest
) -> Extended:
    """Move the end of every session of a MAC, in the store and the kernel."""
    context = context_of(request)
    requested_mac = parse_mac(mac)
    try:
        extended = await context.gateway.extend_mac(requested_mac, body.seconds)
    except SessionTooLong as error:
        raise ApiError(422, str(error), "seconds") from None
    if not extended:
        raise _not_authorised(requested_mac)
    audit(
        request, "extended %s by %.0f s (sessions %s).", requested_mac, body.seconds,
        _ids(extended),
    )  # fmt: skip
    return Extended(extended=[context.client(s) for s in extended])


# Trusted and blocked MACs


@router.get("/trusted", response_model=MacList)
async def list_trusted(request: Request) -> MacList:
    return MacList(macs=sorted(context_of(request).gateway.mac_lists.trusted))


@router.get("/blocked", response_model=MacList)
async def list_blocked(request: Request) -> MacList:
    return MacList(macs=sorted(context_of(request).gateway.mac_lists.blocked))


@router.put("/trusted/{mac}", response_model=MacChange)
async def trust(request: Request, mac: MacPath) -> MacChange:
    return await _put_policy(request, mac, TRUSTED)


@router.put("/blocked/{mac}", response_model=MacChange)
async def block(request: Request, mac: MacPath) -> MacChange:
    return await _put_policy(request, mac, BLOCKED)


@router.delete("/trusted/{mac}", status_code=204)
async def untrust(request: Request, mac: MacPath) -> Response:
    return await _remove_policy(request, mac, TRUSTED)


@router.delete("/blocked/{mac}", status_code=204)
async def unblock(request: Request, mac: MacPath) -> Response:
    return await _remove_policy(request, mac, BLOCKED)


# The gateway's MAC list command for putting a MAC on a list and taking it off.
_COMMANDS = {TRUSTED: ("trust", "untrust"), BLOCKED: ("block", "unblock")}


async def _put_policy(request: Request, mac: str, policy: str) -> MacChange:
    context = context_of(request)
    requested_mac = parse_mac(mac)
    ended = await context.gateway.change_mac_list(requested_mac, _COMMANDS[policy][0])
    audit(
        request, "set %s to %s (ended sessions %s).", requested_mac, policy, _ids(ended)
    )
    return MacChange(
        mac=requested_mac,
        policy=context.gateway.mac_lists.policy(requested_mac),
        ended=[context.client(s) for s in ended],
    )


async def _remove_policy(request: Request, mac: str, policy: str) -> Response:
    gateway = context_of(request).gateway
    requested_mac = parse_mac(mac)
    if gateway.mac_lists.policy(requested_mac) != policy:
        raise ApiError(404, f"MAC address {requested_mac} is not {policy}", "mac")
    await gateway.change_mac_list(requested_mac, _COMMANDS[policy][1])
    audit(request, "removed %s from the %s list.", requested_mac, policy)
    return Response(status_code=204)


def _parse_ip(value: str) -> str:
    try:
        return str(ip_address(value))
    except ValueError:
        raise ApiError(422, f"invalid IP address {value!r}", "ip") from None


def _not_authorised(mac: str) -> ApiError:
    return ApiError(404, f"no authorised device has MAC address {mac}", "mac")


def _ids(sessions: list[Session]) -> str:
    return ", ".join(str(session.id) for session in sessions) or "none"

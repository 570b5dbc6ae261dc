"""Request and response bodies of the admin API, as pydantic models.

Request bodies are strict: a string where a number belongs is a 422, not a
conversion, and unknown fields are rejected, so a typo in a field name is
reported instead of ignored.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from capport.admin.records import check_token_name
from capport.auth.users import MAX_NAME_CHARS, new_username
from capport.auth.vouchers import CODE_LENGTH, normalise_code
from capport.config import MAX_SESSION_SECONDS, check_session_length
from capport.lan import check_device_mac
from capport.models import normalise_mac

# One request creates at most this many vouchers; the command line allows more.
MAX_VOUCHERS_PER_REQUEST = 1000
MAX_HISTORY_HOURS = 24 * 31


def _check_seconds(value: float) -> float:
    return check_session_length(value)


# The maximum is checked by check_session_length, whose message gives days.
Seconds = Annotated[
    float,
    Field(
        gt=0, allow_inf_nan=False, json_schema_extra={"maximum": MAX_SESSION_SECONDS}
    ),
    AfterValidator(_check_seconds),
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ErrorBody(BaseModel):
    """What every 4xx carries: the problem, and the field it concerns if any."""

    error: str
    field: str | None = None


# Clients


class Client(BaseModel):
    """An authorised device and its session."""

    session: int
    mac: str
    ip: str
    method: str
    subject: str | None
    since: float = Field(description="session start, seconds since the epoch")
    expires: float = Field(description="session end, seconds since the epoch")
    remaining: float = Field(description="seconds left")
    bytes_up: int = Field(description="bytes the device sent, 0 when unknown")
    bytes_down: int = Field(description="bytes the device received, 0 when unknown")
    learned_ipv6: list[str] = Field(
        description="IPv6 addresses of the MAC authorised with this session"
    )


class ClientList(BaseModel):
    clients: list[Client]


class Revoked(BaseModel):
    revoked: list[Client]


class Extended(BaseModel):
    extended: list[Client]


class GrantRequest(_Request):
    mac: str = Field(
        examples=["02:00:00:00:00:11"],
        description="the device's unicast MAC; not multicast, broadcast or all zeros",
    )
    ip: str = Field(
        examples=["192.0.2.11"],
        description="an IPv4 address in a prefix of gateway.interface; not its "
        "network, broadcast or the gateway's own address",
    )
    duration: Seconds | None = Field(
        default=None, description="seconds; session.duration when absent"
    )

    @field_validator("mac")
    @classmethod
    def _check_mac(cls, value: str) -> str:
        mac = normalise_mac(value)
        check_device_mac(mac)
        return mac

    @field_validator("ip")
    @classmethod
    def _check_ip(cls, value: str) -> str:
        try:
            address = ipaddress.IPv4Address(value)
        except ValueError:
            raise ValueError(
                f"invalid IPv4 address {value!r}: expected one such as 192.0.2.11"
            ) from None
        return str(address)


class ExtendRequest(_Request):
    seconds: Seconds


# Trusted and blocked MACs


class MacList(BaseModel):
    macs: list[str]


class MacChange(BaseModel):
    mac: str
    policy: str = Field(description="trusted, blocked or neither")
    ended: list[Client]


# Status and history


class TableState(BaseModel):
    name: str
    exists: bool
    elements: dict[str, int] = Field(description="elements per set, as last listed")
    listed_at: float | None = Field(description="when the sets were last listed")


class SessionCounts(BaseModel):
    active: int
    by_method: dict[str, int]


class AccountingState(BaseModel):
    configured_interval_seconds: float | None = Field(
        description="session.accounting_interval, or null before accounting starts"
    )
    interval_seconds: float | None = Field(
        description=(
            "the effective interval: the configured one, or longer after a "
            "costly pass so accounting keeps under 4 % of one core"
        )
    )
    last_pass_cpu_seconds: float | None = Field(
        description="process CPU time of the last pass, or null before the first"
    )
    passes: int


class Status(BaseModel):
    version: str
    uptime_seconds: float
    table: TableState
    sessions: SessionCounts
    responder: dict[str, int]
    accounting: AccountingState


class HourPointBody(BaseModel):
    start: float = Field(description="start of the hour, seconds since the epoch")
    active_devices: int | None = Field(
        description="most active sessions sampled in the hour; null without samples"
    )
    logins: int
    logins_by_method: dict[str, int]
    forwarded_bytes: int


class History(BaseModel):
    hours: int
    points: list[HourPointBody]


# Users and vouchers


class UserBody(BaseModel):
    name: str
    created: float
    max_devices: int | None


class UserList(BaseModel):
    users: list[UserBody]


class NewUser(_Request):
    name: str = Field(
        min_length=1,
        max_length=MAX_NAME_CHARS,
        description="compared case-insensitively; not . or ..",
    )
    password: str = Field(min_length=1, max_length=1024)
    max_devices: int | None = Field(default=None, ge=1, le=1_000_000)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return new_username(value)


class NewPassword(_Request):
    password: str = Field(min_length=1, max_length=1024)


class VoucherBody(BaseModel):
    id: int
    state: str = Field(description="unused, in use, expired, used up or revoked")
    duration: float
    quota_bytes: int | None
    max_devices: int | None
    max_uses: int | None
    uses: int
    created: float
    first_used: float | None
    revoked: float | None


class VoucherList(BaseModel):
    vouchers: list[VoucherBody]


class NewVouchers(_Request):
    count: int = Field(default=1, ge=1, le=MAX_VOUCHERS_PER_REQUEST)
    duration: Seconds
    quota_bytes: int | None = Field(default=None, ge=1, le=2**62)
    max_devices: int = Field(default=1, ge=1, le=1_000_000)
    max_uses: int | None = Field(default=None, ge=1, le=1_000_000_000)


class CreatedVoucher(VoucherBody):
    code: str = Field(description="shown only in this response; the store keeps a hash")


class CreatedVouchers(BaseModel):
    vouchers: list[CreatedVoucher]


class VoucherRevocation(_Request):
    """One voucher to revoke, named by exactly one of id and code.

    The code travels in the body rather than the path, so access logs never
    record it.
    """

    id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    code: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="as printed, in any case, with or without the dash",
        examples=["K7QXM-3HNPD"],
    )

    @field_validator("code")
    @classmethod
    def _check_code(cls, value: str | None) -> str | None:
        if value is None:
            return None
        code = normalise_code(value)
        if code is None:
            # The message leaves the value out, because it may be a real code.
            raise ValueError(
                f"invalid voucher code: expected {CODE_LENGTH} letters and digits "
                "such as K7QXM-3HNPD"
            )
        return code


class RevokedVoucher(BaseModel):
    id: int


# API tokens


class TokenBody(BaseModel):
    """An API token without its value, which the store does not keep."""

    id: int
    name: str
    created: float
    last_used: float | None = Field(
        description="last request with the token, within a minute; null if never"
    )


class TokenList(BaseModel):
    tokens: list[TokenBody]


class NewToken(_Request):
    name: str = Field(min_length=1, max_length=64, examples=["monitoring"])

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return check_token_name(value)


class CreatedToken(TokenBody):
    token: str = Field(
        description="the bearer token, shown only in this response; the store "
        "keeps its SHA-256"
    )


class TokenRevocation(_Request):
    """One token to revoke, named by exactly one of id and name."""

    id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    name: str | None = Field(default=None, min_length=1, max_length=64)


class RevokedToken(BaseModel):
    id: int
    name: str

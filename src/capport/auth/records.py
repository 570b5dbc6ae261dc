"""Stored users and vouchers, and the contact details a session may carry."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class User:
    """A local user account. password_hash is an argon2id PHC string."""

    name: str
    password_hash: str
    created_at: float
    max_devices: int | None = None


@dataclass(frozen=True, slots=True)
class NewVoucher:
    """A voucher to be stored: the SHA-256 digest of its code and its limits."""

    digest: str
    duration: float
    quota_bytes: int | None = None
    max_devices: int | None = None
    max_uses: int | None = None


@dataclass(frozen=True, slots=True)
class Voucher:
    """A stored voucher. Only the digest of its code is kept.

    The voucher's time starts at its first redemption: every session it
    grants ends by first_used_at + duration.
    """

    id: int
    digest: str
    duration: float
    created_at: float
    quota_bytes: int | None = None
    max_devices: int | None = None
    max_uses: int | None = None
    uses: int = 0
    first_used_at: float | None = None
    revoked_at: float | None = None

    def ends_at(self) -> float | None:
        """Return when the voucher's time runs out, or None before first use."""
        if self.first_used_at is None:
            return None
        return self.first_used_at + self.duration

    def unavailable_reason(self, now: float) -> str | None:
        """Return why the voucher cannot be redeemed at now, or None if it can."""
        if self.revoked_at is not None:
            return "revoked"
        ends_at = self.ends_at()
        if ends_at is not None and ends_at <= now:
            return "expired"
        if self.max_uses is not None and self.uses >= self.max_uses:
            return "used up"
        return None

    def state(self, now: float) -> str:
        """Return unused, in use, expired, used up or revoked, as of now."""
        reason = self.unavailable_reason(now)
        if reason is not None:
            return reason
        return "unused" if self.first_used_at is None else "in use"


@dataclass(frozen=True, slots=True)
class Contact:
    """The name and e-mail address a person gave on the click-through form."""

    name: str | None = None
    email: str | None = None

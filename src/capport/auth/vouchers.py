"""Voucher codes: generation, normalisation, and logging in with a code.

A code is CODE_LENGTH characters from ALPHABET, printed in groups of
GROUP_SIZE joined by "-". The alphabet leaves out characters that people
mistake for each other (0 and O, 1, I and L, U and V), so 29 symbols remain
and a 10-character code carries 10 * log2(29), about 48.6 bits. People may
type a code in any case, with or without the separators.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets

from capport.auth.entitlement import Entitlement, Method, Quota
from capport.errors import VoucherUnavailable
from capport.store.base import Store

ALPHABET = "23456789ABCDEFGHJKMNPQRSTWXYZ"
CODE_LENGTH = 10
GROUP_SIZE = 5

# Separators a person may type between the characters of a code.
_SEPARATORS = re.compile(r"[\s\-_.]+")


def code_entropy_bits(length: int = CODE_LENGTH) -> float:
    """Return the entropy in bits of a random code of length characters."""
    return length * math.log2(len(ALPHABET))


def generate_code() -> str:
    """Return a new random code, grouped for reading, such as "K7QXM-3HNPD"."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return format_code(raw)


def format_code(raw: str) -> str:
    """Group a normalised code with "-" every GROUP_SIZE characters."""
    groups = [raw[i : i + GROUP_SIZE] for i in range(0, len(raw), GROUP_SIZE)]
    return "-".join(groups)


def normalise_code(value: str) -> str | None:
    """Return value as a bare upper-case code, or None if it cannot be one."""
    raw = _SEPARATORS.sub("", value).upper()
    if len(raw) != CODE_LENGTH or any(char not in ALPHABET for char in raw):
        return None
    return raw


def code_digest(code: str) -> str:
    """Return the SHA-256 hex digest of a normalised code, as the store keys it.

    The hash is unsalted so that the store can find a voucher by its code.
    Someone who copies the database can still search all 29**10 codes
    offline, so the file needs the same protection as the printed codes.
    """
    return hashlib.sha256(code.encode("ascii")).hexdigest()


async def authenticate_voucher(
    store: Store, code: str, now: float
) -> Entitlement | None:
    """Check a typed code; return the voucher's entitlement or None if unknown.

    Raises VoucherUnavailable for a voucher that has expired, been used up or
    been revoked. The store checks again when it starts the session, in the
    same transaction as it counts the use, so a race cannot overspend it.
    """
    normalised = normalise_code(code)
    if normalised is None:
        return None
    voucher = await store.voucher(code_digest(normalised))
    if voucher is None:
        return None
    reason = voucher.unavailable_reason(now)
    if reason is not None:
        raise VoucherUnavailable(f"voucher {voucher.id} is {reason}")
    ends_at = voucher.ends_at()
    duration = voucher.duration if ends_at is None else ends_at - now
    # The gateway enforces the quota per session, so each device signed in
    # with the voucher gets the whole allowance.
    quota = None if voucher.quota_bytes is None else Quota(total=voucher.quota_bytes)
    return Entitlement(
        Method.VOUCHER,
        duration,
        subject=str(voucher.id),
        quota=quota,
        max_devices=voucher.max_devices,
    )

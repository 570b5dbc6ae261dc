"""Stored API tokens and the per-minute samples behind the history series."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

# A prefix makes a leaked token easy to recognise in a file or a log.
TOKEN_PREFIX = "capport_"

_TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A bearer token of the admin API. Only the SHA-256 of its value is kept."""

    name: str
    digest: str
    created_at: float
    last_used_at: float | None = None
    # The store assigns the id, so a token not yet stored has 0.
    id: int = 0


@dataclass(frozen=True, slots=True)
class Sample:
    """The gateway's state at one moment: active sessions, bytes since the last."""

    taken_at: float
    active_sessions: int
    forwarded_bytes: int


def generate_token() -> str:
    """Return a new random token: 256 bits, URL-safe, with the prefix."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """Return the hex SHA-256 of token.

    A plain hash suffices because tokens are 256 random bits: no salt or slow
    hash is needed against guessing, unlike for passwords.
    """
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def check_token_name(name: str) -> str:
    """Return name if it is a valid token name, else raise ValueError."""
    if not _TOKEN_NAME.match(name):
        raise ValueError(
            f"invalid token name {name!r}: use 1 to 64 letters, digits, dots, "
            "dashes or underscores, starting with a letter or digit"
        )
    return name

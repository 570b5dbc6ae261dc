"""Local user accounts: user names, and logging in with a password."""

from __future__ import annotations

import asyncio
import logging
import unicodedata

from capport.auth.entitlement import Entitlement, Method
from capport.auth.passwords import burn_verification, verify_password
from capport.store.base import Store

log = logging.getLogger("capport.auth")

MAX_NAME_CHARS = 64


def normalise_username(value: str) -> str:
    """Return value in the form users are stored and looked up by.

    Names compare case-insensitively (phones capitalise the first letter of
    a field), after Unicode NFKC normalisation and with outer spaces removed.
    """
    name = unicodedata.normalize("NFKC", value).strip().casefold()
    if not name:
        raise ValueError("the user name is empty")
    if len(name) > MAX_NAME_CHARS:
        raise ValueError(
            f"invalid user name {value[:80]!r}: longer than {MAX_NAME_CHARS} characters"
        )
    if any(char.isspace() or not char.isprintable() for char in name):
        raise ValueError(
            f"invalid user name {value!r}: it must not contain spaces or "
            "control characters"
        )
    return name


def new_username(value: str) -> str:
    """Return value normalised as for normalise_username, for a new user.

    The admin API names a user in its URL path, where clients and browsers
    remove the dot segments "." and ".." (RFC 3986 section 5.2.4), so such
    a user could never be changed or removed through it.
    """
    name = normalise_username(value)
    if name in (".", ".."):
        raise ValueError(
            f"invalid user name {value!r}: . and .. cannot be used in the "
            "admin API's paths; choose another name"
        )
    return name


async def authenticate_user(
    store: Store,
    name: str,
    password: str,
    duration: float,
    default_max_devices: int | None = None,
) -> Entitlement | None:
    """Check a name and password; return the user's entitlement or None.

    The user's own device limit applies, or default_max_devices without one.

    The argon2 verification runs in a worker thread, so the event loop keeps
    serving while it computes, and it runs for unknown names too.
    """
    try:
        normalised = normalise_username(name)
    except ValueError:
        normalised = None
    user = None if normalised is None else await store.user(normalised)
    if user is None:
        await asyncio.to_thread(burn_verification, password)
        return None
    if not await asyncio.to_thread(verify_password, user.password_hash, password):
        return None
    log.debug("User %r logged in.", user.name)
    max_devices = user.max_devices or default_max_devices
    return Entitlement(
        Method.USER, duration, subject=user.name, max_devices=max_devices
    )

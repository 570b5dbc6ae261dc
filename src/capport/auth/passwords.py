"""Password hashing with argon2id (RFC 9106), through argon2-cffi.

Hashes are PHC strings ("$argon2id$v=19$m=...,t=...,p=...$salt$hash"), so
their parameters travel with them and a later capport can raise the cost
without invalidating stored passwords.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

# argon2-cffi's defaults (argon2-cffi 25.1: t=3, 64 MiB, 4 lanes) follow
# RFC 9106's second recommended option. One hash took 0.26 s on a 2-core
# Debian 12 virtual machine: cheap for one login, slow for guessing offline.
_HASHER = PasswordHasher(type=Type.ID)

MAX_PASSWORD_CHARS = 1024


def check_password(password: str) -> None:
    """Raise ValueError if password is empty or too long to store."""
    if not password:
        raise ValueError("the password is empty: choose a non-empty password")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(f"the password is longer than {MAX_PASSWORD_CHARS} characters")


def hash_password(password: str) -> str:
    """Hash password with a fresh random salt and return the PHC string."""
    check_password(password)
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Tell whether password matches password_hash; False for a corrupt hash."""
    if len(password) > MAX_PASSWORD_CHARS:
        return False
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def burn_verification(password: str) -> None:
    """Spend the time of one verification, for a user name that is not stored.

    A failed login then takes as long whether or not the user exists, so the
    response time does not tell names apart.
    """
    verify_password(_dummy_hash(), password)


def needs_rehash(password_hash: str) -> bool:
    """Tell whether password_hash uses weaker parameters than the current ones."""
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@cache
def _dummy_hash() -> str:
    return _HASHER.hash("capport: no such user")

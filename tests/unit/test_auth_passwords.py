"""argon2id password hashing."""

from __future__ import annotations

import pytest

from capport.auth.passwords import (
    MAX_PASSWORD_CHARS,
    burn_verification,
    hash_password,
    needs_rehash,
    verify_password,
)


def test_hash_is_argon2id_phc_string() -> None:
    assert hash_password("correct horse").startswith("$argon2id$v=19$")


def test_right_password_verifies() -> None:
    assert verify_password(hash_password("correct horse"), "correct horse")


def test_wrong_password_fails() -> None:
    assert not verify_password(hash_password("correct horse"), "correct horsf")


def test_hashes_are_salted() -> None:
    assert hash_password("same") != hash_password("same")


def test_hash_does_not_contain_password() -> None:
    assert "correct horse" not in hash_password("correct horse")


@pytest.mark.parametrize("stored", ["", "not a hash", "$argon2id$v=19$broken"])
def test_corrupt_hash_fails_closed(stored: str) -> None:
    assert not verify_password(stored, "anything")


def test_empty_password_is_rejected() -> None:
    with pytest.raises(ValueError, match="empty"):
        hash_password("")


def test_overlong_password_is_rejected() -> None:
    with pytest.raises(ValueError, match="longer"):
        hash_password("x" * (MAX_PASSWORD_CHARS + 1))


def test_overlong_password_never_verifies() -> None:
    stored = hash_password("x" * MAX_PASSWORD_CHARS)
    assert not verify_password(stored, "x" * (MAX_PASSWORD_CHARS + 1))


def test_unicode_password_round_trips() -> None:
    assert verify_password(hash_password("pässwörd ☕"), "pässwörd ☕")


def test_current_hash_needs_no_rehash() -> None:
    assert not needs_rehash(hash_password("p"))
    assert needs_rehash("garbage")


def test_burn_verification_returns() -> None:
    burn_verification("whatever")

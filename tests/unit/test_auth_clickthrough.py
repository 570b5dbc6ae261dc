"""The name and e-mail fields of the click-through form."""

from __future__ import annotations

import pytest

from capport.auth.clickthrough import is_valid_email, read_contact
from capport.auth.records import Contact


def test_off_ignores_fields() -> None:
    assert read_contact("off", "Ada", "not an address") == (None, [])


def test_optional_accepts_empty_fields() -> None:
    assert read_contact("optional", "", "  ") == (None, [])


def test_optional_stores_given_fields() -> None:
    contact, problems = read_contact("optional", " Ada ", "ada@example.com")
    assert problems == []
    assert contact == Contact("Ada", "ada@example.com")


def test_required_reports_each_missing_field() -> None:
    contact, problems = read_contact("required", "", "")
    assert contact is None
    assert [problem.field for problem in problems] == ["name", "email"]


def test_invalid_email_is_reported() -> None:
    contact, problems = read_contact("optional", "Ada", "ada@")
    assert contact is None
    assert [problem.field for problem in problems] == ["email"]


def test_overlong_name_is_reported() -> None:
    _, problems = read_contact("optional", "x" * 101, "")
    assert [problem.field for problem in problems] == ["name"]


def test_control_characters_are_dropped() -> None:
    contact, _ = read_contact("required", "Ada\x1b[31m", "ada@example.com")
    assert contact is not None
    assert contact.name == "Ada[31m"


@pytest.mark.parametrize(
    "address", ["ada@example.com", "a.b+tag@mail.example.org", "x@b.co"]
)
def test_plausible_addresses_pass(address: str) -> None:
    assert is_valid_email(address)


@pytest.mark.parametrize(
    "address",
    [
        "",
        "ada",
        "ada@example",
        "@example.com",
        "a b@example.com",
        "a@b@c.com",
        "<a@b.com>",
        "a@example.",
        "a@" + "b" * 250 + ".com",
    ],
)
def test_malformed_addresses_fail(address: str) -> None:
    assert not is_valid_email(address)

"""Voucher codes: alphabet, entropy, format and normalisation."""

from __future__ import annotations

import re

import pytest

from capport.auth.vouchers import (
    ALPHABET,
    CODE_LENGTH,
    code_digest,
    code_entropy_bits,
    format_code,
    generate_code,
    normalise_code,
)

LOOK_ALIKES = "0O1IL"


def test_alphabet_has_no_look_alikes() -> None:
    for char in LOOK_ALIKES + "UV":
        assert char not in ALPHABET


def test_alphabet_has_no_repeats() -> None:
    assert len(set(ALPHABET)) == len(ALPHABET)


def test_code_has_at_least_40_bits() -> None:
    assert code_entropy_bits() >= 40


def test_generated_code_is_grouped() -> None:
    code = generate_code()
    assert re.fullmatch(rf"[{ALPHABET}]{{5}}-[{ALPHABET}]{{5}}", code)


def test_generated_codes_use_whole_alphabet() -> None:
    seen = set("".join(generate_code().replace("-", "") for _ in range(2000)))
    assert seen == set(ALPHABET)


def test_generated_codes_differ() -> None:
    codes = {generate_code() for _ in range(10000)}
    assert len(codes) == 10000


@pytest.mark.parametrize(
    "typed",
    [
        "K7QXM-3HNPD",
        "k7qxm-3hnpd",
        "K7QXM3HNPD",
        "k7qxm 3hnpd",
        "  K7QXM - 3HNPD \n",
        "K7Q.XM3_HNPD",
    ],
)
def test_typed_code_normalises(typed: str) -> None:
    assert normalise_code(typed) == "K7QXM3HNPD"


@pytest.mark.parametrize(
    "typed",
    ["", "K7QXM", "K7QXM-3HNPDX", "K7QXM-3HNP0", "K7QXM-3HNPI", "K7QXM/3HNPD"],
)
def test_malformed_code_is_none(typed: str) -> None:
    assert normalise_code(typed) is None


def test_format_round_trips() -> None:
    raw = "K7QXM3HNPD"
    assert normalise_code(format_code(raw)) == raw
    assert len(raw) == CODE_LENGTH


def test_digest_is_sha256_hex() -> None:
    digest = code_digest("K7QXM3HNPD")
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest == code_digest("K7QXM3HNPD")
    assert digest != code_digest("K7QXM3HNPE")

"""CSRF tokens bound to a client address and an issue time."""

from __future__ import annotations

import pytest

from capport.portal.csrf import CLOCK_SKEW, DEFAULT_LIFETIME, CsrfTokens

SECRET = b"csrf-test-secret-0123456789abcdef"
CLIENT_IP = "192.0.2.11"
NOW = 1_700_000_000.0


class Clock:
    """A wall clock that the test sets."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_tokens(clock: Clock | None = None) -> CsrfTokens:
    return CsrfTokens(SECRET, clock=clock or Clock(NOW))


def test_token_valid_for_same_address() -> None:
    tokens = make_tokens()
    assert tokens.is_valid(tokens.issue(CLIENT_IP), CLIENT_IP)


def test_token_invalid_for_other_address() -> None:
    tokens = make_tokens()
    assert not tokens.is_valid(tokens.issue(CLIENT_IP), "192.0.2.12")


def test_token_invalid_under_other_secret() -> None:
    token = CsrfTokens(b"another-secret", clock=Clock(NOW)).issue(CLIENT_IP)
    assert not make_tokens().is_valid(token, CLIENT_IP)


def test_token_valid_until_lifetime_ends() -> None:
    clock = Clock(NOW)
    tokens = make_tokens(clock)
    token = tokens.issue(CLIENT_IP)
    clock.now = NOW + DEFAULT_LIFETIME
    assert tokens.is_valid(token, CLIENT_IP)


def test_token_expires_after_lifetime() -> None:
    clock = Clock(NOW)
    tokens = make_tokens(clock)
    token = tokens.issue(CLIENT_IP)
    clock.now = NOW + DEFAULT_LIFETIME + 1
    assert not tokens.is_valid(token, CLIENT_IP)


def test_token_survives_small_clock_step_back() -> None:
    clock = Clock(NOW)
    tokens = make_tokens(clock)
    token = tokens.issue(CLIENT_IP)
    clock.now = NOW - CLOCK_SKEW
    assert tokens.is_valid(token, CLIENT_IP)


def test_token_from_far_future_is_invalid() -> None:
    clock = Clock(NOW + CLOCK_SKEW + 1)
    token = make_tokens(clock).issue(CLIENT_IP)
    assert not make_tokens().is_valid(token, CLIENT_IP)


def test_token_with_changed_time_is_invalid() -> None:
    tokens = make_tokens()
    issued, _, mac = tokens.issue(CLIENT_IP).partition(".")
    assert not tokens.is_valid(f"{int(issued) - 1}.{mac}", CLIENT_IP)


def test_token_with_changed_mac_is_invalid() -> None:
    tokens = make_tokens()
    token = tokens.issue(CLIENT_IP)
    flipped = "0" if token[-1] != "0" else "1"
    assert not tokens.is_valid(token[:-1] + flipped, CLIENT_IP)


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "no-dot",
        "1700000000",
        "1700000000.",
        "abc.def",
        "-1700000000.abc",
        "\uff11\uff17\uff10\uff10.abc",
        "9" * 40 + ".abc",
        "1700000000.\udcff",
    ],
    ids=[
        "empty",
        "dot",
        "no-dot",
        "time-only",
        "empty-mac",
        "letters",
        "negative",
        "fullwidth-digits",
        "huge-time",
        "surrogate",
    ],
)
def test_malformed_token_is_invalid(token: str) -> None:
    assert not make_tokens().is_valid(token, CLIENT_IP)


def test_empty_secret_is_rejected() -> None:
    with pytest.raises(ValueError, match="secret"):
        CsrfTokens(b"")

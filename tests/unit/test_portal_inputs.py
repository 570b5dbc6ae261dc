"""Origins as the portal compares them, and rate-limited logging."""

from __future__ import annotations

import logging

import pytest

from capport.portal.inputs import parse_origin
from capport.portal.throttle import ThrottledLog


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://192.0.2.1", ("http", "192.0.2.1", 80)),
        ("http://192.0.2.1:8080", ("http", "192.0.2.1", 8080)),
        ("https://Portal.Example", ("https", "portal.example", 443)),
        ("http://[2001:db8::1]", ("http", "2001:db8::1", 80)),
        ("http://192.0.2.1/", ("http", "192.0.2.1", 80)),
    ],
)
def test_parse_origin(value: str, expected: tuple[str, str, int]) -> None:
    assert parse_origin(value) == expected


@pytest.mark.parametrize(
    "value",
    ["null", "", "ftp://192.0.2.1", "http://", "http://host:99999", "http://[::1"],
)
def test_parse_origin_rejects(value: str) -> None:
    assert parse_origin(value) is None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def logger() -> logging.Logger:
    return logging.getLogger("capport.portal.test-throttle")


def test_throttle_suppresses_identical_repeats(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    throttled = ThrottledLog(logger, interval=60.0, clock=Clock())
    with caplog.at_level(logging.INFO, logger=logger.name):
        for _ in range(3):
            throttled.log(logging.INFO, "csrf", "Rejected request %d.", 7)
    assert [record.getMessage() for record in caplog.records] == ["Rejected request 7."]


def test_throttle_logs_each_client_address(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    throttled = ThrottledLog(logger, interval=60.0, clock=Clock())
    with caplog.at_level(logging.INFO, logger=logger.name):
        for address in ("192.0.2.11", "192.0.2.12", "192.0.2.11"):
            throttled.log(logging.INFO, "sign-in", "Sign-in by %s failed.", address)
    assert [record.getMessage() for record in caplog.records] == [
        "Sign-in by 192.0.2.11 failed.",
        "Sign-in by 192.0.2.12 failed.",
    ]


def test_throttle_reports_suppressed_count(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    throttled = ThrottledLog(logger, interval=60.0, clock=clock)
    with caplog.at_level(logging.INFO, logger=logger.name):
        for _ in range(3):
            throttled.log(logging.INFO, "csrf", "Rejected a request.")
        clock.now = 61.0
        throttled.log(logging.INFO, "csrf", "Rejected a request.")
    last = caplog.records[-1].getMessage()
    assert last == (
        "Rejected a request. 2 identical messages were suppressed before this one."
    )


def test_throttle_keys_are_independent(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    throttled = ThrottledLog(logger, interval=60.0, clock=Clock())
    with caplog.at_level(logging.INFO, logger=logger.name):
        throttled.log(logging.INFO, "csrf", "CSRF rejected.")
        throttled.log(logging.INFO, "origin", "Origin rejected.")
    assert len(caplog.records) == 2

"""Failed sign-ins per client address."""

from __future__ import annotations

import pytest

from capport.auth.ratelimit import FailureLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_fewer_failures_than_limit_pass(clock: Clock) -> None:
    limiter = FailureLimiter(5, 60.0, clock)
    for _ in range(4):
        limiter.record_failure("192.0.2.1")
    assert limiter.retry_after("192.0.2.1") == 0.0


def test_limit_of_failures_blocks(clock: Clock) -> None:
    limiter = FailureLimiter(5, 60.0, clock)
    for _ in range(5):
        limiter.record_failure("192.0.2.1")
        clock.now += 1
    # The first failure at 1000 leaves the window at 1060; now is 1005.
    assert limiter.retry_after("192.0.2.1") == pytest.approx(55.0)
    assert limiter.retry_after_seconds("192.0.2.1") == 55


def test_block_ends_with_window(clock: Clock) -> None:
    limiter = FailureLimiter(5, 60.0, clock)
    for _ in range(5):
        limiter.record_failure("192.0.2.1")
    clock.now += 60.0
    assert limiter.retry_after("192.0.2.1") == 0.0


def test_window_slides(clock: Clock) -> None:
    limiter = FailureLimiter(2, 60.0, clock)
    limiter.record_failure("192.0.2.1")
    clock.now += 50
    limiter.record_failure("192.0.2.1")
    clock.now += 20
    # The first failure has left the window, the second has not.
    assert limiter.retry_after("192.0.2.1") == 0.0
    limiter.record_failure("192.0.2.1")
    assert limiter.retry_after("192.0.2.1") == pytest.approx(40.0)


def test_other_address_unaffected(clock: Clock) -> None:
    limiter = FailureLimiter(1, 60.0, clock)
    limiter.record_failure("192.0.2.1")
    assert limiter.retry_after("192.0.2.1") > 0
    assert limiter.retry_after("192.0.2.2") == 0.0


def test_reset_forgets_failures(clock: Clock) -> None:
    limiter = FailureLimiter(1, 60.0, clock)
    limiter.record_failure("192.0.2.1")
    limiter.reset("192.0.2.1")
    assert limiter.retry_after("192.0.2.1") == 0.0


def test_zero_max_failures_is_invalid() -> None:
    with pytest.raises(ValueError, match="max_failures"):
        FailureLimiter(0, 60.0)

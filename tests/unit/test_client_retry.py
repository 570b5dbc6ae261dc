"""Back-off, deadlines and the retry after a login, with a simulated clock."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from capport.client import (
    AccessTimeout,
    Backoff,
    DetectionKind,
    NetworkAuthenticationRequired,
    Portal,
    retry_after_login,
    wait_for_access,
)

PORTAL = Portal(DetectionKind.STATUS_511, 511, "http://192.0.2.1/", None, "http://o/")


class FakeClock:
    """A monotonic clock that only sleeping advances."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def opens_after(checks: int) -> Callable[[], bool]:
    counter = itertools.count(1)
    return lambda: next(counter) > checks


def test_backoff_doubles_to_maximum() -> None:
    delays = list(itertools.islice(Backoff(1.0, 5.0).delays(), 5))
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_wait_returns_when_open() -> None:
    clock = FakeClock()
    waited = wait_for_access(
        opens_after(3), 60, Backoff(1.0, 30.0), clock=clock, sleep=clock.sleep
    )
    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert waited == 7.0


def test_wait_checks_before_sleeping() -> None:
    clock = FakeClock()
    wait_for_access(lambda: True, 60, clock=clock, sleep=clock.sleep)
    assert clock.sleeps == []


def test_wait_never_sleeps_past_deadline() -> None:
    clock = FakeClock()
    with pytest.raises(AccessTimeout, match="within 10 s"):
        wait_for_access(
            lambda: False, 10, Backoff(4.0, 4.0), clock=clock, sleep=clock.sleep
        )
    assert clock.sleeps == [4.0, 4.0, 2.0]


def test_timeout_is_a_timeout_error() -> None:
    assert issubclass(AccessTimeout, TimeoutError)


class Sender:
    """Raises a portal error until `opened`, then returns the call count."""

    def __init__(self) -> None:
        self.calls = 0
        self.opened = False

    def __call__(self) -> int:
        self.calls += 1
        if not self.opened:
            raise NetworkAuthenticationRequired(PORTAL)
        return self.calls


def test_retry_without_portal_sends_once() -> None:
    sender = Sender()
    sender.opened = True
    assert retry_after_login(sender, check=lambda: True) == 1


def test_retry_notifies_once_and_retries_once() -> None:
    sender = Sender()
    seen: list[Portal] = []

    def log_in(portal: Portal) -> None:
        seen.append(portal)
        sender.opened = True

    result = retry_after_login(sender, on_portal=log_in, check=lambda: sender.opened)
    assert seen == [PORTAL]
    assert result == 2


def test_retry_second_portal_propagates() -> None:
    sender = Sender()
    with pytest.raises(NetworkAuthenticationRequired):
        retry_after_login(sender, on_portal=lambda portal: None, check=lambda: True)
    assert sender.calls == 2


def test_retry_deadline_propagates() -> None:
    sender = Sender()
    with pytest.raises(AccessTimeout):
        retry_after_login(
            sender,
            on_portal=lambda portal: None,
            check=lambda: False,
            timeout=0.05,
            backoff=Backoff(0.01, 0.01),
        )
    assert sender.calls == 1

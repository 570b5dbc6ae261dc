"""Waiting for a person to log in, then retrying the request once.

    from capport.client import retry_after_login

    response = retry_after_login(lambda: session.get(url))

When send() raises NetworkAuthenticationRequired, retry_after_login calls
on_portal (by default: print where to log in), polls check until the
network is open, with back-off and a deadline, and calls send() once more.
A second portal response, or any other error, propagates to the caller.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
import time
import webbrowser
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TextIO, TypeVar

from capport.client.api import CaptivePortalApi
from capport.client.connectivity import Probe, State, check_connectivity
from capport.client.errors import AccessTimeout, NetworkAuthenticationRequired
from capport.client.portal import Portal

log = logging.getLogger("capport.client")

T = TypeVar("T")
Check = Callable[[], bool]
AsyncCheck = Callable[[], Awaitable[bool]] | Check
Notify = Callable[[Portal], None]

DEFAULT_TIMEOUT = 300.0


@dataclass(frozen=True)
class Backoff:
    """Delays between checks: initial, then multiplied by factor up to maximum."""

    initial: float = 1.0
    maximum: float = 30.0
    factor: float = 2.0

    def delays(self) -> Iterator[float]:
        """Yield the delays, in seconds, without end."""
        delay = self.initial
        while True:
            yield delay
            delay = min(self.maximum, delay * self.factor)


def notify(
    portal: Portal, *, open_browser: bool = False, file: TextIO | None = None
) -> None:
    """Tell the person where to log in, and open the page in a browser if asked.

    Writes to file, standard error by default, so that a program's own
    output stays clean.
    """
    stream = file if file is not None else sys.stderr
    print(f"{portal.describe()}.", file=stream, flush=True)
    if open_browser and portal.url and not webbrowser.open(portal.url):
        print("No browser could be started. Open the address yourself.", file=stream)
    print("Waiting for the network to open...", file=stream, flush=True)


def notify_with_browser(portal: Portal) -> None:
    """Tell the person where to log in and open the login page in a browser."""
    notify(portal, open_browser=True)


def default_check(portal: Portal) -> Check:
    """Return a check for the network of portal: its RFC 8908 API, else a probe.

    The probe is capport.client.connectivity's default, NetworkManager's
    connectivity check URL. Pass your own check to aim elsewhere.
    """
    if portal.api_uri:
        api = CaptivePortalApi(portal.api_uri)
        return lambda: api.refresh() is not None and api.captive is False
    probe = Probe()
    return lambda: check_connectivity(probe).state is State.ONLINE


def wait_for_access(
    check: Check,
    timeout: float = DEFAULT_TIMEOUT,
    backoff: Backoff = Backoff(),
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Call check until it returns True, and return the seconds that took.

    Checks once at once, then after each of backoff's delays, never
    sleeping past the deadline. Raises AccessTimeout when timeout seconds
    pass without a True.
    """
    started = clock()
    deadline = started + timeout
    for delay in backoff.delays():
        if check():
            return clock() - started
        remaining = deadline - clock()
        if remaining <= 0:
            raise AccessTimeout(
                f"the network did not open within {timeout:g} s; log in through "
                "the portal, or allow a longer timeout"
            )
        sleep(min(delay, remaining))
    raise AssertionError("Backoff.delays() ended")  # pragma: no cover


async def wait_for_access_async(
    check: AsyncCheck,
    timeout: float = DEFAULT_TIMEOUT,
    backoff: Backoff = Backoff(),
) -> float:
    """Await check until it returns True, as wait_for_access does.

    check may be a coroutine function, or a plain function, which then runs
    in a worker thread so that the event loop keeps running.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + timeout
    for delay in backoff.delays():
        if await _call_check(check):
            return loop.time() - started
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AccessTimeout(
                f"the network did not open within {timeout:g} s; log in through "
                "the portal, or allow a longer timeout"
            )
        await asyncio.sleep(min(delay, remaining))
    raise AssertionError("Backoff.delays() ended")  # pragma: no cover


async def _call_check(check: AsyncCheck) -> bool:
    if inspect.iscoroutinefunction(check):
        return bool(await check())
    return bool(await asyncio.to_thread(check))


def retry_after_login(
    send: Callable[[], T],
    *,
    on_portal: Notify = notify,
    check: Check | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    backoff: Backoff = Backoff(),
) -> T:
    """Call send(), and after a captive portal wait for access and call it again.

    check defaults to default_check(portal). Raises AccessTimeout if the
    network stays closed for timeout seconds.
    """
    try:
        return send()
    except NetworkAuthenticationRequired as error:
        portal = error.portal
    log.info("Captive portal on %s, waiting for a login.", portal.request_url)
    on_portal(portal)
    waited = wait_for_access(check or default_check(portal), timeout, backoff)
    log.info("The network opened after %.1f s, retrying the request once.", waited)
    return send()


async def retry_after_login_async(
    send: Callable[[], Awaitable[T]],
    *,
    on_portal: Notify = notify,
    check: AsyncCheck | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    backoff: Backoff = Backoff(),
) -> T:
    """Await send(), and after a captive portal wait for access and await it again."""
    try:
        return await send()
    except NetworkAuthenticationRequired as error:
        portal = error.portal
    log.info("Captive portal on %s, waiting for a login.", portal.request_url)
    on_portal(portal)
    waited = await wait_for_access_async(
        check or default_check(portal), timeout, backoff
    )
    log.info("The network opened after %.1f s, retrying the request once.", waited)
    return await send()

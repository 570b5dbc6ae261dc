"""Rate-limited logging for events that a client can repeat at will."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from capport.logformat import RepeatCounter, suppressed_note


class ThrottledLog:
    """Logs an event at most once per interval and counts identical repeats.

    Events are identical when their key ("csrf", "sign-in"), level and
    formatted message match. A message that names another client address is
    another event and is always logged.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._counter = RepeatCounter(interval, clock)

    def log(self, level: int, key: str, message: str, *args: object) -> None:
        """Log message unless an identical one was logged within the interval."""
        text = message % args if args else message
        suppressed = self._counter.check((key, level, text))
        if suppressed is None:
            return
        if suppressed:
            text += suppressed_note(suppressed)
        self._logger.log(level, "%s", text)

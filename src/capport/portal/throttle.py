"""Rate-limited logging for events that a client can repeat at will."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class ThrottledLog:
    """Logs at most one message per key and interval and counts the rest.

    Keys name a kind of event ("csrf", "origin"), not a client, so the table
    stays small however many addresses send bad requests.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, level: int, key: str, message: str, *args: object) -> None:
        """Log message unless one with the same key was logged within the interval."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            message += " %d similar messages were suppressed before this one."
            args = (*args, suppressed)
        self._logger.log(level, message, *args)

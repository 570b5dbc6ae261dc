"""Limiting failed logins per client address, with a sliding window."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

# Keys (client addresses) tracked at once. Beyond this, the tenth of the
# entries whose newest failure is oldest is dropped, so memory stays bounded
# under a flood from many addresses and the sort runs rarely.
MAX_TRACKED = 65536


class FailureLimiter:
    """Counts failed logins per key and blocks a key after max_failures.

    A key is blocked while max_failures of its failures fall within the last
    window seconds. Time comes from a monotonic clock.
    """

    def __init__(
        self,
        max_failures: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_failures < 1:
            raise ValueError(f"invalid max_failures {max_failures!r}: at least 1")
        self._max = max_failures
        self._window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, key: str) -> float:
        """Return the seconds until key may try again; 0.0 when it may now."""
        failures = self._recent(key)
        if len(failures) < self._max:
            return 0.0
        # The oldest failure that still counts must leave the window.
        return max(0.0, failures[-self._max] + self._window - self._clock())

    def retry_after_seconds(self, key: str) -> int:
        """Return retry_after rounded up to whole seconds, for Retry-After."""
        return math.ceil(self.retry_after(key))

    def record_failure(self, key: str) -> None:
        """Count one failed attempt by key."""
        failures = self._recent(key)
        failures.append(self._clock())
        # Older failures can no longer block, so keep at most max_failures.
        while len(failures) > self._max:
            failures.popleft()
        self._failures[key] = failures
        if len(self._failures) > MAX_TRACKED:
            self._drop_oldest()

    def reset(self, key: str) -> None:
        """Forget key's failures, after it logged in."""
        self._failures.pop(key, None)

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        cutoff = self._clock() - self._window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def _drop_oldest(self) -> None:
        by_age = sorted(self._failures, key=lambda key: self._failures[key][-1])
        for key in by_age[: len(by_age) - MAX_TRACKED * 9 // 10]:
            del self._failures[key]

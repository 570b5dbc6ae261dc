"""Human-readable times and durations for the portal's pages."""

from __future__ import annotations

from datetime import datetime

_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60))


def describe_duration(seconds: float) -> str:
    """Describe a duration in at most two units, such as "1 hour 5 minutes".

    The duration is rounded to the nearest minute, halves up, so a fresh
    one-hour session reads "1 hour" rather than "59 minutes".
    """
    if seconds <= 0:
        return "no time"
    if seconds < 60:
        return "less than a minute"
    left = int(seconds / 60 + 0.5) * 60
    parts = []
    for name, size in _UNITS:
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count} {name}" if count == 1 else f"{count} {name}s")
    return " ".join(parts[:2])


def local_datetime(timestamp: float) -> datetime:
    """Return a Unix time as an aware datetime in the gateway's time zone."""
    return datetime.fromtimestamp(timestamp).astimezone()


def format_local_time(timestamp: float) -> str:
    """Format a Unix time for people, such as "2024-05-01 14:05 CEST"."""
    return local_datetime(timestamp).strftime("%Y-%m-%d %H:%M %Z")


def format_iso_time(timestamp: float) -> str:
    """Format a Unix time as ISO 8601 with offset, for a <time datetime> value."""
    return local_datetime(timestamp).isoformat(timespec="seconds")

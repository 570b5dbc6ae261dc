"""Log formatters and filters: key=value lines, hidden secrets, counted repeats.

A key=value line carries the time, level, logger and message, then every
field a caller passed with `extra`, so that a log collector can index
`session=17 mac=02:00:00:00:00:11` without parsing the sentence.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import Any

# The attributes every LogRecord has; anything else on a record came from
# the `extra` argument of the logging call.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
) | {"message", "asctime", "taskName"}
# uvicorn passes a copy of its message with terminal colour codes.
_IGNORED_EXTRA = frozenset({"color_message"})

# Field names whose values are never written out: passwords, voucher codes,
# RADIUS secrets and admin tokens.
_SECRET_NAME = re.compile(r"pass|secret|token|code|authori[sz]ation|cookie", re.I)
HIDDEN = "(hidden)"

_BARE_VALUE = re.compile(r'^[^\s"=\\]+$')

# C0 and C1 control characters, DEL and the Unicode line and paragraph
# separators. A client can put any of them into a path or a form field, and
# written out raw they would start a forged log line or drive the terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# Continuation lines of a text record (tracebacks) start with this, so a
# line that starts with a timestamp always starts a record.
CONTINUATION_INDENT = "  "


def _escape_character(match: re.Match[str]) -> str:
    character = match.group()
    short = _SHORT_ESCAPES.get(character)
    if short is not None:
        return short
    code = ord(character)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_control(text: str) -> str:
    """Return text with each control character written as a backslash escape."""
    return _CONTROL.sub(_escape_character, text)


def one_line(text: str) -> str:
    """Join a multi-line message into one log line.

    Log lines escape line breaks (see escape_control), which would show a
    configuration error's list of problems as literal "\\n". A heading
    that ends with a colon is followed by the items, separated by "; ".
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        return f"{lines[0]} {'; '.join(lines[1:])}"
    return "; ".join(lines)


def quote_value(value: object) -> str:
    """Return value as it appears after `key=`: bare when it can be, else quoted."""
    text = "" if value is None else str(value)
    if _BARE_VALUE.match(text) and not _CONTROL.search(text):
        return text
    escaped = escape_control(text.replace("\\", "\\\\").replace('"', '\\"'))
    return f'"{escaped}"'


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """Return the fields a logging call passed through `extra`, secrets hidden."""
    fields = {}
    for name, value in vars(record).items():
        if name in _STANDARD_ATTRIBUTES or name in _IGNORED_EXTRA:
            continue
        if name.startswith("_"):
            continue
        fields[name] = HIDDEN if _SECRET_NAME.search(name) else value
    return fields


def format_timestamp(created: float) -> str:
    """Return an RFC 3339 UTC time with milliseconds: 2026-12-04T16:50:01.123Z."""
    moment = datetime.fromtimestamp(created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class KeyValueFormatter(logging.Formatter):
    """Formats a record as one line: ts=... level=... logger=... msg="..." key=value."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "ts": format_timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name, value in extra_fields(record).items():
            fields.setdefault(name, value)
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        return " ".join(
            f"{name}={quote_value(value)}" for name, value in fields.items()
        )


TEXT_LAYOUT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TextFormatter(logging.Formatter):
    """The human-readable format, with the `extra` fields appended as key=value.

    Control characters in the message are escaped, and the lines of a
    traceback are indented, so that no text a client sends can start a line
    that reads as a record of its own.
    """

    def __init__(self, layout: str = TEXT_LAYOUT, with_fields: bool = True) -> None:
        super().__init__(layout)
        self._with_fields = with_fields

    def format(self, record: logging.LogRecord) -> str:
        record.message = escape_control(record.getMessage())
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        fields = extra_fields(record) if self._with_fields else {}
        if fields:
            pairs = " ".join(
                f"{name}={quote_value(value)}" for name, value in fields.items()
            )
            line = f"{line} [{pairs}]"
        detail = self._detail(record)
        if not detail:
            return line
        indented = (
            CONTINUATION_INDENT + escape_control(part) for part in detail.split("\n")
        )
        return line + "\n" + "\n".join(indented)

    def _detail(self, record: logging.LogRecord) -> str:
        """Return the traceback and stack of record, as logging.Formatter adds them."""
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        parts = []
        if record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(self.formatStack(record.stack_info))
        return "\n".join(parts)


class RepeatCounter:
    """Counts repeats of identical events within a window.

    The first event of a key passes, and the others within window seconds
    of it are counted instead. The first one after the window passes and
    carries the count. A key that never recurs keeps its count unreported.
    """

    def __init__(
        self,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10000,
    ) -> None:
        self.window = window
        self._clock = clock
        self._max_keys = max_keys
        # key -> (start of the window, events suppressed in it)
        self._seen: dict[Hashable, tuple[float, int]] = {}

    def check(self, key: Hashable) -> int | None:
        """Return None to suppress this event, else how many were suppressed."""
        now = self._clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.window:
            self._seen[key] = (seen[0], seen[1] + 1)
            return None
        self._seen[key] = (now, 0)
        if len(self._seen) > self._max_keys:
            self._forget_old(now)
        return 0 if seen is None else seen[1]

    def _forget_old(self, now: float) -> None:
        # Bounds memory when many distinct events appear. A forgotten key
        # loses its pending count, and its next event passes.
        recent = {
            key: value
            for key, value in self._seen.items()
            if now - value[0] < self.window
        }
        if len(recent) > self._max_keys // 2:
            by_start = sorted(recent.items(), key=lambda item: item[1][0])
            recent = dict(by_start[-(self._max_keys // 2) :])
        self._seen = recent


# Passed as `extra` to log a record that RepeatFilter must never drop, such
# as the error of a reload that an operator requested with SIGHUP.
ALWAYS_LOG = {"_always_log": True}


def suppressed_note(count: int) -> str:
    """Return the sentence that states how many repeats were suppressed, or ""."""
    if count == 0:
        return ""
    noun = "message was" if count == 1 else "messages were"
    return f" {count} identical {noun} suppressed before this one."


class RepeatFilter(logging.Filter):
    """Collapses repeats of one error within a window into a count.

    Records are the same when logger, level and formatted message match, so
    "Lookup of 192.0.2.12 failed" and "Lookup of 192.0.2.13 failed" are two
    records and each is logged. The first record passes, and identical ones
    within window seconds are dropped and counted. The first one after the
    window passes with the number dropped before it, both in its message
    and as the field `repeated=N`. Records logged with `extra=ALWAYS_LOG`
    always pass. So do records below ERROR: warnings that a client can
    trigger at will are throttled where they are logged
    (capport.portal.throttle), and each of the others is worth a line.
    """

    def __init__(
        self, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.window = window
        self._counter = RepeatCounter(window, clock)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR or getattr(record, "_always_log", False):
            return True
        message = _formatted_message(record)
        suppressed = self._counter.check((record.name, record.levelno, message))
        if suppressed is None:
            return False
        if suppressed > 0:
            record.msg = message + suppressed_note(suppressed)
            record.args = None
            record.repeated = suppressed
        return True


def _formatted_message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except (TypeError, ValueError):
        # Arguments that do not fit the template. The handler reports that
        # error when it formats the record, so it is grouped, not raised.
        return f"{record.msg!s} {record.args!r}"

"""The result of one host check, and the report that lists them."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class Status(enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Check:
    """One check: its name, outcome, what was found and, unless ok, the fix."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    @classmethod
    def ok(cls, name: str, detail: str) -> Check:
        return cls(name, Status.OK, detail)

    @classmethod
    def warn(cls, name: str, detail: str, fix: str) -> Check:
        return cls(name, Status.WARN, detail, fix)

    @classmethod
    def fail(cls, name: str, detail: str, fix: str) -> Check:
        return cls(name, Status.FAIL, detail, fix)


def render(checks: Iterable[Check]) -> str:
    """Return one line per check, each fix indented on the line after it."""
    rows = list(checks)
    width = max((len(check.name) for check in rows), default=0)
    lines = []
    indent = " " * (4 + 2 + width + 2)
    for check in rows:
        first, *rest = check.detail.splitlines() or [""]
        lines.append(f"{check.status.value:<4}  {check.name:<{width}}  {first}")
        lines += [indent + line.strip() for line in rest]
        if check.fix:
            lines.append(f"{indent}fix: {check.fix}")
    return "\n".join(lines) + "\n"


def summary(checks: Iterable[Check]) -> str:
    """Return a line such as "9 ok, 1 warning, 1 failure"."""
    counts = {status: 0 for status in Status}
    for check in checks:
        counts[check.status] += 1
    warnings = counts[Status.WARN]
    failures = counts[Status.FAIL]
    return (
        f"{counts[Status.OK]} ok, {warnings} warning{'' if warnings == 1 else 's'}, "
        f"{failures} failure{'' if failures == 1 else 's'}"
    )


def has_failure(checks: Iterable[Check]) -> bool:
    return any(check.status is Status.FAIL for check in checks)

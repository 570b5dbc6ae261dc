"""Figures, their targets, and the arithmetic that judges them. No I/O.

A benchmark reduces its measurements to Figure values. A figure with a
target is met or missed; one without a target is reported as measured.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum


class Comparison(Enum):
    """The comparison of a measured value with a target's threshold."""

    AT_LEAST = ">="
    AT_MOST = "<="
    UNDER = "<"


_WORDS = {
    Comparison.AT_LEAST: "at least",
    Comparison.AT_MOST: "at most",
    Comparison.UNDER: "under",
}


@dataclass(frozen=True, slots=True)
class Target:
    """A threshold a figure must meet, with the unit it is written in."""

    comparison: Comparison
    threshold: float
    unit: str

    def met_by(self, value: float) -> bool:
        """Tell whether value meets the target; NaN never does."""
        if math.isnan(value):
            return False
        if self.comparison is Comparison.AT_LEAST:
            return value >= self.threshold
        if self.comparison is Comparison.AT_MOST:
            return value <= self.threshold
        return value < self.threshold

    def describe(self) -> str:
        """Return the target as a phrase, such as "at least 0.95x"."""
        return f"{_WORDS[self.comparison]} {format_value(self.threshold, self.unit)}"


def at_least(threshold: float, unit: str) -> Target:
    return Target(Comparison.AT_LEAST, threshold, unit)


def at_most(threshold: float, unit: str) -> Target:
    return Target(Comparison.AT_MOST, threshold, unit)


def under(threshold: float, unit: str) -> Target:
    return Target(Comparison.UNDER, threshold, unit)


@dataclass(frozen=True, slots=True)
class Figure:
    """One reported number: what it is, its value, its reference and target.

    measured carries the raw numbers behind value (both sides of a ratio,
    the spread over rounds) as text for the report.
    """

    name: str
    value: float
    unit: str
    measured: str = ""
    reference: str = ""
    target: Target | None = None

    @property
    def met(self) -> bool | None:
        """Whether the target is met, or None for a figure without a target."""
        if self.target is None:
            return None
        return self.target.met_by(self.value)

    def formatted(self) -> str:
        return format_value(self.value, self.unit)


@dataclass(slots=True)
class Result:
    """The outcome of one benchmark: figures, notes, and the commands it ran."""

    name: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    method: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    profiles: list[Profile] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def missed(self) -> list[Figure]:
        return [figure for figure in self.figures if figure.met is False]


@dataclass(frozen=True, slots=True)
class ProfileEntry:
    """One function in a sampled profile, with its share of the samples."""

    function: str
    own_share: float
    total_share: float


@dataclass(frozen=True, slots=True)
class Profile:
    """The top entries of a profile taken while a target was missed."""

    title: str
    command: str
    samples: int
    entries: tuple[ProfileEntry, ...]
    cause: str = ""
    # Each thread's name and share of the samples, largest first.
    threads: tuple[tuple[str, float], ...] = ()


# Arithmetic


def ratio(measured: float, reference: float) -> float:
    """Return measured / reference, or NaN when the reference is not positive.

    NaN fails every target, so a reference that produced nothing (a crashed
    nginx, an iperf3 run with no data) cannot make a figure pass.
    """
    if not reference > 0 or not math.isfinite(measured):
        return math.nan
    return measured / reference


def paired_ratio(measured: Sequence[float], reference: Sequence[float]) -> float:
    """Return the median of measured[i] / reference[i] over rounds i.

    Each pair ran back to back, so a change in the machine's load between
    rounds (other programs, the host) affects both sides of one ratio and
    cancels out, where a ratio of medians would keep it.
    """
    if len(measured) != len(reference):
        raise ValueError(
            f"cannot pair {len(measured)} measurements with {len(reference)} "
            "references: each round needs both"
        )
    return median([ratio(m, r) for m, r in zip(measured, reference, strict=True)])


def percentile(values: Sequence[float], fraction: float) -> float:
    """Return the fraction-quantile of values by the nearest-rank method.

    Nearest rank returns a value that was observed, so p99 of 100 samples is
    the 99th smallest; NaN for no values.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"invalid quantile {fraction!r}: expected 0 < q <= 1")
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = math.ceil(fraction * len(ordered))
    return ordered[max(rank, 1) - 1]


def median(values: Sequence[float]) -> float:
    """Return the median of values, or NaN for none."""
    if not values:
        return math.nan
    return float(statistics.median(values))


def spread(values: Sequence[float]) -> float:
    """Return (max - min) / median of values: 0 for identical runs, NaN for none."""
    middle = median(values)
    if not values or not middle:
        return math.nan
    return (max(values) - min(values)) / middle


def format_value(value: float, unit: str) -> str:
    """Format value with its unit for tables: "1.02x", "3.4 ms", "51,200 req/s"."""
    if math.isnan(value):
        return "n/a"
    if unit == "x":
        return f"{value:.2f}x"
    if unit in ("req/s", "logins/s", "connections"):
        return f"{value:,.0f} {unit}"
    if unit == "Gbit/s":
        return f"{value:.2f} {unit}"
    if unit == "%":
        return f"{value:.1f} %"
    if unit in ("ns", "ms", "s", "MB", "KB"):
        # Three significant digits at most, so 2.35 ms and 250 MB.
        digits = 2
        if abs(value) >= 100:
            digits = 0
        elif abs(value) >= 10:
            digits = 1
        return f"{value:,.{digits}f} {unit}"
    return f"{value:g} {unit}".strip()

"""Targets, ratios and percentiles of the benchmark figures."""

from __future__ import annotations

import math

import pytest

from capport.bench.figures import (
    Figure,
    Result,
    Target,
    at_least,
    at_most,
    format_value,
    median,
    paired_ratio,
    percentile,
    ratio,
    spread,
    under,
)


@pytest.mark.parametrize(
    ("target", "value", "met"),
    [
        (at_least(1.0, "x"), 1.0, True),
        (at_least(1.0, "x"), 0.999, False),
        (at_least(0.8, "x"), 0.81, True),
        (at_most(1.0, "x"), 1.0, True),
        (at_most(1.0, "x"), 1.01, False),
        (under(10.0, "ms"), 9.99, True),
        (under(10.0, "ms"), 10.0, False),
        (under(300.0, "MB"), 301.0, False),
    ],
)
def test_target_comparison(target: Target, value: float, met: bool) -> None:
    assert target.met_by(value) is met


@pytest.mark.parametrize(
    "target", [at_least(0.95, "x"), at_most(1.0, "x"), under(3.0, "s")]
)
def test_nan_misses_every_target(target: Target) -> None:
    assert target.met_by(math.nan) is False


def test_target_description() -> None:
    assert at_least(0.95, "x").describe() == "at least 0.95x"
    assert under(10.0, "ms").describe() == "under 10.0 ms"
    assert at_least(500.0, "logins/s").describe() == "at least 500 logins/s"


def test_ratio() -> None:
    assert ratio(80.0, 100.0) == pytest.approx(0.8)


@pytest.mark.parametrize("reference", [0.0, -1.0, math.nan])
def test_ratio_without_reference_is_nan(reference: float) -> None:
    assert math.isnan(ratio(50.0, reference))


def test_ratio_of_nan_is_nan() -> None:
    assert math.isnan(ratio(math.nan, 1.0))


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 1.0) == 100.0


def test_percentile_of_few_values_is_observed() -> None:
    assert percentile([3.0, 1.0, 2.0], 0.99) == 3.0
    assert percentile([7.0], 0.5) == 7.0


def test_percentile_of_nothing_is_nan() -> None:
    assert math.isnan(percentile([], 0.99))


@pytest.mark.parametrize("fraction", [0.0, 1.5, -0.1])
def test_percentile_invalid_fraction(fraction: float) -> None:
    with pytest.raises(ValueError, match="invalid quantile"):
        percentile([1.0], fraction)


def test_median_and_spread() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert spread([90.0, 100.0, 110.0]) == pytest.approx(0.2)
    assert spread([5.0]) == 0.0


def test_median_and_spread_of_nothing() -> None:
    assert math.isnan(median([]))
    assert math.isnan(spread([]))


def test_figure_without_target_has_no_verdict() -> None:
    assert Figure("listing", 1.5, "s").met is None


def test_figure_verdict_follows_target() -> None:
    assert Figure("rate", 510.0, "logins/s", target=at_least(500.0, "logins/s")).met
    assert (
        Figure("rate", 490.0, "logins/s", target=at_least(500.0, "logins/s")).met
        is False
    )


def test_result_lists_missed_figures() -> None:
    missed = Figure("b", 0.5, "x", target=at_least(1.0, "x"))
    result = Result(
        "n",
        "t",
        figures=[
            Figure("a", 1.2, "x", target=at_least(1.0, "x")),
            missed,
            Figure("c", 1, "s"),
        ],
    )
    assert result.missed == [missed]


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (1.0234, "x", "1.02x"),
        (51234.4, "req/s", "51,234 req/s"),
        (2.345, "ms", "2.35 ms"),
        (23.46, "ms", "23.5 ms"),
        (250.4, "MB", "250 MB"),
        (6.742, "Gbit/s", "6.74 Gbit/s"),
        (math.nan, "x", "n/a"),
    ],
)
def test_format_value(value: float, unit: str, text: str) -> None:
    assert format_value(value, unit) == text


def test_paired_ratio_cancels_drift() -> None:
    # The machine got faster between rounds; each round's ratio is 0.9.
    measured = [45.0, 90.0, 135.0]
    reference = [50.0, 100.0, 150.0]
    assert paired_ratio(measured, reference) == pytest.approx(0.9)


def test_paired_ratio_median_of_rounds() -> None:
    assert paired_ratio([1.0, 3.0, 2.0], [1.0, 1.0, 1.0]) == pytest.approx(2.0)


def test_paired_ratio_needs_pairs() -> None:
    with pytest.raises(ValueError, match="cannot pair"):
        paired_ratio([1.0, 2.0], [1.0])

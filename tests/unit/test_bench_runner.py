"""Choosing benchmarks with --only."""

from __future__ import annotations

import pytest

from capport.bench.runner import NAMES, select


def test_select_all_in_running_order() -> None:
    assert [b.name for b in select([])] == list(NAMES)


def test_select_keeps_running_order() -> None:
    chosen = [b.name for b in select(["scale", "responder"])]
    assert chosen == ["responder", "scale"]


def test_scale_runs_last() -> None:
    assert NAMES[-1] == "scale"


def test_select_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown benchmark speed"):
        select(["speed"])

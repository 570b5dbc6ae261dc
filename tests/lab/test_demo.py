"""`capport lab demo` end to end: real clients through the real gateway."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from rich.console import Console

from capport.lab import system
from capport.lab.demo import run_demo

pytestmark = pytest.mark.lab


def test_demo_passes_and_removes_lab(new_prefix: Callable[[str], str]) -> None:
    prefix = new_prefix("d")
    output = io.StringIO()
    passed = run_demo(prefix, Console(file=output, width=200))
    text = output.getvalue()
    assert passed, text
    assert "Every step behaved." in text
    assert "FAIL" not in text
    assert not system.namespace_exists(f"{prefix}-gw")

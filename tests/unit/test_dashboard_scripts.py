"""The dashboard's pure script functions, run in Node.js when it is installed."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from capport.dashboard.routes import STATIC

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")


def evaluate(module: str, expression: str) -> Any:
    """Import module from the static folder in Node and return expression as JSON."""
    source = (
        f"import * as m from {json.dumps((STATIC / module).as_uri())};\n"
        f"console.log(JSON.stringify({expression}));"
    )
    assert NODE is not None
    result = subprocess.run(
        [NODE, "--input-type=module", "-e", source],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 1), (0.3, 0.5), (1, 1), (7, 10), (12, 20), (180, 200), (4100, 5000)],
)
def test_nice_maximum(value: float, expected: float) -> None:
    assert evaluate("charts.js", f"m.niceMaximum({value})") == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, "0 B"), (999, "999 B"), (1500, "1.5 kB"), (2_500_000, "2.5 MB"),
     (123_456_789, "123 MB"), (5e12, "5.0 TB")],
)  # fmt: skip
def test_format_bytes(value: float, expected: str) -> None:
    assert evaluate("format.js", f"m.formatBytes({value})") == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(5, "0 min 05 s"), (125, "2 min 05 s"), (3660, "1 h 01 min"),
     (90000, "1 d 1 h"), (-3, "0 min 00 s")],
)  # fmt: skip
def test_format_duration(seconds: float, expected: str) -> None:
    assert evaluate("format.js", f"m.formatDuration({seconds})") == expected


def test_codes_pasted_lines() -> None:
    text = "k7qxm3hnpd\\n  AB2CD-EF3GH \\nnot a code\\n"
    assert evaluate("codes.js", f'm.parseCodes("{text}")') == [
        {"code": "K7QXM-3HNPD"},
        {"code": "AB2CD-EF3GH"},
    ]


def test_codes_from_voucher_csv() -> None:
    text = (
        "id,code,duration_seconds,quota_bytes,max_devices,max_uses\\r\\n"
        "17,K7QXM-3HNPD,7200,,1,3\\r\\n"
        "18,AB2CD-EF3GH,7200,,2,\\r\\n"
    )
    assert evaluate("codes.js", f'm.parseCodes("{text}")') == [
        {"code": "K7QXM-3HNPD", "id": "17", "duration": 7200, "devices": 1},
        {"code": "AB2CD-EF3GH", "id": "18", "duration": 7200, "devices": 2},
    ]


def test_codes_empty_text() -> None:
    assert evaluate("codes.js", 'm.parseCodes("")') == []

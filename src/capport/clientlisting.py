"""The text views of `capport clients`: a table and aligned plain lines.

A terminal gets a table; a pipe, or a list too long for rich to lay out
quickly, gets aligned plain lines. Neither cuts a value short: a column is
as wide as its widest value, and a narrow terminal folds the table's cells
rather than cropping them. `--json` has every field; these views keep what
an operator scans for: who, how, how long and how much.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Column, Table

# rich lays out a table in time that grows fast with its rows (about 45 s
# for 100,000 on a 2-core machine), so long lists are printed as lines.
PLAIN_LIST_ROWS = 1000

HEADINGS = ("MAC", "IP", "method", "since", "remaining", "received", "sent")

_UNITS = ("B", "kB", "MB", "GB", "TB")


def print_clients(rows: list[dict[str, Any]], echo: Callable[[str], None]) -> None:
    """Print rows of the admin API's client list, then their count."""
    cells = [client_cells(row) for row in rows]
    if len(rows) > PLAIN_LIST_ROWS or not sys.stdout.isatty():
        for line in plain_lines(cells):
            echo(line)
    else:
        _print_table(cells)
    echo(f"{len(rows)} authorised device(s).")


def client_cells(row: dict[str, Any]) -> tuple[str, ...]:
    """Return the cells of one client, in the order of HEADINGS."""
    method = row["method"]
    if row.get("subject"):
        method = f"{method} {row['subject']}"
    return (
        row["mac"],
        row["ip"],
        method,
        clock(row["since"]),
        duration(row["remaining"]),
        size(row.get("bytes_down", 0)),
        size(row.get("bytes_up", 0)),
    )


def plain_lines(cells: list[tuple[str, ...]]) -> list[str]:
    """Align cells in columns two spaces apart, each as wide as its widest cell."""
    table = [HEADINGS, *cells]
    widths = [max(len(row[column]) for row in table) for column in range(len(HEADINGS))]
    return ["  ".join(_padded(row, widths)).rstrip() for row in table]


def _padded(row: tuple[str, ...], widths: list[int]) -> list[str]:
    return [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]


def clock(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%m-%d %H:%M")


def duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def size(count: int) -> str:
    """Format count bytes in decimal units, with at most three significant figures."""
    value, unit = float(count), 0
    while value >= 999.5 and unit < len(_UNITS) - 1:
        value /= 1000
        unit += 1
    if unit == 0:
        return f"{count} B"
    return f"{value:.3g} {_UNITS[unit]}" if value < 1000 else f"{value:.0f} TB"


def _print_table(cells: list[tuple[str, ...]]) -> None:
    table = Table(
        *(Column(heading, overflow="fold") for heading in HEADINGS),
        box=box.SIMPLE_HEAD,
    )
    for row in cells:
        table.add_row(*row)
    Console().print(table)

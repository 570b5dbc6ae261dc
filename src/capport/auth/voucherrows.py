"""Vouchers as rows: the fields the admin API and the command line show.

The admin API and the command line's offline mode build the same rows and
the same CSV from the store, so both print a voucher the same way.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from capport.auth.records import Voucher

CSV_COLUMNS = (
    "id", "state", "duration_seconds", "quota_bytes", "max_devices", "max_uses",
    "uses", "created", "first_used", "revoked",
)  # fmt: skip


def voucher_row(voucher: Voucher, now: float) -> dict[str, Any]:
    """Describe voucher with its state as of now, keyed as the admin API is."""
    return {
        "id": voucher.id,
        "state": voucher.state(now),
        "duration": voucher.duration,
        "quota_bytes": voucher.quota_bytes,
        "max_devices": voucher.max_devices,
        "max_uses": voucher.max_uses,
        "uses": voucher.uses,
        "created": voucher.created_at,
        "first_used": voucher.first_used_at,
        "revoked": voucher.revoked_at,
    }


def render_vouchers_csv(rows: list[dict[str, Any]]) -> str:
    """Render voucher rows as CSV with a header line; codes are not stored."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                row["id"], row["state"], f"{row['duration']:g}",
                _blank(row["quota_bytes"]), _blank(row["max_devices"]),
                _blank(row["max_uses"]), row["uses"], row["created"],
                _blank(row["first_used"]), _blank(row["revoked"]),
            ]
        )  # fmt: skip
    return buffer.getvalue()


def _blank(value: object) -> object:
    return "" if value is None else value

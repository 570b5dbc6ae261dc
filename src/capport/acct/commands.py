"""`capport accounting export`: the accounting records as CSV.

The command reads the store file directly, so it works whether the
gateway runs or not.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from capport.acct.records import AccountingRecord, parse_time, render_csv
from capport.auth.commands import run_on_store, store_options


@click.group("accounting")
def accounting_group() -> None:
    """Accounting records of ended sessions: who, when, how long, how much."""


@accounting_group.command("export")
@click.option(
    "--since",
    default=None,
    help="Start of the period: a date (2026-12-01), a UTC date and time "
    "(2026-12-01T08:00) or a duration ago (7d) [default: the oldest record].",
)
@click.option(
    "--until",
    default=None,
    help="End of the period, in the same forms [default: now].",
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write to this file (created with mode 0600) instead of stdout.",
)
@store_options
def export(
    since: str | None,
    until: str | None,
    csv_path: Path | None,
    config_path: Path,
    store_path: Path | None,
) -> None:
    """Print the records of sessions that overlap the period, as CSV."""
    now = time.time()
    start = _option_time("--since", since, now, 0.0)
    end = _option_time("--until", until, now, now)
    if end <= start:
        raise click.BadParameter("--until must be later than --since")
    records: list[AccountingRecord] = run_on_store(
        config_path, store_path, lambda store: store.accounting_records(start, end)
    )
    text = render_csv(records)
    if csv_path is None:
        click.echo(text, nl=False)
    else:
        _write_private(csv_path, text)
    click.echo(f"Exported {len(records)} accounting record(s).", err=True)


def _option_time(name: str, value: str | None, now: float, default: float) -> float:
    if value is None:
        return default
    try:
        return parse_time(value, now)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint=name) from None


def _write_private(path: Path, text: str) -> None:
    # The records name devices and users, so only the owner may read them.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as error:
        raise click.ClickException(
            f"cannot write the CSV file {path}: {error.strerror}"
        ) from None
    with os.fdopen(descriptor, "w", newline="", encoding="utf-8") as file:
        file.write(text)

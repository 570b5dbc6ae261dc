"""`capport accounting export`: the accounting records as CSV.

The command fetches the records from the running gateway's control socket
(GET /api/v1/accounting.csv), or with --store PATH reads a store file
directly, such as while the gateway is stopped.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import time
from pathlib import Path

import click

from capport.acct.records import parse_time, render_csv
from capport.auth.backends import with_store
from capport.auth.commands import call, control_socket, gateway_options
from capport.controlclient import ControlClient


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
@gateway_options(
    "Read this SQLite store file directly instead of asking the running "
    "gateway, such as while it is stopped."
)
def export(
    since: str | None,
    until: str | None,
    csv_path: Path | None,
    config_path: Path,
    socket_path: Path | None,
    store_path: Path | None,
) -> None:
    """Print the records of sessions that overlap the period, as CSV."""
    now = time.time()
    start = _option_time("--since", since, now, 0.0)
    end = _option_time("--until", until, now, now)
    if end <= start:
        raise click.BadParameter("--until must be later than --since")
    socket = control_socket(config_path, socket_path, store_path)
    if socket is None:
        assert store_path is not None
        text = call(lambda: _store_csv(store_path, start, end))
    else:
        # The gateway parses the values as given, so a duration such as 7d
        # counts back from its own clock, which is this machine's.
        text = call(lambda: _gateway_csv(socket, since, until))
    if csv_path is None:
        click.echo(text, nl=False)
    else:
        _write_private(csv_path, text)
    # The first line is the header.
    rows = max(0, len(list(csv.reader(io.StringIO(text)))) - 1)
    click.echo(f"Exported {rows} accounting record(s).", err=True)


def _gateway_csv(socket: Path, since: str | None, until: str | None) -> str:
    with ControlClient(socket) as control:
        return control.accounting_csv(since, until)


def _store_csv(path: Path, start: float, end: float) -> str:
    records = asyncio.run(
        with_store(path, "full", lambda store: store.accounting_records(start, end))
    )
    return render_csv(records)


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
    try:
        # open() applies the mode only to a new file, so an existing one is
        # narrowed here.
        os.fchmod(descriptor, 0o600)
    except OSError as error:
        os.close(descriptor)
        raise click.ClickException(
            f"cannot make the CSV file {path} private (mode 0600): {error.strerror}"
        ) from None
    with os.fdopen(descriptor, "w", newline="", encoding="utf-8") as file:
        file.write(text)

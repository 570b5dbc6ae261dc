"""`capport vouchers`: create, list, revoke and export vouchers.

Like `capport users`, the commands go through the running gateway's control
socket, or with --store PATH change a store file directly.
"""

from __future__ import annotations

import csv
import io
import json
import re
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import click

from capport.auth.commands import (
    accounts_options,
    call,
    choose_accounts,
    format_limit,
    format_time,
)
from capport.config import check_session_length, parse_duration
from capport.privatefile import PrivateFile, open_private

MAX_VOUCHERS_PER_RUN = 100_000

_BYTES = re.compile(r"^\s*(\d+)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_BYTE_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}


def parse_bytes(value: str) -> int:
    """Convert a size such as "500000", "500k", "100M" or "2GiB" to bytes.

    k, M, G and T are powers of 1000; with an "i" (KiB, MiB) powers of 1024.
    """
    match = _BYTES.match(value)
    if match is None:
        raise ValueError(
            f"invalid size {value!r}: expected bytes such as 1000000, 500M or 2GiB"
        )
    number, prefix, suffix = match.groups()
    base = 1024 if suffix.lower().startswith("i") else 1000
    size = int(number) * base ** _BYTE_POWERS[prefix.lower()]
    if size <= 0:
        raise ValueError(f"invalid size {value!r}: it must be positive")
    return size


def _duration_option(
    context: click.Context, parameter: click.Parameter, value: str
) -> float:
    try:
        return check_session_length(parse_duration(value), given=value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _bytes_option(
    context: click.Context, parameter: click.Parameter, value: str | None
) -> int | None:
    if value is None:
        return None
    try:
        return parse_bytes(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


_force_option = click.option(
    "--force", is_flag=True, help="Replace the CSV file if it exists."
)


@click.group("vouchers")
def vouchers_group() -> None:
    """Create, list, revoke and export the vouchers of the portal's voucher sign-in."""


@vouchers_group.command("create")
@click.option(
    "--count",
    type=click.IntRange(1, MAX_VOUCHERS_PER_RUN),
    default=1,
    show_default=True,
    help="Number of vouchers to create.",
)
@click.option(
    "--duration",
    required=True,
    callback=_duration_option,
    help='Access time from the first use, such as 3600, "90m", "1h" or "2d".',
)
@click.option(
    "--quota",
    default=None,
    callback=_bytes_option,
    help="Data allowance in bytes per session, up and down, such as 500M or 2GiB.",
)
@click.option(
    "--devices",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Devices that may use one voucher at the same time.",
)
@click.option(
    "--uses",
    type=click.IntRange(min=1),
    default=None,
    help="Sign-ins one voucher allows in all [default: unlimited within its time].",
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write the vouchers to this new CSV file (created with mode 0600).",
)
@_force_option
@accounts_options
def create_vouchers(
    count: int,
    duration: float,
    quota: int | None,
    devices: int,
    uses: int | None,
    csv_path: Path | None,
    force: bool,
    config_path: Path,
    socket_path: Path | None,
    store_path: Path | None,
) -> None:
    """Create vouchers and print their codes, one per line.

    The store keeps only a hash of each code, so this is the one time the
    codes are shown: print them or keep the CSV file. The gateway creates
    at most 1000 per request, so a larger count takes several requests.
    """
    accounts = choose_accounts(config_path, socket_path, store_path)
    limits = {
        "duration": duration,
        "quota_bytes": quota,
        "max_devices": devices,
        "max_uses": uses,
    }
    created: list[dict[str, Any]] = []
    # The file is opened first, so an unwritable path creates no vouchers.
    output = None
    if csv_path is not None:
        output = open_private(
            csv_path, replace=force, consequence="; no vouchers were created"
        )
    saved = True
    try:
        while len(created) < count:
            batch = min(accounts.voucher_batch, count - len(created))
            request = {"count": batch, **limits}
            created += call(partial(accounts.create_vouchers, request))
    finally:
        # Codes already created are printed first, even when a later batch
        # or the CSV file fails, because the store keeps no copy of them.
        for voucher in created:
            click.echo(voucher["code"])
        if created and len(created) < count:
            click.echo(
                f"Created only {len(created)} of {count} voucher(s), ids "
                f"{created[0]['id']} to {created[-1]['id']}.",
                err=True,
            )
        if output is not None:
            saved = _save_codes(output, created)
    first, last = created[0]["id"], created[-1]["id"]
    click.echo(f"Created {count} voucher(s), ids {first} to {last}.", err=True)
    if not saved:
        raise SystemExit(1)


@vouchers_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@accounts_options
def list_vouchers(
    as_json: bool,
    config_path: Path,
    socket_path: Path | None,
    store_path: Path | None,
) -> None:
    """List the vouchers with their limits and state (codes are not stored)."""
    accounts = choose_accounts(config_path, socket_path, store_path)
    vouchers = call(accounts.vouchers)
    if as_json:
        click.echo(json.dumps(vouchers, indent=2))
        return
    for row in vouchers:
        uses = f"{row['uses']}/{format_limit(row['max_uses'])}"
        devices = format_limit(row["max_devices"])
        click.echo(
            f"{row['id']}\t{row['state']}\tuses {uses}\tdevices {devices}\t"
            f"{row['duration']:.0f} s\tfirst used {format_time(row['first_used'])}"
        )
    click.echo(f"{len(vouchers)} voucher(s).", err=True)


@vouchers_group.command("revoke")
@click.argument("vouchers", nargs=-1, required=True)
@accounts_options
def revoke_vouchers(
    vouchers: tuple[str, ...],
    config_path: Path,
    socket_path: Path | None,
    store_path: Path | None,
) -> None:
    """Revoke VOUCHERS, each given by its code or its id.

    A revoked voucher grants no new sessions. Devices already connected
    with it keep their sessions until they end; `capport revoke MAC` ends
    one at once. The vouchers are revoked in turn, so an unknown one stops
    the command after those before it are revoked.
    """
    accounts = choose_accounts(config_path, socket_path, store_path)
    for value in vouchers:
        voucher_id = call(partial(accounts.revoke_voucher, value))
        click.echo(f"Revoked voucher {voucher_id}.")


@vouchers_group.command("export")
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write to this new file (created with mode 0600) instead of stdout.",
)
@_force_option
@accounts_options
def export_vouchers(
    csv_path: Path | None,
    force: bool,
    config_path: Path,
    socket_path: Path | None,
    store_path: Path | None,
) -> None:
    """Print the vouchers with their limits and state as CSV, without codes."""
    accounts = choose_accounts(config_path, socket_path, store_path)
    output = None if csv_path is None else open_private(csv_path, replace=force)
    try:
        text = call(accounts.vouchers_csv)
    except click.ClickException:
        if output is not None:
            output.discard()
        raise
    if output is None:
        click.echo(text, nl=False)
    elif (error := output.save(text)) is not None:
        raise click.ClickException(error)
    rows = len(list(csv.reader(io.StringIO(text)))) - 1
    click.echo(f"Exported {rows} voucher(s).", err=True)


def _save_codes(output: PrivateFile, vouchers: list[dict[str, Any]]) -> bool:
    """Write the codes to output, or print why not; return whether it worked.

    A file this run created stays only if it has codes, so that running the
    command again after a failure needs no --force.
    """
    if not vouchers:
        output.discard()
        return True
    buffer = io.StringIO()
    _write_codes_csv(buffer, vouchers)
    error = output.save(buffer.getvalue())
    if error is None:
        return True
    click.echo(
        f"Error: {error}. The {len(vouchers)} voucher code(s) printed above "
        "are the only copy; save them elsewhere.",
        err=True,
    )
    return False


def _write_codes_csv(file: TextIO, vouchers: list[dict[str, Any]]) -> None:
    writer = csv.writer(file)
    writer.writerow(
        ["id", "code", "duration_seconds", "quota_bytes", "max_devices", "max_uses"]
    )
    for voucher in vouchers:
        writer.writerow(
            [
                voucher["id"],
                voucher["code"],
                f"{voucher['duration']:g}",
                _blank(voucher["quota_bytes"]),
                _blank(voucher["max_devices"]),
                _blank(voucher["max_uses"]),
            ]
        )


def _blank(value: object) -> object:
    return "" if value is None else value

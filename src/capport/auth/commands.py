"""`capport users` and `capport vouchers`: local users and vouchers.

The commands change the running gateway through its control socket, with
the admin API's requests, like `capport clients` and `capport revoke`. The
gateway validates each change and its audit log records it with the uid of
the caller. The portal reads users and vouchers from the store at every
sign-in, so a change applies to the next one.

With --store PATH the commands open that SQLite store file directly
instead: the offline mode, for setting up before the gateway's first start.
Its changes reach no audit log. store_options and run_on_store serve the
store-only commands (`capport tokens`, `capport accounting`).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import re
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click

from capport.auth.backends import Accounts, GatewayAccounts, StoreAccounts, with_store
from capport.auth.passwords import check_password
from capport.auth.users import normalise_username
from capport.config import ControlSection, StoreSection, load_config, parse_duration
from capport.errors import CapportError, GatewayUnreachable
from capport.store.sqlite import SQLiteStore

T = TypeVar("T")

DEFAULT_CONFIG = Path("/etc/capport/capport.toml")
MAX_VOUCHERS_PER_RUN = 100_000

_BYTES = re.compile(r"^\s*(\d+)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_BYTE_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}

_OFFLINE_HINT = (
    "To change a store file while the gateway is stopped, pass --store PATH."
)


def store_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --config and --store to a command."""
    command = click.option(
        "--store",
        "store_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="The SQLite store file; read from --config (store.path) when not given.",
    )(command)
    return _config_option(command)


def run_on_store(
    config_path: Path,
    store_path: Path | None,
    work: Callable[[SQLiteStore], Awaitable[T]],
) -> T:
    """Open the store, run work on it and close it, as a click command."""
    try:
        if store_path is None:
            if config_path.exists():
                store_section = load_config(config_path).store
            else:
                store_section = StoreSection()
            store_path = store_section.path
            synchronous = store_section.synchronous
        else:
            synchronous = "full"
        return asyncio.run(with_store(store_path, synchronous, work))
    except CapportError as error:
        raise click.ClickException(str(error)) from None


def accounts_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --config, --socket and --store, which choose_accounts reads."""
    command = click.option(
        "--store",
        "store_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Change this SQLite store file directly instead of the running "
        "gateway, such as before its first start. The audit log records "
        "nothing of it.",
    )(command)
    command = click.option(
        "--socket",
        "socket_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="The gateway's control socket; read from --config when not given.",
    )(command)
    return _config_option(command)


def _config_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=DEFAULT_CONFIG,
        show_default=True,
        help="The gateway's TOML configuration file.",
    )(command)


def choose_accounts(
    config_path: Path, socket_path: Path | None, store_path: Path | None
) -> Accounts:
    """Return the store file's accounts with --store, else the gateway's."""
    if store_path is not None:
        if socket_path is not None:
            raise click.UsageError(
                "--store and --socket exclude each other: give --socket to "
                "change the running gateway, or --store to change a store file"
            )
        return StoreAccounts(store_path)
    if socket_path is None:
        try:
            control = (
                load_config(config_path).control
                if config_path.exists()
                else ControlSection()
            )
        except CapportError as error:
            raise click.ClickException(str(error)) from None
        socket_path = control.socket
    return GatewayAccounts(socket_path)


def call(work: Callable[[], T]) -> T:
    """Run work, turning capport's errors into the command's error message."""
    try:
        return work()
    except GatewayUnreachable as error:
        raise click.ClickException(f"{error} {_OFFLINE_HINT}") from None
    except CapportError as error:
        raise click.ClickException(str(error)) from None


def _check_reachable(accounts: Accounts) -> None:
    # One cheap request, so that a stopped gateway is reported before the
    # operator types a password twice.
    call(accounts.users)


def read_password(password_stdin: bool) -> str:
    """Read a new password from the first line of stdin, or prompt without echo."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(
            "Password", hide_input=True, confirmation_prompt=True, err=True
        )
    try:
        check_password(password)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="password") from None
    return password


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
        return parse_duration(value)
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


def _username(context: click.Context, parameter: click.Parameter, value: str) -> str:
    try:
        return normalise_username(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _time(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def _limit(value: int | None) -> str:
    return "unlimited" if value is None else str(value)


_password_stdin_option = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of stdin instead of prompting.",
)


# Users


@click.group("users")
def users_group() -> None:
    """Manage the local user accounts of the portal's user sign-in."""


@users_group.command("add")
@click.argument("name", callback=_username)
@_password_stdin_option
@click.option(
    "--devices",
    type=click.IntRange(min=1),
    default=None,
    help="Devices signed in at once [default: auth.user_max_devices].",
)
@accounts_options
def add_user(
    name: str,
    password_stdin: bool,
    devices: int | None,
    config_path: Path,
    socket_path: Path | None,
    store_path: Path | None,
) -> None:
    """Add the user NAME. User names are case-insensitive."""
    accounts = choose_accounts(config_path, socket_path, store_path)
    _check_reachable(accounts)
    password = read_password(password_stdin)
    call(lambda: accounts.add_user(name, password, devices))
    click.echo(f"Added user {name}.")


@users_group.command("passwd")
@click.argument("name", callback=_username)
@_password_stdin_option
@accounts_options
def change_password(
    name: str,
    password_stdin: bool,
    config_path: Path,
    socket_path: Path | None,
    store_path: Path | None,
) -> None:
    """Set a new password for the user NAME."""
    accounts = choose_accounts(config_path, socket_path, store_path)
    _check_reachable(accounts)
    password = read_password(password_stdin)
    call(lambda: accounts.set_password(name, password))
    click.echo(f"Changed the password of {name}.")


@users_group.command("remove")
@click.argument("name", callback=_username)
@accounts_options
def remove_user(
    name: str, config_path: Path, socket_path: Path | None, store_path: Path | None
) -> None:
    """Remove the user NAME. Devices already signed in keep their sessions."""
    accounts = choose_accounts(config_path, socket_path, store_path)
    call(lambda: accounts.remove_user(name))
    click.echo(f"Removed user {name}.")


@users_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@accounts_options
def list_users(
    as_json: bool,
    config_path: Path,
    socket_path: Path | None,
    store_path: Path | None,
) -> None:
    """List the user accounts (never their password hashes)."""
    accounts = choose_accounts(config_path, socket_path, store_path)
    users = call(accounts.users)
    if as_json:
        click.echo(json.dumps(users, indent=2))
        return
    for user in users:
        devices = _limit(user["max_devices"])
        click.echo(
            f"{user['name']}\tcreated {_time(user['created'])}\tdevices {devices}"
        )
    click.echo(f"{len(users)} user(s).", err=True)


# Vouchers


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
    help="Also write the vouchers to this CSV file (created with mode 0600).",
)
@accounts_options
def create_vouchers(
    count: int,
    duration: float,
    quota: int | None,
    devices: int,
    uses: int | None,
    csv_path: Path | None,
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
    with contextlib.ExitStack() as stack:
        # The file is opened first, so an unwritable path creates no vouchers.
        file = (
            None if csv_path is None else stack.enter_context(_private_file(csv_path))
        )
        try:
            while len(created) < count:
                batch = min(accounts.voucher_batch, count - len(created))
                request = {"count": batch, **limits}
                created += call(partial(accounts.create_vouchers, request))
        finally:
            # Codes already created are shown even when a later batch fails,
            # because the store keeps no copy of them.
            if file is not None:
                _write_codes_csv(file, created)
            for voucher in created:
                click.echo(voucher["code"])
            if created and len(created) < count:
                click.echo(
                    f"Created only {len(created)} of {count} voucher(s), ids "
                    f"{created[0]['id']} to {created[-1]['id']}.",
                    err=True,
                )
    first, last = created[0]["id"], created[-1]["id"]
    click.echo(f"Created {count} voucher(s), ids {first} to {last}.", err=True)


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
        click.echo(
            f"{row['id']}\t{row['state']}\tuses {row['uses']}/"
            f"{_limit(row['max_uses'])}\tdevices {_limit(row['max_devices'])}\t"
            f"{row['duration']:.0f} s\tfirst used {_time(row['first_used'])}"
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
    help="Write to this file (created with mode 0600) instead of stdout.",
)
@accounts_options
def export_vouchers(
    csv_path: Path | None,
    config_path: Path,
    socket_path: Path | None,
    store_path: Path | None,
) -> None:
    """Print the vouchers with their limits and state as CSV, without codes."""
    accounts = choose_accounts(config_path, socket_path, store_path)
    text = call(accounts.vouchers_csv)
    if csv_path is None:
        click.echo(text, nl=False)
    else:
        with _private_file(csv_path, created_nothing=False) as file:
            file.write(text)
    rows = len(list(csv.reader(io.StringIO(text)))) - 1
    click.echo(f"Exported {rows} voucher(s).", err=True)


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


@contextmanager
def _private_file(path: Path, created_nothing: bool = True) -> Iterator[TextIO]:
    """Open path for writing, readable by its owner only, because codes are secret."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        # open() applies the mode only to a new file, so an existing one is
        # narrowed too.
        os.fchmod(descriptor, 0o600)
    except OSError as error:
        consequence = "; no vouchers were created" if created_nothing else ""
        raise click.ClickException(
            f"cannot write the CSV file {path}: {error.strerror}{consequence}"
        ) from None
    with os.fdopen(descriptor, "w", newline="", encoding="utf-8") as file:
        yield file

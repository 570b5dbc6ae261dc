"""`capport users` and `capport vouchers`: accounts and vouchers in the store.

The commands open the store file named by the configuration's store.path
directly rather than going through the running daemon. SQLite in WAL mode
lets them write while the daemon runs, because each change is one short
write transaction. The portal reads users and vouchers from the file at
every sign-in, so a change applies to the next one. Whichever process opens
the file first migrates its schema, and the commands also work while the
gateway is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click

from capport.auth.passwords import hash_password
from capport.auth.records import NewVoucher, User, Voucher
from capport.auth.users import normalise_username
from capport.auth.vouchers import code_digest, generate_code, normalise_code
from capport.config import StoreSection, load_config, parse_duration
from capport.errors import CapportError
from capport.store.sqlite import SQLiteStore

T = TypeVar("T")

DEFAULT_CONFIG = Path("/etc/capport/capport.toml")
MAX_VOUCHERS_PER_RUN = 100_000

_BYTES = re.compile(r"^\s*(\d+)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_BYTE_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}


def store_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --config and --store to a command."""
    command = click.option(
        "--store",
        "store_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="The SQLite store file; read from --config (store.path) when not given.",
    )(command)
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=DEFAULT_CONFIG,
        show_default=True,
        help="The gateway's TOML configuration file.",
    )(command)


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
        return asyncio.run(_with_store(store_path, synchronous, work))
    except CapportError as error:
        raise click.ClickException(str(error)) from None


async def _with_store(
    path: Path, synchronous: str, work: Callable[[SQLiteStore], Awaitable[T]]
) -> T:
    store = SQLiteStore(path, synchronous=synchronous)
    await store.open()
    try:
        return await work(store)
    finally:
        await store.close()


def read_password(password_stdin: bool) -> str:
    """Read a new password from the first line of stdin, or prompt without echo."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(
            "Password", hide_input=True, confirmation_prompt=True, err=True
        )
    try:
        return hash_password(password)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="password") from None


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


# Users


@click.group("users")
def users_group() -> None:
    """Manage the local user accounts of the portal's user sign-in."""


@users_group.command("add")
@click.argument("name", callback=_username)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of stdin instead of prompting.",
)
@click.option(
    "--devices",
    type=click.IntRange(min=1),
    default=None,
    help="Devices signed in at once [default: auth.user_max_devices].",
)
@store_options
def add_user(
    name: str,
    password_stdin: bool,
    devices: int | None,
    config_path: Path,
    store_path: Path | None,
) -> None:
    """Add the user NAME. User names are case-insensitive."""
    password_hash = read_password(password_stdin)
    user = User(name, password_hash, time.time(), devices)
    run_on_store(config_path, store_path, lambda store: store.add_user(user))
    click.echo(f"Added user {name}.")


@users_group.command("passwd")
@click.argument("name", callback=_username)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of stdin instead of prompting.",
)
@store_options
def change_password(
    name: str, password_stdin: bool, config_path: Path, store_path: Path | None
) -> None:
    """Set a new password for the user NAME."""
    password_hash = read_password(password_stdin)
    run_on_store(
        config_path, store_path, lambda store: store.set_password(name, password_hash)
    )
    click.echo(f"Changed the password of {name}.")


@users_group.command("remove")
@click.argument("name", callback=_username)
@store_options
def remove_user(name: str, config_path: Path, store_path: Path | None) -> None:
    """Remove the user NAME. Devices already signed in keep their sessions."""
    run_on_store(config_path, store_path, lambda store: store.remove_user(name))
    click.echo(f"Removed user {name}.")


@users_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@store_options
def list_users(as_json: bool, config_path: Path, store_path: Path | None) -> None:
    """List the user accounts (never their password hashes)."""
    users = run_on_store(config_path, store_path, lambda store: store.users())
    if as_json:
        rows = [
            {"name": u.name, "created": u.created_at, "max_devices": u.max_devices}
            for u in users
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    for user in users:
        devices = _limit(user.max_devices)
        click.echo(f"{user.name}\tcreated {_time(user.created_at)}\tdevices {devices}")
    click.echo(f"{len(users)} user(s).", err=True)


# Vouchers


@click.group("vouchers")
def vouchers_group() -> None:
    """Create, list and revoke the vouchers of the portal's voucher sign-in."""


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
@store_options
def create_vouchers(
    count: int,
    duration: float,
    quota: int | None,
    devices: int,
    uses: int | None,
    csv_path: Path | None,
    config_path: Path,
    store_path: Path | None,
) -> None:
    """Create vouchers and print their codes, one per line.

    The store keeps only a hash of each code, so this is the one time the
    codes are shown: print them or keep the CSV file.
    """
    codes = [generate_code() for _ in range(count)]
    new = [
        NewVoucher(code_digest(_bare(code)), duration, quota, devices, uses)
        for code in codes
    ]
    with contextlib.ExitStack() as stack:
        # The file is opened first, so an unwritable path creates no vouchers.
        file = (
            None if csv_path is None else stack.enter_context(_private_file(csv_path))
        )
        stored = run_on_store(
            config_path, store_path, lambda store: store.add_vouchers(new, time.time())
        )
        if file is not None:
            _write_csv(file, list(zip(codes, stored, strict=True)))
    for code in codes:
        click.echo(code)
    first, last = stored[0].id, stored[-1].id
    click.echo(f"Created {count} voucher(s), ids {first} to {last}.", err=True)


@vouchers_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@store_options
def list_vouchers(as_json: bool, config_path: Path, store_path: Path | None) -> None:
    """List the vouchers with their limits and state (codes are not stored)."""
    vouchers = run_on_store(config_path, store_path, lambda store: store.vouchers())
    now = time.time()
    if as_json:
        click.echo(json.dumps([_voucher_json(v, now) for v in vouchers], indent=2))
        return
    for voucher in vouchers:
        row = _voucher_json(voucher, now)
        click.echo(
            f"{voucher.id}\t{row['state']}\tuses {voucher.uses}/"
            f"{_limit(voucher.max_uses)}\tdevices {_limit(voucher.max_devices)}\t"
            f"{voucher.duration:.0f} s\tfirst used {_time(voucher.first_used_at)}"
        )
    click.echo(f"{len(vouchers)} voucher(s).", err=True)


@vouchers_group.command("revoke")
@click.argument("vouchers", nargs=-1, required=True)
@store_options
def revoke_vouchers(
    vouchers: tuple[str, ...], config_path: Path, store_path: Path | None
) -> None:
    """Revoke VOUCHERS, each given by its code or its id.

    A revoked voucher grants no new sessions. Devices already connected
    with it keep their sessions until they end; `capport revoke MAC` ends
    one at once.
    """

    async def revoke(store: SQLiteStore) -> list[int]:
        ids = []
        for value in vouchers:
            voucher_id = await _voucher_id(store, value)
            await store.revoke_voucher(voucher_id, time.time())
            ids.append(voucher_id)
        return ids

    for voucher_id in run_on_store(config_path, store_path, revoke):
        click.echo(f"Revoked voucher {voucher_id}.")


async def _voucher_id(store: SQLiteStore, value: str) -> int:
    if value.isdigit():
        return int(value)
    code = normalise_code(value)
    voucher = None if code is None else await store.voucher(code_digest(code))
    if voucher is None:
        raise click.BadParameter(
            "no voucher has this code; give a code as printed or a voucher id "
            "from `capport vouchers list`",
            param_hint="VOUCHERS",
        )
    return voucher.id


def _bare(code: str) -> str:
    bare = normalise_code(code)
    assert bare is not None
    return bare


def _voucher_json(voucher: Voucher, now: float) -> dict[str, Any]:
    reason = voucher.unavailable_reason(now)
    if reason is None:
        reason = "unused" if voucher.first_used_at is None else "in use"
    return {
        "id": voucher.id,
        "state": reason,
        "duration": voucher.duration,
        "quota_bytes": voucher.quota_bytes,
        "max_devices": voucher.max_devices,
        "max_uses": voucher.max_uses,
        "uses": voucher.uses,
        "created": voucher.created_at,
        "first_used": voucher.first_used_at,
        "revoked": voucher.revoked_at,
    }


def _write_csv(file: TextIO, rows: list[tuple[str, Voucher]]) -> None:
    writer = csv.writer(file)
    writer.writerow(
        ["id", "code", "duration_seconds", "quota_bytes", "max_devices", "max_uses"]
    )
    for code, voucher in rows:
        writer.writerow(
            [
                voucher.id,
                code,
                f"{voucher.duration:g}",
                "" if voucher.quota_bytes is None else voucher.quota_bytes,
                "" if voucher.max_devices is None else voucher.max_devices,
                "" if voucher.max_uses is None else voucher.max_uses,
            ]
        )


@contextmanager
def _private_file(path: Path) -> Iterator[TextIO]:
    """Open path for writing, readable by its owner only, because codes are secret."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as error:
        raise click.ClickException(
            f"cannot write the CSV file {path}: {error.strerror}; no vouchers "
            "were created"
        ) from None
    with os.fdopen(descriptor, "w", newline="", encoding="utf-8") as file:
        yield file

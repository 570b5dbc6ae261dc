"""`capport users`, and the options it shares with `capport vouchers`.

The commands change the running gateway through its control socket, with
the admin API's requests, like `capport clients` and `capport revoke`. The
gateway validates each change and its audit log records it with the uid of
the caller. The portal reads users and vouchers from the store at every
sign-in, so a change applies to the next one.

With --store PATH the commands open that SQLite store file directly
instead: the offline mode, for setting up before the gateway's first start.
Its changes reach no audit log. `capport tokens` and `capport accounting`
share gateway_options, control_socket and call with these commands.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from capport.auth.backends import Accounts, GatewayAccounts, StoreAccounts
from capport.auth.passwords import check_password
from capport.auth.users import new_username, normalise_username
from capport.config import ControlSection, load_config
from capport.errors import CapportError, GatewayUnreachable

T = TypeVar("T")

DEFAULT_CONFIG = Path("/etc/capport/capport.toml")

_OFFLINE_HINT = (
    "To read or change a store file while the gateway is stopped, pass --store PATH."
)


def gateway_options(
    store_help: str,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Return a decorator that adds --config, --socket and --store.

    store_help describes what the command does with a store file.
    """

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        command = click.option(
            "--store",
            "store_path",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help=store_help,
        )(command)
        command = click.option(
            "--socket",
            "socket_path",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help="The gateway's control socket; read from --config when not given.",
        )(command)
        return _config_option(command)

    return decorate


accounts_options = gateway_options(
    "Change this SQLite store file directly instead of the running gateway, "
    "such as before its first start. Changes made this way reach no audit log."
)


def _config_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=DEFAULT_CONFIG,
        show_default=True,
        help="The gateway's TOML configuration file.",
    )(command)


def control_socket(
    config_path: Path, socket_path: Path | None, store_path: Path | None
) -> Path | None:
    """Return the control socket to use, or None when --store was given."""
    if store_path is not None:
        if socket_path is not None:
            raise click.UsageError(
                "--store and --socket exclude each other: give --socket to "
                "use the running gateway, or --store to use a store file"
            )
        return None
    if socket_path is not None:
        return socket_path
    try:
        control = (
            load_config(config_path).control
            if config_path.exists()
            else ControlSection()
        )
    except CapportError as error:
        raise click.ClickException(str(error)) from None
    return control.socket


def choose_accounts(
    config_path: Path, socket_path: Path | None, store_path: Path | None
) -> Accounts:
    """Return the store file's accounts with --store, else the gateway's."""
    socket = control_socket(config_path, socket_path, store_path)
    if socket is None:
        assert store_path is not None
        return StoreAccounts(store_path)
    return GatewayAccounts(socket)


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
    # operator types a password twice. A store file that is not there yet
    # is created by the first user added to it.
    if not isinstance(accounts, StoreAccounts) or accounts.path.exists():
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


def _username(context: click.Context, parameter: click.Parameter, value: str) -> str:
    try:
        return normalise_username(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _new_username(
    context: click.Context, parameter: click.Parameter, value: str
) -> str:
    try:
        return new_username(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def format_time(timestamp: float | None) -> str:
    """Format a time as local "YYYY-MM-DD HH:MM", or "-" for None."""
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def format_limit(value: int | None) -> str:
    """Format a count limit, None meaning unlimited."""
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
@click.argument("name", callback=_new_username)
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
        devices = format_limit(user["max_devices"])
        click.echo(
            f"{user['name']}\tcreated {format_time(user['created'])}\tdevices {devices}"
        )
    click.echo(f"{len(users)} user(s).", err=True)

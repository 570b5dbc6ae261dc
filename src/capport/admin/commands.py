"""`capport tokens`: bearer tokens of the admin API.

Like `capport users`, the commands go through the running gateway's control
socket, whose audit log records each change with the caller's uid, or with
--store PATH change a store file directly, such as to create the first
token before the gateway has ever started. The store keeps only each
token's SHA-256, so `create` shows the token once.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import click

from capport.admin.records import check_token_name
from capport.admin.tokenbackends import GatewayTokens, StoreTokens, Tokens
from capport.auth.commands import call, control_socket, format_time, gateway_options

tokens_options = gateway_options(
    "Change this SQLite store file directly instead of the running gateway, "
    "such as to create the first token before its first start. Changes made "
    "this way reach no audit log."
)


def _token_name(
    context: click.Context, parameter: click.Parameter, value: str | None
) -> str | None:
    if value is None:
        return None
    try:
        return check_token_name(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def choose_tokens(
    config_path: Path, socket_path: Path | None, store_path: Path | None
) -> Tokens:
    """Return the store file's tokens with --store, else the gateway's."""
    socket = control_socket(config_path, socket_path, store_path)
    if socket is None:
        assert store_path is not None
        return StoreTokens(store_path)
    return GatewayTokens(socket)


@click.group("tokens")
def tokens_group() -> None:
    """Create, list and revoke bearer tokens of the admin API."""


@tokens_group.command("create")
@click.argument("name", callback=_token_name)
@tokens_options
def create_token(
    name: str, config_path: Path, socket_path: Path | None, store_path: Path | None
) -> None:
    """Create the token NAME and print it; it is shown only this once."""
    tokens = choose_tokens(config_path, socket_path, store_path)
    created = call(partial(tokens.create_token, name))
    click.echo(created["token"])
    click.echo(
        f"Created token {created['name']} (id {created['id']}). Send it as "
        "Authorization: Bearer <token>.",
        err=True,
    )


@tokens_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@tokens_options
def list_tokens(
    as_json: bool, config_path: Path, socket_path: Path | None, store_path: Path | None
) -> None:
    """List the tokens by id and name (never their values)."""
    tokens = call(choose_tokens(config_path, socket_path, store_path).tokens)
    if as_json:
        click.echo(json.dumps(tokens, indent=2))
        return
    for token in tokens:
        last_used = (
            "never" if token["last_used"] is None else format_time(token["last_used"])
        )
        click.echo(
            f"{token['id']}\t{token['name']}\tcreated {format_time(token['created'])}"
            f"\tlast used {last_used}"
        )
    click.echo(f"{len(tokens)} token(s).", err=True)


@tokens_group.command("revoke")
@click.argument("name", required=False, callback=_token_name)
@click.option(
    "--id",
    "token_id",
    type=click.IntRange(1, 2**63 - 1),
    default=None,
    help="Revoke the token with this id from `capport tokens list` instead of NAME.",
)
@tokens_options
def revoke_token(
    name: str | None,
    token_id: int | None,
    config_path: Path,
    socket_path: Path | None,
    store_path: Path | None,
) -> None:
    """Revoke the token NAME, or the one given by --id.

    Requests with the token get 401 from then on.
    """
    if (name is None) == (token_id is None):
        raise click.UsageError("give either a token NAME or --id, not both or neither")
    request = {"name": name} if token_id is None else {"id": token_id}
    tokens = choose_tokens(config_path, socket_path, store_path)
    revoked = call(partial(tokens.revoke_token, request))
    click.echo(f"Revoked token {revoked['name']} (id {revoked['id']}).")

"""`capport tokens`: bearer tokens of the admin API, kept in the store.

The commands open the store file directly, so a token works at the
running gateway's next request. The store keeps only each token's SHA-256,
so `create` shows the token once.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from pathlib import Path

import click

from capport.admin.records import ApiToken, generate_token, token_digest
from capport.auth.commands import run_on_store, store_options

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _token_name(context: click.Context, parameter: click.Parameter, value: str) -> str:
    if not _NAME.match(value):
        raise click.BadParameter(
            f"invalid token name {value!r}: use 1 to 64 letters, digits, dots, "
            "dashes or underscores, starting with a letter or digit"
        )
    return value


@click.group("tokens")
def tokens_group() -> None:
    """Create, list and revoke bearer tokens of the admin API."""


@tokens_group.command("create")
@click.argument("name", callback=_token_name)
@store_options
def create_token(name: str, config_path: Path, store_path: Path | None) -> None:
    """Create the token NAME and print it; it is shown only this once."""
    token = generate_token()
    record = ApiToken(name, token_digest(token), time.time())
    run_on_store(config_path, store_path, lambda store: store.add_token(record))
    click.echo(token)
    click.echo(
        f"Created token {name}. Send it as Authorization: Bearer <token>.", err=True
    )


@tokens_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@store_options
def list_tokens(as_json: bool, config_path: Path, store_path: Path | None) -> None:
    """List the tokens by name (never their values)."""
    tokens = run_on_store(config_path, store_path, lambda store: store.tokens())
    if as_json:
        rows = [
            {"name": t.name, "created": t.created_at, "last_used": t.last_used_at}
            for t in tokens
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    for token in tokens:
        click.echo(
            f"{token.name}\tcreated {_time(token.created_at)}\t"
            f"last used {_time(token.last_used_at)}"
        )
    click.echo(f"{len(tokens)} token(s).", err=True)


@tokens_group.command("revoke")
@click.argument("name", callback=_token_name)
@store_options
def revoke_token(name: str, config_path: Path, store_path: Path | None) -> None:
    """Delete the token NAME; requests with it get 401 from then on."""
    run_on_store(config_path, store_path, lambda store: store.remove_token(name))
    click.echo(f"Revoked token {name}.")


def _time(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")

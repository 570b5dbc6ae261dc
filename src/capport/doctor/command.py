"""The `capport doctor` command."""

from __future__ import annotations

from pathlib import Path

import click

from capport.config import load_config
from capport.doctor.checks import run_checks
from capport.doctor.report import Check, has_failure, render, summary
from capport.errors import CapportError

DEFAULT_CONFIG = Path("/etc/capport/capport.toml")


@click.command("doctor")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_CONFIG,
    show_default=True,
    help="The gateway's TOML configuration file.",
)
def doctor(config_path: Path) -> None:
    """Check that this host can run the gateway, with a fix for each problem.

    Prints each check as ok, warn or fail, and exits with 1 when any check
    fails. Run it as the user the gateway runs as, in its network namespace.
    """
    try:
        config = load_config(config_path)
    except CapportError as error:
        check = Check.fail("configuration", str(error), f"correct {config_path}")
        click.echo(render([check]), nl=False)
        raise SystemExit(1) from None
    checks = [Check.ok("configuration", f"{config_path} is valid"), *run_checks(config)]
    click.echo(render(checks), nl=False)
    click.echo(summary(checks))
    if has_failure(checks):
        raise SystemExit(1)

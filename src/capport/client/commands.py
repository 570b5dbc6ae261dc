"""The `capport check` and `capport login` commands.

Both probe the network as capport.client.connectivity describes. The main
command line registers them, and `python -m capport.client` runs them alone.
"""

from __future__ import annotations

import json
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from capport.client.connectivity import (
    DEFAULT_EXPECTATION,
    DEFAULT_PROBE_URL,
    DEFAULT_TIMEOUT,
    CheckResult,
    Probe,
    State,
    check_connectivity,
)
from capport.client.errors import AccessTimeout
from capport.client.leases import discover_api_uri
from capport.client.portal import Expectation
from capport.client.retry import Backoff, wait_for_access

EXIT_ONLINE = 0
EXIT_CAPTIVE = 1
EXIT_LIMITED = 2
EXIT_OFFLINE = 3
EXIT_USAGE = 4
EXIT_LOGIN_TIMEOUT = 1

STATE_EXIT_CODES = {
    State.ONLINE: EXIT_ONLINE,
    State.CAPTIVE: EXIT_CAPTIVE,
    State.LIMITED: EXIT_LIMITED,
    State.OFFLINE: EXIT_OFFLINE,
}


class _Command(click.Command):
    """A command whose usage errors exit with EXIT_USAGE.

    click exits 2 on usage errors, which `capport check` uses for limited.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as error:
            # click declares exit_code on the class, and this error gets its own.
            error.exit_code = EXIT_USAGE  # type: ignore[misc]
            raise


def _check_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not value.lower().startswith(("http://", "https://")):
        raise click.BadParameter(f"{value!r} is not an http or https URL")
    return value


def _probe_options(function: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--probe-url",
            default=DEFAULT_PROBE_URL,
            show_default=True,
            callback=_check_url,
            help="URL whose response on an open network is known, usually plain "
            "http. Redirects are not followed.",
        ),
        click.option(
            "--expect-status",
            type=click.IntRange(100, 599),
            default=None,
            help="HTTP status the probe gets on an open network [default: 200].",
        ),
        click.option(
            "--expect-body",
            default=None,
            help="Text the probe's body starts with on an open network; an "
            "empty value expects no content (204). Default: NetworkManager's "
            "response for the default probe URL, otherwise any body.",
        ),
        click.option(
            "--probe-timeout",
            type=click.FloatRange(min=0.1),
            default=DEFAULT_TIMEOUT,
            show_default=True,
            help="Seconds allowed for each probe and API request.",
        ),
        click.option(
            "--api-uri",
            default=None,
            help="RFC 8908 Captive Portal API URI (https). Default: DHCP option "
            "114 from the lease files, if any records it.",
        ),
        click.option(
            "--lease-file",
            "lease_files",
            multiple=True,
            type=click.Path(path_type=Path, dir_okay=False),
            help="Read option 114 from this lease file instead of the system's "
            "dhclient, NetworkManager and systemd-networkd leases. Repeatable.",
        ),
        click.option(
            "--no-api",
            is_flag=True,
            help="Do not look for or ask the Captive Portal API.",
        ),
        click.option(
            "--ca-file",
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            default=None,
            help="PEM file of CA certificates that verify the API's certificate, "
            "instead of the system's trust store.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _probe(
    probe_url: str, expect_status: int | None, expect_body: str | None, timeout: float
) -> Probe:
    if probe_url == DEFAULT_PROBE_URL and expect_status is None and expect_body is None:
        return Probe(probe_url, DEFAULT_EXPECTATION, timeout)
    body = expect_body.encode("utf-8") if expect_body is not None else None
    return Probe(probe_url, Expectation(expect_status or 200, body), timeout)


def _api_uri(
    api_uri: str | None, lease_files: tuple[Path, ...], no_api: bool
) -> str | None:
    if no_api:
        return None
    if api_uri:
        return api_uri
    option = discover_api_uri(list(lease_files) if lease_files else None)
    return option.api_uri if option else None


def _describe(result: CheckResult) -> str:
    if result.state is State.CAPTIVE:
        where = result.portal_url or "(the network named no login page)"
        return f"captive: log in at {where}\n{result.detail}"
    return f"{result.state.value}: {result.detail}"


@click.command(cls=_Command)
@_probe_options
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def check(
    probe_url: str,
    expect_status: int | None,
    expect_body: str | None,
    probe_timeout: float,
    api_uri: str | None,
    lease_files: tuple[Path, ...],
    no_api: bool,
    ca_file: Path | None,
    as_json: bool,
) -> None:
    """Tell whether this host is online, captive, limited or offline.

    Asks the RFC 8908 Captive Portal API when its URI is known, then
    fetches the probe URL and compares the response with the expected one.

    \b
    Exit status:
      0  online: the probe got its expected response
      1  captive: a captive portal blocks this host (its URL is printed)
      2  limited: the probe host resolves, but the probe fails or gets an
         unexpected response
      3  offline: the probe host does not resolve, or has no route
      4  invalid options
    """
    probe = _probe(probe_url, expect_status, expect_body, probe_timeout)
    uri = _api_uri(api_uri, lease_files, no_api)
    result = check_connectivity(probe, api_uri=uri, ca_file=ca_file)
    code = STATE_EXIT_CODES[result.state]
    if as_json:
        click.echo(json.dumps({**result.to_json(), "exit_code": code}, indent=2))
    else:
        click.echo(_describe(result))
    raise SystemExit(code)


@click.command(cls=_Command)
@_probe_options
@click.option(
    "--open", "open_browser", is_flag=True, help="Open the login page in a browser."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="Seconds to wait for the network to open.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Maximum seconds between checks while waiting.",
)
def login(
    probe_url: str,
    expect_status: int | None,
    expect_body: str | None,
    probe_timeout: float,
    api_uri: str | None,
    lease_files: tuple[Path, ...],
    no_api: bool,
    ca_file: Path | None,
    open_browser: bool,
    timeout: float,
    interval: float,
) -> None:
    """Show where to log in, then wait until the network is open.

    Prints the login page's URL (or opens it with --open) and checks the
    network, as `capport check` does, until the probe gets its expected
    response.

    \b
    Exit status:
      0  the network is open
      1  it was still closed when --timeout ran out
      4  invalid options
    """
    probe = _probe(probe_url, expect_status, expect_body, probe_timeout)
    uri = _api_uri(api_uri, lease_files, no_api)

    def run_check() -> CheckResult:
        return check_connectivity(probe, api_uri=uri, ca_file=ca_file)

    first = run_check()
    if first.state is State.ONLINE:
        click.echo("online: the network is already open.")
        return
    _show_login_page(first, open_browser)
    try:
        seconds = _wait(run_check, first, timeout, interval)
    except AccessTimeout as error:
        click.echo(f"Timed out: {error}.", err=True)
        raise SystemExit(EXIT_LOGIN_TIMEOUT) from None
    click.echo(f"online: the network opened after {seconds:.1f} s.")


def _show_login_page(result: CheckResult, open_browser: bool) -> None:
    url = result.portal_url
    if url is None:
        click.echo(f"{result.state.value}: {result.detail}")
        return
    click.echo(f"Log in at: {url}")
    if open_browser and not webbrowser.open(url):
        click.echo("No browser could be started. Open the address yourself.", err=True)


def _wait(
    run_check: Callable[[], CheckResult],
    first: CheckResult,
    timeout: float,
    interval: float,
) -> float:
    """Poll run_check with a progress display until online, and return the seconds."""
    console = Console(stderr=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(_waiting(first), total=None)

        def is_online() -> bool:
            result = run_check()
            progress.update(task, description=_waiting(result))
            return result.state is State.ONLINE

        backoff = Backoff(initial=min(0.5, interval), maximum=interval)
        return wait_for_access(is_online, timeout, backoff)


def _waiting(result: CheckResult) -> str:
    return f"Waiting for the network to open (now {result.state.value})"

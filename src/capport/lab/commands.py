"""The `capport lab` commands: up, down, demo and exec."""

from __future__ import annotations

import os
import shlex
import sys

import click

from capport.config import parse_duration
from capport.errors import CapportError
from capport.lab.build import down, up
from capport.lab.demo import DEMO_PREFIX, run_demo
from capport.lab.system import namespace_exists, netns_argv
from capport.lab.topology import (
    CLIENT_ADDRESSES6,
    DEFAULT_PREFIX,
    GATEWAY_LAN_ADDRESS6,
    GATEWAY_WAN_ADDRESS,
    GATEWAY_WAN_ADDRESS6,
    ORIGIN_HOST,
    PORTAL_HOST,
    ROLES,
    UPSTREAM_ADDRESS6,
    Lab,
    plan,
)

PREFIX_HELP = (
    "Prefix of the namespace names ({prefix}-gw, -c1, -c2, -up) and of the "
    "state directory /run/capport-lab/{prefix}."
)


def _require_root() -> None:
    if os.geteuid() != 0:
        raise click.ClickException(
            "capport lab must run as root: it creates network namespaces. "
            "Run it again with sudo."
        )


def _duration(context: click.Context, parameter: click.Parameter, value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@click.group(
    "lab",
    help=(
        "Build a laboratory of network namespaces on this machine: two "
        "clients, a gateway running capport, and an upstream web server. "
        "Needs root; nothing outside the namespaces is changed except "
        "/etc/netns/{prefix}-c1, /etc/netns/{prefix}-c2 and "
        "/run/capport-lab/{prefix}."
    ),
)
def lab_group() -> None:
    pass


@lab_group.command("up", help="Build the laboratory and start the gateway in it.")
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help=PREFIX_HELP)
@click.option(
    "--session-duration",
    default="1h",
    show_default=True,
    callback=_duration,
    help="Access granted per Accept: seconds, or a number followed by s, m, h or d.",
)
@click.option(
    "--no-gateway",
    is_flag=True,
    help="Build the namespaces and the origin server only; do not start capport.",
)
@click.option(
    "--tls",
    is_flag=True,
    help="Serve the portal and the Captive Portal API over HTTPS as portal.lab, "
    "with a local CA that `curl --cacert` can trust.",
)
@click.option(
    "--dhcp",
    is_flag=True,
    help="Lease the clients' IPv4 addresses from dnsmasq with dhclient.",
)
def up_command(
    prefix: str, session_duration: float, no_gateway: bool, tls: bool, dhcp: bool
) -> None:
    _require_root()
    try:
        lab = up(
            prefix,
            session_duration,
            start_gateway=not no_gateway,
            tls=tls,
            dhcp=dhcp,
        )
    except CapportError as error:
        raise click.ClickException(str(error)) from None
    _print_summary(lab, gateway_started=not no_gateway)


@lab_group.command(
    "down",
    help=(
        "Stop the laboratory's processes and remove its namespaces and files. "
        "Safe to run twice, after a crash, or when nothing was built."
    ),
)
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help=PREFIX_HELP)
def down_command(prefix: str) -> None:
    _require_root()
    try:
        removed = down(prefix)
    except CapportError as error:
        raise click.ClickException(str(error)) from None
    if not removed:
        click.echo(f"No laboratory with prefix {prefix} was found; nothing to remove.")
    for item in removed:
        click.echo(f"Removed {item}.")


@lab_group.command(
    "demo",
    help=(
        "Build a laboratory, log client c1 in with curl and client c2 with "
        "Python's urllib, printing each step and its timing, then remove it. "
        "Exits with 0 only if every step behaved."
    ),
)
@click.option(
    "--prefix",
    default=DEMO_PREFIX,
    show_default=True,
    help=PREFIX_HELP + " Differs from `up` so a running laboratory is left alone.",
)
def demo_command(prefix: str) -> None:
    _require_root()
    if not run_demo(prefix):
        sys.exit(1)


@lab_group.command(
    "exec",
    context_settings={"ignore_unknown_options": True},
    help=(
        "Run a command inside one host of the laboratory. ROLE is gw (the "
        "gateway), c1 or c2 (clients) or up (the upstream host), as in "
        "`capport lab exec c1 -- curl -i http://origin.lab/`."
    ),
)
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help=PREFIX_HELP)
@click.argument("role", type=click.Choice(ROLES))
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_command(prefix: str, role: str, command: tuple[str, ...]) -> None:
    _require_root()
    try:
        namespace = plan(prefix).namespace(role)
    except CapportError as error:
        raise click.ClickException(str(error)) from None
    if not namespace_exists(namespace):
        raise click.ClickException(
            f"namespace {namespace} does not exist; build the laboratory with "
            f"`capport lab up --prefix {prefix}`"
        )
    argv = netns_argv(namespace, command)
    # Replacing this process passes the command's exit status, signals and
    # terminal straight through.
    os.execvp(argv[0], argv)


# The IPv6 address of each role; the clients form theirs with SLAAC.
IPV6_ADDRESSES = {
    "gw": GATEWAY_LAN_ADDRESS6,
    **CLIENT_ADDRESSES6,
    "up": UPSTREAM_ADDRESS6,
}


def _print_summary(lab: Lab, gateway_started: bool) -> None:
    click.echo(f"Laboratory {lab.prefix} is up.")
    click.echo("")
    for role, namespace in lab.namespaces.items():
        address6 = IPV6_ADDRESSES[role]
        click.echo(f"  {role:<3} {namespace:<20} {lab.addresses[role]:<16} {address6}")
    click.echo(
        f"  gateway upstream addresses: {GATEWAY_WAN_ADDRESS}, {GATEWAY_WAN_ADDRESS6}"
    )
    click.echo(f"  clients resolve {ORIGIN_HOST} and {PORTAL_HOST} through /etc/hosts")
    click.echo("")
    click.echo(f"  configuration: {lab.config_path}")
    click.echo(f"  gateway log:   {lab.log_path}")
    click.echo(f"  state:         {lab.state_path}")
    if lab.ca_path.exists():
        click.echo(f"  local CA:      {lab.ca_path} (curl --cacert)")
    if not gateway_started:
        click.echo("  the gateway was not started (--no-gateway)")
    click.echo("")
    client = shlex.join(lab.exec_argv("c1", ["curl", "-i", f"http://{ORIGIN_HOST}/"]))
    click.echo("Try:")
    click.echo(f"  {client}")
    click.echo(
        f"  capport lab exec --prefix {lab.prefix} c2 -- curl -i http://{PORTAL_HOST}/"
    )
    click.echo(
        f"  capport lab exec --prefix {lab.prefix} c1 -- "
        f"curl -i 'http://[{UPSTREAM_ADDRESS6}]/x'"
    )
    click.echo(f"Remove it with: capport lab down --prefix {lab.prefix}")


if __name__ == "__main__":
    lab_group()

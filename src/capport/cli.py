"""The `capport` command line."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from capport import __version__, clientlisting
from capport.acct.commands import accounting_group
from capport.admin.commands import tokens_group
from capport.auth.commands import users_group
from capport.auth.voucher_commands import vouchers_group
from capport.bench.commands import bench_command
from capport.client.commands import check, login
from capport.config import (
    ControlSection,
    check_session_length,
    load_config,
    parse_duration,
)
from capport.controlclient import ControlClient
from capport.doctor.command import doctor
from capport.errors import CapportError
from capport.lab.commands import lab_group

DEFAULT_CONFIG = Path("/etc/capport/capport.toml")

_config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_CONFIG,
    show_default=True,
    help="The gateway's TOML configuration file.",
)
_socket_option = click.option(
    "--socket",
    "socket_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The gateway's control socket; read from --config when not given.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="capport")
def main() -> None:
    """capport: a captive-portal gateway for Linux."""


@main.command()
@_config_option
@click.option(
    "--check",
    is_flag=True,
    help="Validate the configuration and the host, print the result and exit.",
)
def run(config_path: Path, check: bool) -> None:
    """Run the gateway in the foreground until SIGTERM or SIGINT.

    SIGHUP reloads the configuration file: the session limits of new
    sessions, the firewall ports, the MAC lists, the device-limit policy
    and the log settings change, and the log names any key that needs a
    restart. Authorised devices keep their access when the gateway stops;
    a restart reconciles the firewall with the session store.
    """
    from capport.daemon import check as check_daemon
    from capport.daemon import run as run_daemon
    from capport.logs import configure_logging

    try:
        config = load_config(config_path)
        if check:
            check_daemon(config)
            click.echo(f"{config_path}: configuration and host are valid.")
            return
        configure_logging(config.log)
        run_daemon(config, config_path)
    except CapportError as error:
        raise click.ClickException(str(error)) from None


@main.command()
@_config_option
@_socket_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def clients(config_path: Path, socket_path: Path | None, as_json: bool) -> None:
    """List the authorised devices of the running gateway."""
    try:
        with _control(config_path, socket_path) as control:
            rows = control.clients()
    except CapportError as error:
        raise click.ClickException(str(error)) from None
    print_clients_or_discard(rows, as_json)


def print_clients_or_discard(rows: list[dict[str, Any]], as_json: bool) -> None:
    """Print the client list as JSON or as a table, until the reader goes away."""
    try:
        _print_clients(rows, as_json)
    except BrokenPipeError:
        _discard_output()


def _print_clients(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    clientlisting.print_clients(rows, click.echo)


def _discard_output() -> None:
    """End quietly after the reader of the output went away (`| head -1`).

    The rest of the output goes to /dev/null, or Python would report the
    same broken pipe again when it flushes standard output at exit.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


@main.command()
@click.argument("mac")
@_config_option
@_socket_option
def revoke(mac: str, config_path: Path, socket_path: Path | None) -> None:
    """End the access of the device with hardware address MAC."""
    try:
        with _control(config_path, socket_path) as control:
            ended = control.revoke(mac)
    except CapportError as error:
        raise click.ClickException(str(error)) from None
    for row in ended:
        click.echo(f"Revoked {row['mac']} at {row['ip']} (session {row['session']}).")


@main.command()
@click.argument("mac")
@click.argument("ip")
@click.option(
    "--duration",
    default=None,
    callback=lambda context, parameter, value: _seconds(value),
    help='Access time, such as 3600, "90m" or "2h" [default: session.duration].',
)
@_config_option
@_socket_option
def grant(
    mac: str,
    ip: str,
    duration: float | None,
    config_path: Path,
    socket_path: Path | None,
) -> None:
    """Authorise the device with hardware address MAC at IPv4 address IP."""
    try:
        with _control(config_path, socket_path) as control:
            row = control.grant(mac, ip, duration)
    except CapportError as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"Granted {row['mac']} at {row['ip']} for "
        f"{clientlisting.duration(row['remaining'])} "
        f"(session {row['session']})."
    )


@main.command()
@click.argument("mac")
@click.argument("duration", callback=lambda context, parameter, value: _seconds(value))
@_config_option
@_socket_option
def extend(
    mac: str, duration: float, config_path: Path, socket_path: Path | None
) -> None:
    """Add DURATION (such as 3600, "30m" or "1h") to the access of MAC."""
    try:
        with _control(config_path, socket_path) as control:
            extended = control.extend(mac, duration)
    except CapportError as error:
        raise click.ClickException(str(error)) from None
    for row in extended:
        click.echo(
            f"Extended {row['mac']} at {row['ip']} to "
            f"{clientlisting.duration(row['remaining'])} (session {row['session']})."
        )


@main.group("tls")
def tls_group() -> None:
    """Certificates for the portal's HTTPS and the Captive Portal API."""


@tls_group.command("init")
@_config_option
@click.option(
    "--force", is_flag=True, help="Replace existing CA and certificate files."
)
def tls_init(config_path: Path, force: bool) -> None:
    """Create a local CA and a certificate for tls.hostname at tls.certificate.

    Guests' devices must trust the CA (capport-ca.pem next to the
    certificate) before they trust the portal's HTTPS.
    """
    from capport.tlsinit import init_tls

    try:
        files = init_tls(load_config(config_path), force=force)
    except CapportError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"CA certificate:     {files.ca_certificate}")
    click.echo(f"CA key:             {files.ca_key}")
    click.echo(f"server certificate: {files.certificate}")
    click.echo(f"server key:         {files.key}")
    click.echo(f"server SPKI SHA-256 (base64): {files.spki_sha256}")


@main.command("dhcp-config")
@_config_option
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the dnsmasq configuration to this file instead of stdout.",
)
def dhcp_config(config_path: Path, output: Path | None) -> None:
    """Print the dnsmasq configuration that announces the portal (RFC 8910).

    It serves DHCPv4 and stateless DHCPv6 on the LAN, sends router
    advertisements when provisioning.prefix6 is set, answers DNS for
    provisioning.hosts, and sends the Captive Portal API URI in DHCPv4
    option 114 and DHCPv6 option 103.
    """
    from capport.provisioning import dnsmasq_config

    try:
        text = dnsmasq_config(load_config(config_path))
    except CapportError as error:
        raise click.ClickException(str(error)) from None
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise click.ClickException(f"cannot write {output}: {error.strerror}") from None
    click.echo(f"Wrote the dnsmasq configuration to {output}.")


_MAC_LIST_HELP = {
    "trust": "Let the device with hardware address MAC online without login.",
    "untrust": "Make the device with hardware address MAC captive again.",
    "block": "Never admit the device with hardware address MAC; end its access.",
    "unblock": "Let the device with hardware address MAC log in again.",
}


def _mac_list_command(command: str) -> click.Command:
    @click.argument("mac")
    @_config_option
    @_socket_option
    def change(mac: str, config_path: Path, socket_path: Path | None) -> None:
        try:
            with _control(config_path, socket_path) as control:
                result = control.change_mac(command, mac)
        except CapportError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"{result['mac']} is now {result['policy']}.")
        for row in result["ended"]:
            click.echo(f"Ended session {row['session']} at {row['ip']}.")

    change.__doc__ = _MAC_LIST_HELP[command]
    return click.command(command)(change)


for _command in _MAC_LIST_HELP:
    main.add_command(_mac_list_command(_command))

main.add_command(lab_group)
main.add_command(bench_command)
main.add_command(check)
main.add_command(login)
main.add_command(users_group)
main.add_command(vouchers_group)
main.add_command(tokens_group)
main.add_command(accounting_group)
main.add_command(doctor)


def _control(config_path: Path, socket_path: Path | None) -> ControlClient:
    if socket_path is None:
        if config_path.exists():
            socket_path = load_config(config_path).control.socket
        else:
            socket_path = ControlSection().socket
    return ControlClient(socket_path)


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return check_session_length(parse_duration(value), given=value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


if __name__ == "__main__":
    sys.exit(main())

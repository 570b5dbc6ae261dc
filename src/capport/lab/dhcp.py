"""DHCP, DNS and router advertisements in the laboratory: dnsmasq and dhclient.

dnsmasq runs in the gateway's namespace as a process of the laboratory,
with its configuration, pid and lease files in the state directory, so the
host's own dnsmasq service (if any) is never involved. It serves DHCPv4,
stateless DHCPv6 and DNS for origin.lab and portal.lab on lan0, and sends
the router advertisements from which the clients form SLAAC addresses.

A client that uses DHCP runs ISC dhclient with a script of the laboratory's
own: the default one, dhclient-script, would rewrite /etc/resolv.conf,
which inside `ip netns exec` is the host's own unless /etc/netns/NAME has
one. For DHCPv4 the script does nothing, and the laboratory reads the lease
file and configures the address itself. A stateless DHCPv6 exchange
(Information-request and Reply) leaves no lease in dhclient 4.4's lease
file, so for DHCPv6 the script records the options dhclient passes it, as
`new_dhcp6_NAME=value` lines, in a file of the state directory.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

from capport.config import GatewaySection, load_config
from capport.lab import system
from capport.lab.system import LabError
from capport.lab.topology import CLIENT_ROLES, LAN_INTERFACE, PREFIX_LENGTH, Lab
from capport.provisioning import (
    DHCPV4_CAPTIVE_PORTAL,
    DHCPV6_CAPTIVE_PORTAL,
    DnsmasqFiles,
    dnsmasq_config,
)

log = logging.getLogger("capport.lab")

# dhclient records an option under the name its configuration declares;
# ISC dhclient 4.4 has no names for these two options of RFC 8910.
DHCLIENT_CONFIG = f"""\
option captive-portal code {DHCPV4_CAPTIVE_PORTAL} = text;
option dhcp6.captive-portal code {DHCPV6_CAPTIVE_PORTAL} = string;
request subnet-mask, broadcast-address, routers, domain-name-servers,
    captive-portal, dhcp6.name-servers, dhcp6.captive-portal;
"""

_LEASE_BLOCK = re.compile(r"\blease6?\s*\{(.*?)\n\}", re.DOTALL)
_STATEMENT = re.compile(r"^\s*(option\s+)?([A-Za-z0-9.-]+)\s+(.*?);\s*$", re.MULTILINE)


# dnsmasq


def start_dnsmasq(lab: Lab) -> None:
    """Write dnsmasq's configuration from the gateway's, and start it.

    dnsmasq serves lan0 even when a test points the gateway at another
    interface, so the clients still get their addresses.
    """
    files = DnsmasqFiles(
        pid_file=str(lab.state_dir / "dnsmasq.pid"),
        lease_file=str(lab.state_dir / "dnsmasq.leases"),
    )
    config = load_config(lab.config_path)
    lan = GatewaySection(interface=LAN_INTERFACE)
    text = dnsmasq_config(config.model_copy(update={"gateway": lan}), files)
    lab.dnsmasq_config_path.write_text(text)
    argv = [
        "dnsmasq",
        "--keep-in-foreground",
        f"--conf-file={lab.dnsmasq_config_path}",
        "--log-facility=-",
        "--log-dhcp",
        # Offer at once instead of first pinging the address for up to 3 s:
        # nothing else on the laboratory's LAN can hold it.
        "--no-ping",
        # It stays root, so it can write its lease file in the state directory.
        "--user=root",
    ]
    try:
        record = system.spawn(lab.namespace("gw"), argv, lab.dnsmasq_log_path)
    except LabError as error:
        raise LabError(
            f"{error}; dnsmasq is in Debian's dnsmasq-base package "
            "(scripts/install installs it)"
        ) from error
    lab.processes["dnsmasq"] = record
    lab.save()
    log.info("Started dnsmasq in %s as PID %d.", lab.namespace("gw"), record.pid)


# Clients


def wait_for_slaac(lab: Lab, timeout: float) -> None:
    """Wait until every client has a global IPv6 address from the gateway's RAs."""
    deadline = time.monotonic() + timeout
    for role in CLIENT_ROLES:
        while not _global_ipv6(lab, role):
            if time.monotonic() >= deadline:
                raise LabError(
                    f"{lab.namespace(role)} formed no SLAAC address within "
                    f"{timeout:.0f} s; see {lab.dnsmasq_log_path}"
                )
            time.sleep(0.1)


def _global_ipv6(lab: Lab, role: str) -> bool:
    argv = ["ip", "-6", "-o", "address", "show", "dev", "eth0", "scope", "global"]
    output = lab.run(role, argv, check=True).stdout
    return "inet6" in output and "tentative" not in output


def start_dhclient4(lab: Lab, role: str) -> None:
    """Start dhclient for DHCPv4 in role's namespace.

    dhclient keeps running as a process of the laboratory, so it renews
    the lease.
    """
    lease_path = lab.dhclient_lease_path(role, 4)
    # dhclient 4.4 exits at once when its lease file does not exist.
    lease_path.touch()
    argv = _dhclient_argv(lab, role, 4, ["-d", "-4"], "/bin/true")
    log_path = lab.state_dir / f"dhclient4-{role}.log"
    try:
        record = system.spawn(lab.namespace(role), argv, log_path)
    except LabError as error:
        raise LabError(f"{error}; {_PACKAGE_HINT}") from error
    lab.processes[f"dhclient4-{role}"] = record
    lab.save()


def wait_for_lease4(lab: Lab, role: str, timeout: float) -> dict[str, str]:
    """Wait for role's DHCPv4 lease and return its statements."""
    lease_path = lab.dhclient_lease_path(role, 4)
    log_path = lab.state_dir / f"dhclient4-{role}.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lease = read_lease(lease_path)
        if lease:
            return lease
        time.sleep(0.1)
    raise LabError(
        f"dhclient in {lab.namespace(role)} received no DHCPv4 lease within "
        f"{timeout:.0f} s; see {log_path} and {lab.dnsmasq_log_path}"
    )


def request_dhcp6_options(lab: Lab, role: str, timeout: float) -> dict[str, str]:
    """Ask DHCPv6 for options from role's namespace; return what dhclient received.

    -S sends an Information-request (RFC 8415 section 18.2.6), because the
    addresses come from SLAAC, and dhclient exits once the Reply arrives.
    The keys are dhclient's option names, such as dhcp6.captive-portal.
    """
    lab.dhclient_lease_path(role, 6).touch()
    options_path = lab.dhcp6_options_path(role)
    script = lab.state_dir / f"dhclient6-script-{role}"
    script.write_text(
        "#!/bin/sh\n"
        "# Record the options of a DHCPv6 Reply; configure nothing.\n"
        f"env | grep '^new_dhcp6_' >> '{options_path}'\n"
    )
    script.chmod(0o755)
    argv = _dhclient_argv(lab, role, 6, ["-d", "-6", "-S", "-1"], str(script))
    try:
        result = lab.run(role, argv, timeout=timeout)
    except FileNotFoundError:
        raise LabError(f"command not found: dhclient; {_PACKAGE_HINT}") from None
    options = read_dhcp6_options(options_path)
    if not options:
        raise LabError(
            f"dhclient in {lab.namespace(role)} received no DHCPv6 Reply "
            f"(exit status {result.returncode}): {result.stderr.strip()[-500:]}; "
            f"see {lab.dnsmasq_log_path}"
        )
    return options


def read_dhcp6_options(path: Path) -> dict[str, str]:
    """Return the options recorded by the DHCPv6 script, the newest per name."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return {}
    options = {}
    for line in text.splitlines():
        name, _, value = line.partition("=")
        if name.startswith("new_dhcp6_"):
            option = "dhcp6." + name.removeprefix("new_dhcp6_").replace("_", "-")
            options[option] = value
    return options


_PACKAGE_HINT = "dhclient is in Debian's isc-dhcp-client package (scripts/install)"


def _dhclient_argv(
    lab: Lab, role: str, version: int, mode: list[str], script: str
) -> list[str]:
    config_path = lab.state_dir / "dhclient.conf"
    if not config_path.exists():
        config_path.write_text(DHCLIENT_CONFIG)
    return [
        "dhclient", *mode,
        "-cf", str(config_path),
        "-lf", str(lab.dhclient_lease_path(role, version)),
        "-pf", str(lab.state_dir / f"dhclient{version}-{role}.pid"),
        "-sf", script,
        "eth0",
    ]  # fmt: skip


def configure_lease4(lab: Lab, role: str, lease: dict[str, str]) -> str:
    """Give role's eth0 the leased IPv4 address and default route; return it."""
    address = lease.get("fixed-address")
    router = lease.get("routers", "").split(",")[0].strip()
    if not address or not router:
        raise LabError(
            f"the DHCPv4 lease of {lab.namespace(role)} lacks an address or a "
            f"router: {lease}"
        )
    namespace = lab.namespace(role)
    system.run_checked(
        [
            "ip",
            "-n",
            namespace,
            "address",
            "add",
            f"{address}/{PREFIX_LENGTH}",
            "dev",
            "eth0",
        ]
    )
    system.run_checked(
        ["ip", "-n", namespace, "route", "add", "default", "via", router]
    )
    return address


def read_lease(path: Path) -> dict[str, str]:
    """Return the statements of the newest lease in a dhclient lease file."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return {}
    return parse_lease(text)


def parse_lease(text: str) -> dict[str, str]:
    """Return the statements of the last `lease` or `lease6` block of text.

    dhclient appends each new lease, so the last block is the current one.
    Keys are statement names without `option`; quoted values are unquoted.
    """
    blocks = _LEASE_BLOCK.findall(text)
    if not blocks:
        return {}
    statements: dict[str, str] = {}
    for _, name, value in _STATEMENT.findall(blocks[-1]):
        if value.startswith('"') and value.endswith('"'):
            value = value[1:-1]
        statements.setdefault(name, value)
    return statements

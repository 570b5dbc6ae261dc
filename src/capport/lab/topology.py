"""The namespace laboratory: two clients, a gateway and an upstream host.

    c1 eth0 192.0.2.11 --+
                         +-- lan0 192.0.2.1  [gw]  wan0 198.51.100.1 --
    c2 eth0 192.0.2.12 --+                         eth0 198.51.100.80 [up]

The laboratory is dual-stack: lan0 also has 2001:db8:1::1/64, from which
dnsmasq sends router advertisements so that the clients form SLAAC
addresses, and wan0 has 2001:db8:2::1/64 towards the upstream host's
2001:db8:2::80. Each host is a network namespace named {prefix}-{role}. The
addresses are the documentation ranges TEST-NET-1 and TEST-NET-2 (RFC 5737)
and 2001:db8::/32 (RFC 3849), so nothing here can collide with a real
network. Every link is created inside the
namespaces, never in the host's own, and the host's sysctls are not touched.
What was built, and the PIDs started, are recorded in a state directory so
that `down` can remove it all from another process or after a crash.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capport.config import load_config
from capport.lab import system
from capport.lab.system import LabError, ProcessRecord
from capport.probes import DEFAULT_PROBES

log = logging.getLogger("capport.lab")

ROLES = ("gw", "c1", "c2", "up")
CLIENT_ROLES = ("c1", "c2")
# Roles with their own hosts file: the clients, and the gateway, which
# resolves the walled garden's host names.
HOSTS_ROLES = ("gw", *CLIENT_ROLES)
DEFAULT_PREFIX = "capport"

STATE_ROOT = Path("/run/capport-lab")
# `ip netns exec NAME` bind-mounts each file in /etc/netns/NAME over the file
# of the same name in /etc, which gives each client its own /etc/hosts.
HOSTS_ROOT = Path("/etc/netns")

LAN_INTERFACE = "lan0"
WAN_INTERFACE = "wan0"
GATEWAY_LAN_MAC = "02:00:00:00:00:01"
GATEWAY_LAN_ADDRESS = "192.0.2.1"
GATEWAY_WAN_ADDRESS = "198.51.100.1"
LAN_NETWORK = "192.0.2.0/24"
PREFIX_LENGTH = 24
UPSTREAM_ADDRESS = "198.51.100.80"
CLIENT_ADDRESSES = {"c1": "192.0.2.11", "c2": "192.0.2.12"}
CLIENT_MACS = {"c1": "02:00:00:00:00:11", "c2": "02:00:00:00:00:12"}

GATEWAY_LAN_ADDRESS6 = "2001:db8:1::1"
GATEWAY_WAN_ADDRESS6 = "2001:db8:2::1"
LAN_NETWORK6 = "2001:db8:1::/64"
PREFIX_LENGTH6 = 64
UPSTREAM_ADDRESS6 = "2001:db8:2::80"
# The SLAAC addresses of the clients: the prefix and the modified EUI-64
# identifier of their MACs (RFC 4291 appendix A): 02:00:00:00:00:11 becomes
# 0000:00ff:fe00:0011.
CLIENT_ADDRESSES6 = {"c1": "2001:db8:1::ff:fe00:11", "c2": "2001:db8:1::ff:fe00:12"}
# The addresses dnsmasq leases to clients that use DHCP.
DHCP_RANGE = ("192.0.2.100", "192.0.2.199")
# Two more addresses of the upstream host, served by the same origin, for
# walled-garden tests: one to list as a network, one behind a host name.
GARDEN_NETWORK_ADDRESS = "198.51.100.81"
GARDEN_HOST_ADDRESS = "198.51.100.82"
GARDEN_HOST = "garden.lab"

ORIGIN_HOST = "origin.lab"
PORTAL_HOST = "portal.lab"
ORIGIN_URL = f"http://{ORIGIN_HOST}/"
PORTAL_URL = f"http://{GATEWAY_LAN_ADDRESS}/"
PORTAL_URL6 = f"http://[{GATEWAY_LAN_ADDRESS6}]/"
# What dnsmasq announces in DHCPv4 option 114 and DHCPv6 option 103.
CAPTIVE_API_URI = f"https://{PORTAL_HOST}/api/captive"
# The host names of the built-in probes, which clients resolve to the origin.
PROBE_HOSTS = tuple(sorted({probe.host for probe in DEFAULT_PROBES}))

# The interfaces up() creates, by role; recorded in state.json for people.
LINKS = {
    "gw": ["lo", LAN_INTERFACE, "lan-c1", "lan-c2", WAN_INTERFACE],
    "c1": ["lo", "eth0"],
    "c2": ["lo", "eth0"],
    "up": ["lo", "eth0"],
}

# Namespace names become file names in /run/netns; lower case, digits and
# hyphens keep them safe in shell commands and unambiguous to match.
_PREFIX = re.compile(r"^[a-z][a-z0-9-]{0,19}$")


@dataclass
class Lab:
    """A built laboratory: its namespaces, addresses, files and processes."""

    prefix: str
    namespaces: dict[str, str]
    addresses: dict[str, str]
    macs: dict[str, str]
    state_dir: Path
    processes: dict[str, ProcessRecord] = field(default_factory=dict)
    dhcp: bool = False

    # Paths inside the state directory

    @property
    def config_path(self) -> Path:
        return self.state_dir / "capport.toml"

    @property
    def control_socket(self) -> Path:
        return self.state_dir / "control.sock"

    @property
    def store_path(self) -> Path:
        return self.state_dir / "capport.db"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "gateway.log"

    @property
    def origin_log_path(self) -> Path:
        return self.state_dir / "origin.log"

    @property
    def ca_path(self) -> Path:
        """The local CA of a laboratory built with tls; clients trust it."""
        return self.state_dir / "tls" / "capport-ca.pem"

    @property
    def state_path(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def dnsmasq_config_path(self) -> Path:
        return self.state_dir / "dnsmasq.conf"

    @property
    def dnsmasq_log_path(self) -> Path:
        return self.state_dir / "dnsmasq.log"

    def dhclient_lease_path(self, role: str, version: int) -> Path:
        """Return the lease file of role's DHCPv4 (4) or DHCPv6 (6) client."""
        return self.state_dir / f"dhclient{version}-{role}.leases"

    def dhcp6_options_path(self, role: str) -> Path:
        """Return the file where role's DHCPv6 client records the options it got."""
        return self.state_dir / f"dhclient6-{role}.options"

    # Running commands in a namespace

    def namespace(self, role: str) -> str:
        """Return the namespace name of role (gw, c1, c2 or up)."""
        try:
            return self.namespaces[role]
        except KeyError:
            raise LabError(
                f"unknown laboratory role {role!r}: expected one of {', '.join(ROLES)}"
            ) from None

    def exec_argv(self, role: str, argv: Sequence[str]) -> list[str]:
        """Return argv prefixed with `ip netns exec` for role's namespace."""
        return system.netns_argv(self.namespace(role), argv)

    def run(
        self,
        role: str,
        argv: Sequence[str],
        *,
        check: bool = False,
        timeout: float = 30.0,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run argv to completion in role's namespace, capturing text output.

        With check, a non-zero exit status raises LabError with the output.
        Running longer than timeout seconds raises LabError as well.
        """
        command = self.exec_argv(role, argv)
        try:
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                errors="replace",
                input=input,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise LabError(
                f"`{' '.join(command)}` timed out after {timeout:.0f} s"
            ) from None
        if check and result.returncode != 0:
            raise LabError(
                f"`{' '.join(command)}` failed with exit status "
                f"{result.returncode}: {(result.stderr or result.stdout).strip()}"
            )
        return result

    def popen(
        self, role: str, argv: Sequence[str], **kwargs: Any
    ) -> subprocess.Popen[Any]:
        """Start argv in role's namespace; kwargs go to subprocess.Popen."""
        return subprocess.Popen(self.exec_argv(role, argv), **kwargs)

    # The gateway daemon

    @property
    def gateway_argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "capport",
            "run",
            "--config",
            str(self.config_path),
        ]

    def gateway_running(self) -> bool:
        record = self.processes.get("gateway")
        return record is not None and system.is_running(record)

    def start_gateway(self, timeout: float = 20.0) -> None:
        """Start `capport run` in the gateway namespace and wait for its portal.

        Raises LabError with the end of the gateway's log when the process
        exits or the portal does not respond to a client within timeout seconds.
        """
        if self.gateway_running():
            pid = self.processes["gateway"].pid
            raise LabError(f"the gateway of {self.prefix} is already running as {pid}")
        record = system.spawn(self.namespace("gw"), self.gateway_argv, self.log_path)
        self.processes["gateway"] = record
        self.save()
        log.info("Started the gateway of %s as PID %d.", self.prefix, record.pid)
        portal = load_config(self.config_path).portal
        url = f"http://{portal.address}:{portal.port}/"
        self.wait_for_http("c1", url, "gateway", timeout)

    def stop_gateway(
        self, sig: int = signal.SIGTERM, timeout: float = 10.0
    ) -> int | None:
        """Send sig (SIGTERM or SIGKILL) to the gateway and wait for it to exit.

        Returns its exit status (negative for a signal, as in subprocess),
        or None when this process did not start it or it was not running.
        """
        record = self.processes.get("gateway")
        if record is None:
            return None
        if not system.stop(record, sig, timeout):
            name = signal.Signals(sig).name
            raise LabError(
                f"the gateway (PID {record.pid}) did not exit within {timeout:.0f} s "
                f"of {name}; see {self.log_path}"
            )
        del self.processes["gateway"]
        self.save()
        status = system.exit_status(record.pid)
        log.info("The gateway of %s exited with status %s.", self.prefix, status)
        return status

    def restart_gateway(self, timeout: float = 20.0) -> None:
        """Stop the gateway with SIGTERM and start it again on the same store."""
        self.stop_gateway(signal.SIGTERM)
        self.start_gateway(timeout)

    # State file

    def to_json(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "namespaces": self.namespaces,
            "addresses": self.addresses,
            "macs": self.macs,
            "dhcp": self.dhcp,
            "state_dir": str(self.state_dir),
            "hosts_dirs": [str(hosts_dir(self, role)) for role in HOSTS_ROLES],
            "links": {self.namespace(role): LINKS[role] for role in ROLES},
            "config": str(self.config_path),
            "control_socket": str(self.control_socket),
            "store": str(self.store_path),
            "log": str(self.log_path),
            "processes": {
                name: record.to_json() for name, record in self.processes.items()
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Lab:
        return cls(
            prefix=data["prefix"],
            namespaces=dict(data["namespaces"]),
            addresses=dict(data["addresses"]),
            macs=dict(data["macs"]),
            dhcp=bool(data.get("dhcp", False)),
            state_dir=Path(data["state_dir"]),
            processes={
                name: ProcessRecord.from_json(record)
                for name, record in data["processes"].items()
            },
        )

    def save(self) -> None:
        """Write state.json atomically, so a crash never leaves half a file."""
        temporary = self.state_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        os.replace(temporary, self.state_path)

    def wait_for_http(
        self, role: str, url: str, process_name: str, timeout: float
    ) -> None:
        """Poll url from role until any HTTP response arrives.

        Raises LabError with the end of the process's log when process_name
        exits first or timeout seconds pass.
        """
        record = self.processes[process_name]
        log_path = self.log_path if process_name == "gateway" else self.origin_log_path
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not system.is_running(record):
                status = system.exit_status(record.pid)
                raise LabError(
                    f"the {process_name} (PID {record.pid}) exited with status "
                    f"{status} before {url} responded.\n{_tail(log_path)}"
                )
            probe = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}"]
            result = self.run(role, [*probe, "--max-time", "1", url], timeout=5)
            if result.stdout.strip() not in ("", "000"):
                return
            time.sleep(0.1)
        raise LabError(
            f"{url} did not respond from {self.namespace(role)} within "
            f"{timeout:.0f} s of starting the {process_name}.\n{_tail(log_path)}"
        )


def check_prefix(prefix: str) -> None:
    if not _PREFIX.match(prefix):
        raise LabError(
            f"invalid laboratory prefix {prefix!r}: use 1 to 20 lower-case "
            "letters, digits or hyphens, starting with a letter"
        )


def plan(prefix: str) -> Lab:
    """Return the laboratory prefix names, without building anything."""
    check_prefix(prefix)
    addresses = {
        "gw": GATEWAY_LAN_ADDRESS,
        **CLIENT_ADDRESSES,
        "up": UPSTREAM_ADDRESS,
    }
    return Lab(
        prefix=prefix,
        namespaces={role: f"{prefix}-{role}" for role in ROLES},
        addresses=addresses,
        macs=dict(CLIENT_MACS),
        state_dir=STATE_ROOT / prefix,
    )


def hosts_dir(lab: Lab, role: str) -> Path:
    return HOSTS_ROOT / lab.namespace(role)


def load(prefix: str) -> Lab:
    """Return the laboratory built with prefix, as its state.json records it."""
    lab = plan(prefix)
    try:
        data = json.loads(lab.state_path.read_text())
        return Lab.from_json(data)
    except FileNotFoundError:
        raise LabError(
            f"no laboratory with prefix {prefix!r}: {lab.state_path} is missing; "
            f"build one with `capport lab up --prefix {prefix}`"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise LabError(
            f"cannot read {lab.state_path}: {error}; remove the laboratory with "
            f"`capport lab down --prefix {prefix}`"
        ) from error


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as error:
        return f"(cannot read {path}: {error.strerror})"
    last = text.splitlines()[-lines:]
    return f"Last lines of {path}:\n" + "\n".join(f"  {line}" for line in last)

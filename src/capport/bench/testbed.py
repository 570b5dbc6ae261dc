"""The laboratory as the benchmarks use it: pinned, with simulated devices.

On top of `capport lab up` the testbed

- pins the gateway daemon (and later nginx) to SERVER_CPU and runs every
  load generator on LOAD_CPU, so the server and its load never share a
  core;
- gives the gateway's LAN the benchmarking network 198.18.0.0/15 and
  creates simulated devices there as macvlan interfaces in client c2;
- runs helper programs in the namespaces and reads their JSON output.

Everything stays inside the laboratory's namespaces, which are removed
when the testbed closes, also after an error or Ctrl-C.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from capport.bench.devices import (
    DEVICE_GATEWAY,
    DEVICE_NETWORK,
    LinkedDevice,
    linked_device,
    macvlan_commands,
)
from capport.errors import CapportError
from capport.lab import Lab, down, up
from capport.lab.topology import GATEWAY_LAN_MAC, GATEWAY_WAN_ADDRESS, LAN_INTERFACE

log = logging.getLogger("capport.bench")

BENCH_PREFIX = "capbench"
SERVER_CPU = 1
LOAD_CPU = 0
NGINX_PORT = 8512
DEVICE_ROLE = "c2"


class BenchError(CapportError, RuntimeError):
    """A benchmark could not run or a tool it drives failed."""


class Testbed:
    """A built laboratory prepared for benchmarks."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self._next_device = 0

    # Processes

    @property
    def gateway_pid(self) -> int:
        record = self.lab.processes.get("gateway")
        if record is None:
            raise BenchError("the laboratory's gateway is not running")
        return record.pid

    def pin_gateway(self) -> None:
        """Pin every thread of the gateway daemon to SERVER_CPU.

        Threads the daemon starts later inherit the affinity of the thread
        that starts them.
        """
        run_checked(
            ["taskset", "-a", "-p", "-c", str(SERVER_CPU), str(self.gateway_pid)]
        )

    def restart_gateway(self, timeout: float = 120.0) -> None:
        """Stop the gateway, start it on the same store, and pin it again."""
        self.lab.restart_gateway(timeout)
        self.pin_gateway()

    def argv(self, role: str, argv: Sequence[str], cpu: int | None = None) -> list[str]:
        """Return argv run in role's namespace, pinned to cpu when given."""
        pinned = list(argv) if cpu is None else ["taskset", "-c", str(cpu), *argv]
        return self.lab.exec_argv(role, pinned)

    def run(
        self,
        role: str,
        argv: Sequence[str],
        cpu: int | None = None,
        timeout: float = 60.0,
        input: str | None = None,
    ) -> str:
        """Run argv in role's namespace and return its standard output."""
        return run_checked(self.argv(role, argv, cpu), timeout=timeout, input=input)

    def worker(
        self,
        role: str,
        module: str,
        arguments: Sequence[str],
        request: dict[str, Any] | None = None,
        cpu: int | None = LOAD_CPU,
        timeout: float = 120.0,
        record: list[str] | None = None,
    ) -> dict[str, Any]:
        """Run `python -m module arguments` in role's namespace; return its JSON.

        request, when given, is sent as JSON on standard input. The command
        is appended to record, unless it is there already.
        """
        argv = self.python_argv(module, arguments)
        command = shlex.join(self.argv(role, argv, cpu))
        if request is not None:
            command += " < request.json"
        if record is not None and command not in record:
            record.append(command)
        text = json.dumps(request) if request is not None else None
        output = self.run(role, argv, cpu=cpu, timeout=timeout, input=text)
        return parse_json_object(output, command)

    def python_argv(self, module: str, arguments: Sequence[str]) -> list[str]:
        return [sys.executable, "-m", module, *arguments]

    # Simulated devices

    def add_devices(self, count: int) -> list[LinkedDevice]:
        """Create count more simulated devices in client c2 and return them."""
        devices = [
            linked_device(index)
            for index in range(self._next_device, self._next_device + count)
        ]
        self._next_device += count
        commands = macvlan_commands(devices, "eth0", GATEWAY_LAN_MAC)
        batch = "\n".join(commands) + "\n"
        namespace = self.lab.namespace(DEVICE_ROLE)
        run_checked(["ip", "-n", namespace, "-batch", "-"], input=batch)
        return devices

    # Reading the gateway's log

    def log_size(self) -> int:
        try:
            return self.lab.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, offset: int) -> str:
        with open(self.lab.log_path, "rb") as file:
            file.seek(offset)
            return file.read().decode("utf-8", "replace")


@contextmanager
def open_testbed(prefix: str = BENCH_PREFIX) -> Iterator[Testbed]:
    """Build the laboratory for benchmarks and remove it afterwards.

    A laboratory left under prefix by an interrupted run is removed first.
    """
    for item in down(prefix):
        log.info("Removed %s left by an earlier run.", item)
    # The input chain of capport's table rejects TCP to ports it does not
    # list; nginx, the responder's reference, listens on NGINX_PORT.
    extra = {"firewall": {"allow_tcp_ports": [NGINX_PORT]}}
    lab = up(prefix, extra_config=extra, timeout=60.0)
    try:
        testbed = Testbed(lab)
        _prepare(testbed)
        yield testbed
    finally:
        down(prefix)


def _prepare(testbed: Testbed) -> None:
    lab = testbed.lab
    gateway = lab.namespace("gw")

    device_prefix = DEVICE_NETWORK.prefixlen
    run_checked(
        [
            "ip",
            "-n",
            gateway,
            "address",
            "add",
            f"{DEVICE_GATEWAY}/{device_prefix}",
            "dev",
            LAN_INTERFACE,
        ]
    )

    upstream = lab.namespace("up")
    run_checked(
        [
            "ip",
            "-n",
            upstream,
            "route",
            "add",
            str(DEVICE_NETWORK),
            "via",
            GATEWAY_WAN_ADDRESS,
        ]
    )
    # With many interfaces on one network in one namespace, Linux would by
    # default reply to ARP for any local address on every interface, and the
    # gateway would learn the wrong MAC. With arp_ignore=1 only the
    # interface that has the address replies, and arp_announce=2 sends
    # requests from it.
    sysctl = [
        "sysctl",
        "-q",
        "-w",
        "net.ipv4.conf.all.arp_ignore=1",
        "net.ipv4.conf.all.arp_announce=2",
    ]
    testbed.run(DEVICE_ROLE, sysctl)

    testbed.pin_gateway()


# Helpers


def run_checked(
    argv: Sequence[str], timeout: float = 60.0, input: str | None = None
) -> str:
    """Run argv to completion and return its standard output.

    Raises BenchError with the command and its output when it is missing,
    times out or exits with a non-zero status.
    """
    command = shlex.join(argv)
    try:
        result = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            input=input,
            check=False,
        )
    except FileNotFoundError:
        raise BenchError(f"command not found: {argv[0]}; run scripts/install") from None
    except subprocess.TimeoutExpired:
        raise BenchError(f"`{command}` timed out after {timeout:.0f} s") from None
    if result.returncode != 0:
        output = (result.stderr.strip() or result.stdout.strip())[-2000:]
        raise BenchError(
            f"`{command}` failed with exit status {result.returncode}: {output}"
        )
    return result.stdout


def parse_json_object(text: str, command: str) -> dict[str, Any]:
    """Read the last line of text as a JSON object, the form workers print."""
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        data = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise BenchError(
            f"`{command}` printed no JSON result: {text[-500:]!r}"
        ) from None
    if not isinstance(data, dict):
        raise BenchError(f"`{command}` printed {data!r}, not a JSON object")
    return data


def read_proc(pid: int, name: str) -> str:
    """Return /proc/PID/name, raising BenchError when the process is gone."""
    try:
        return Path(f"/proc/{pid}/{name}").read_text()
    except OSError as error:
        raise BenchError(f"cannot read /proc/{pid}/{name}: {error.strerror}") from None

"""The laboratory's namespaces, links, origin server, state and removal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from capport.config import load_config
from capport.errors import ConfigError
from capport.lab import Lab, LabError, down, load, system, up
from capport.lab.origin import MARKER, TCP_GREETING
from capport.lab.system import ProcessRecord
from capport.lab.topology import HOSTS_ROOT, STATE_ROOT

pytestmark = pytest.mark.lab

HOST_FORWARDING = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()

CONNECT = textwrap.dedent(
    """
    import socket, sys
    try:
        with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2) as s:
            print("connected", s.recv(100).decode())
    except ConnectionRefusedError:
        print("refused")
    except OSError as error:
        print(type(error).__name__)
    """
)


def connect(lab: Lab, role: str, address: str, port: int) -> str:
    """Open a TCP connection from role and return what happened."""
    argv = [sys.executable, "-c", CONNECT, address, str(port)]
    return lab.run(role, argv, check=True).stdout.strip()


def curl(lab: Lab, role: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return lab.run(role, ["curl", "-sS", "--max-time", "5", *argv])


def read_sysctl(lab: Lab, role: str, key: str) -> str:
    return lab.run(role, ["sysctl", "-n", key], check=True).stdout.strip()


def namespaces_present(prefix: str) -> list[str]:
    return [
        name
        for name in (f"{prefix}-{role}" for role in ("gw", "c1", "c2", "up"))
        if system.namespace_exists(name)
    ]


def leftovers(prefix: str) -> list[str]:
    """Return every namespace and directory of prefix that still exists."""
    paths = [HOSTS_ROOT / f"{prefix}-{role}" for role in ("gw", "c1", "c2")]
    paths.append(STATE_ROOT / prefix)
    return namespaces_present(prefix) + [str(path) for path in paths if path.exists()]


@pytest.fixture(scope="module")
def topology(new_prefix: Callable[[str], str]) -> Iterator[Lab]:
    """A laboratory without the gateway: namespaces, links and origin only."""
    prefix = new_prefix("t")
    built = up(prefix, start_gateway=False)
    try:
        yield built
    finally:
        down(prefix)


# Namespaces and links


def test_namespaces_exist(topology: Lab) -> None:
    assert namespaces_present(topology.prefix) == list(topology.namespaces.values())


def test_client_reaches_gateway(topology: Lab) -> None:
    # Nothing listens on the gateway yet, so its kernel replies with a reset.
    assert connect(topology, "c1", "192.0.2.1", 80) == "refused"


def test_second_client_reaches_gateway(topology: Lab) -> None:
    assert connect(topology, "c2", "192.0.2.1", 80) == "refused"


def test_upstream_reaches_gateway(topology: Lab) -> None:
    assert connect(topology, "up", "198.51.100.1", 80) == "refused"


def test_client_reaches_origin_by_name(topology: Lab) -> None:
    result = curl(topology, "c1", "http://origin.lab/")
    assert result.returncode == 0, result.stderr
    assert MARKER in result.stdout


def test_client_resolves_portal_name(topology: Lab) -> None:
    result = topology.run("c2", ["getent", "hosts", "portal.lab"], check=True)
    assert result.stdout.split()[0] == "192.0.2.1"


def test_clients_have_fixed_macs(topology: Lab) -> None:
    for role, mac in (("c1", "02:00:00:00:00:11"), ("c2", "02:00:00:00:00:12")):
        path = "/sys/class/net/eth0/address"
        address = topology.run(role, ["cat", path], check=True).stdout.strip()
        assert address == mac, role


def test_clients_route_through_gateway(topology: Lab) -> None:
    routes = topology.run("c1", ["ip", "route", "show", "default"], check=True)
    assert "via 192.0.2.1 dev eth0" in routes.stdout


def test_forwarding_only_in_gateway(topology: Lab) -> None:
    key = "net.ipv4.ip_forward"
    assert read_sysctl(topology, "gw", key) == "1"
    assert read_sysctl(topology, "c1", key) == "0"
    assert read_sysctl(topology, "c2", key) == "0"
    assert read_sysctl(topology, "up", key) == "0"


def test_host_forwarding_unchanged(topology: Lab) -> None:
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == HOST_FORWARDING


def test_no_lab_interface_in_host(topology: Lab) -> None:
    host_links = subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True, check=True
    ).stdout
    for name in ("lan0", "wan0", "lan-c1", "lan-c2"):
        assert f": {name}" not in host_links


# The origin server


def test_origin_echoes_path(topology: Lab) -> None:
    result = curl(topology, "c1", "http://origin.lab/x/some/path")
    assert result.stdout.strip() == "/x/some/path"


def test_origin_streams_requested_bytes(topology: Lab) -> None:
    url = "http://origin.lab/bytes/300000?delay=0"
    result = curl(topology, "c1", "-o", "/dev/null", "-w", "%{size_download}", url)
    assert result.stdout == "300000"


def test_origin_stream_lasts_until_cut(topology: Lab) -> None:
    # 20 ms after each 64 KiB chunk: 10 MB take about 3 s, so a 0.5 s limit
    # stops the transfer part-way.
    url = "http://origin.lab/bytes/10000000"
    result = curl(topology, "c1", "--max-time", "0.5", "-o", "/dev/null", url)
    assert result.returncode == 28  # curl: operation timed out


def test_origin_accepts_plain_tcp_on_443(topology: Lab) -> None:
    outcome = connect(topology, "c1", "198.51.100.80", 443)
    assert outcome == "connected " + TCP_GREETING.decode().strip()


def test_origin_sees_client_address(topology: Lab) -> None:
    curl(topology, "c2", "http://origin.lab/x/who")
    log = topology.origin_log_path.read_text()
    assert "192.0.2.12 " in log


# State


def test_state_records_namespaces_and_pids(topology: Lab) -> None:
    state = json.loads(topology.state_path.read_text())
    assert state["namespaces"] == topology.namespaces
    assert state["hosts_dirs"] == [
        str(HOSTS_ROOT / f"{topology.prefix}-gw"),
        str(HOSTS_ROOT / f"{topology.prefix}-c1"),
        str(HOSTS_ROOT / f"{topology.prefix}-c2"),
    ]
    origin = ProcessRecord.from_json(state["processes"]["origin"])
    assert system.is_running(origin)


def test_load_returns_recorded_lab(topology: Lab) -> None:
    assert load(topology.prefix) == topology


def test_load_without_lab_names_prefix(new_prefix: Callable[[str], str]) -> None:
    prefix = new_prefix("t")
    with pytest.raises(LabError, match=f"no laboratory with prefix '{prefix}'"):
        load(prefix)


def test_config_has_lab_values(topology: Lab) -> None:
    config = load_config(topology.config_path)
    assert config.gateway.interface == "lan0"
    assert str(config.portal.address) == "192.0.2.1"
    assert config.portal.port == 80
    assert config.responder.port == 8511
    assert config.store.path == topology.store_path
    assert config.control.socket == topology.control_socket


def test_run_rejects_unknown_role(topology: Lab) -> None:
    with pytest.raises(LabError, match="unknown laboratory role 'c3'"):
        topology.run("c3", ["true"])


def test_up_rejects_existing_prefix(topology: Lab) -> None:
    with pytest.raises(LabError, match="already exists"):
        up(topology.prefix, start_gateway=False)
    assert namespaces_present(topology.prefix) == list(topology.namespaces.values())


def test_up_rejects_invalid_prefix() -> None:
    with pytest.raises(LabError, match="invalid laboratory prefix"):
        up("../etc", start_gateway=False)


def test_up_removes_lab_on_invalid_config(new_prefix: Callable[[str], str]) -> None:
    prefix = new_prefix("t")
    with pytest.raises(ConfigError, match="session.nonsense"):
        up(prefix, extra_config={"session": {"nonsense": 1}}, start_gateway=False)
    assert leftovers(prefix) == []


# Removal


def test_down_removes_everything(new_prefix: Callable[[str], str]) -> None:
    prefix = new_prefix("t")
    built = up(prefix, start_gateway=False)
    origin = built.processes["origin"]
    down(prefix)
    assert leftovers(prefix) == []
    assert not system.is_running(origin)


def test_down_twice_is_harmless(new_prefix: Callable[[str], str]) -> None:
    prefix = new_prefix("t")
    up(prefix, start_gateway=False)
    down(prefix)
    assert down(prefix) == []


def test_down_without_lab_does_nothing(new_prefix: Callable[[str], str]) -> None:
    assert down(new_prefix("t")) == []


def test_down_leaves_similar_names(
    topology: Lab, new_prefix: Callable[[str], str]
) -> None:
    prefix = new_prefix("t")
    neighbour = f"{prefix}x-gw"
    subprocess.run(["ip", "netns", "add", neighbour], check=True)
    try:
        down(prefix)
        assert system.namespace_exists(neighbour)
        assert namespaces_present(topology.prefix) == list(topology.namespaces.values())
    finally:
        subprocess.run(["ip", "netns", "delete", neighbour], check=True)


def test_down_cleans_partial_build(new_prefix: Callable[[str], str]) -> None:
    prefix = new_prefix("t")
    subprocess.run(["ip", "netns", "add", f"{prefix}-gw"], check=True)
    (HOSTS_ROOT / f"{prefix}-c1").mkdir(parents=True)
    (STATE_ROOT / prefix).mkdir(parents=True)
    (STATE_ROOT / prefix / "state.json").write_text("{not json")
    down(prefix)
    assert leftovers(prefix) == []


CRASHING_BUILDER = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    from capport.lab import up
    lab = up(sys.argv[1], start_gateway=False)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    stray = lab.popen("gw", ["sleep", "300"], **quiet)
    # ip netns exec enters the namespace a moment after the fork.
    identify = ["ip", "netns", "identify", str(stray.pid)]
    while subprocess.run(identify, capture_output=True, text=True).stdout.strip() != (
        sys.argv[1] + "-gw"
    ):
        time.sleep(0.01)
    print(stray.pid, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_down_after_builder_crash(new_prefix: Callable[[str], str]) -> None:
    prefix = new_prefix("t")
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_BUILDER, prefix],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    stray_pid = int(crashed.stdout)
    in_gateway = system.namespace_processes(f"{prefix}-gw")
    dnsmasq = load(prefix).processes["dnsmasq"]
    assert sorted(r.pid for r in in_gateway) == sorted([stray_pid, dnsmasq.pid])
    origin = load(prefix).processes["origin"]

    down(prefix)

    assert leftovers(prefix) == []
    for record in in_gateway:
        assert not system.is_running(record)
    assert not system.is_running(origin)


# The gateway process (needs the daemon)


def test_portal_answers_client(lab: Lab) -> None:
    result = curl(
        lab, "c1", "-o", "/dev/null", "-w", "%{http_code}", "http://portal.lab/"
    )
    assert result.stdout == "200"


def test_gateway_recorded_in_state(lab: Lab) -> None:
    state = json.loads(lab.state_path.read_text())
    gateway = ProcessRecord.from_json(state["processes"]["gateway"])
    assert system.is_running(gateway)


def test_up_reports_gateway_exit_with_log(new_prefix: Callable[[str], str]) -> None:
    prefix = new_prefix("t")
    broken = {"gateway": {"interface": "nosuch0"}}
    with pytest.raises(LabError, match="exited with status") as raised:
        up(prefix, extra_config=broken)
    assert "Last lines of" in str(raised.value)
    assert leftovers(prefix) == []


def test_stop_gateway_closes_portal(fresh_lab: Lab) -> None:
    fresh_lab.stop_gateway(signal.SIGTERM)
    assert not fresh_lab.gateway_running()
    assert connect(fresh_lab, "c1", "192.0.2.1", 80) == "refused"


def test_restart_gateway_answers_again(fresh_lab: Lab) -> None:
    fresh_lab.restart_gateway()
    result = curl(
        fresh_lab, "c1", "-o", "/dev/null", "-w", "%{http_code}", "http://portal.lab/"
    )
    assert result.stdout == "200"


def test_start_gateway_twice_is_rejected(fresh_lab: Lab) -> None:
    with pytest.raises(LabError, match="already running"):
        fresh_lab.start_gateway()


def test_stop_gateway_reports_sigkill(fresh_lab: Lab) -> None:
    assert fresh_lab.stop_gateway(signal.SIGKILL) == -signal.SIGKILL


def test_down_after_gateway_sigkill(fresh_lab: Lab) -> None:
    # Killed behind the laboratory's back: state.json still lists the PID.
    gateway = fresh_lab.processes["gateway"]
    os.kill(gateway.pid, signal.SIGKILL)
    down(fresh_lab.prefix)
    assert leftovers(fresh_lab.prefix) == []
    assert not system.is_running(gateway)

"""IPv6 through the whole gateway: capture, login, learned addresses, revocation.

The clients form SLAAC addresses from the gateway's router advertisements
(dnsmasq). Every request here names an IPv6 literal, so curl sends it over
IPv6 and IPv4 plays no part in what is checked.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from clients import CURL_COULDNT_CONNECT, curl, log_in, revoke_quietly
from netns import Namespace, wait_until

from capport.lab import Lab, down, up
from capport.lab.demo import CurlFetch
from capport.lab.flow import check_captive_response, flow_succeeded, run_login_flow
from capport.lab.origin import MARKER
from capport.lab.topology import (
    CLIENT_ADDRESSES6,
    GATEWAY_LAN_ADDRESS,
    GATEWAY_LAN_ADDRESS6,
    PORTAL_URL6,
    UPSTREAM_ADDRESS6,
)

pytestmark = pytest.mark.lab

ORIGIN6 = f"http://[{UPSTREAM_ADDRESS6}]"
PORTAL_HOSTS6 = frozenset({GATEWAY_LAN_ADDRESS6})
# An address the tests add to c1 after login, as a privacy address would be.
PRIVACY_ADDRESS = "2001:db8:1::abcd:1234"


@pytest.fixture(scope="module")
def lab6(new_prefix) -> Iterator[Lab]:  # type: ignore[no-untyped-def]
    """A dual-stack laboratory of this module's own, because tests add addresses."""
    from conftest import _keep_logs as keep_logs
    from conftest import missing_requirement

    reason = missing_requirement()
    if reason is not None:
        pytest.skip(reason)
    prefix = new_prefix("v")
    built = up(prefix)
    try:
        yield built
    finally:
        keep_logs(built)
        down(prefix)


@pytest.fixture
def c1_signed_out(lab6: Lab) -> Iterator[Lab]:
    """Leave c1 without a session and without added addresses afterwards."""
    yield lab6
    revoke_quietly(lab6, lab6.macs["c1"])
    lab6.run(
        "c1", ["ip", "-6", "address", "del", f"{PRIVACY_ADDRESS}/64", "dev", "eth0"]
    )
    # The gateway would otherwise keep the address as a stale neighbour
    # entry and authorise it at the next login, not when it appears.
    lab6.run("gw", ["ip", "-6", "neigh", "del", PRIVACY_ADDRESS, "dev", "lan0"])


def curl6(
    lab: Lab, role: str, url: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    """Run curl -6 in role's namespace; return the completed process."""
    argv = ["curl", "-6", "-sS", "--max-time", "5", *extra, url]
    return lab.run(role, argv, timeout=10)


def reaches_origin(lab: Lab, role: str, *extra: str) -> bool:
    result = curl6(lab, role, f"{ORIGIN6}/", *extra)
    return result.returncode == 0 and MARKER in result.stdout


def log_in6(lab: Lab, role: str) -> None:
    """Click through the portal over IPv6 only, starting from an IPv6 literal URL."""
    fetch = CurlFetch(lab, role)
    results = run_login_flow(fetch, f"{ORIGIN6}/x/start", "/x/start", PORTAL_HOSTS6)
    steps = "; ".join(f"{step.name}: {step.detail}" for step in results)
    assert flow_succeeded(results), steps


# Before login


def test_ipv6_request_gets_511_with_bracketed_host(lab6: Lab) -> None:
    url = f"{ORIGIN6}/x/captured?a=1"
    response = curl(lab6, "c1", url)
    assert response.status == 511
    ok, detail, portal_url = check_captive_response(response, url, PORTAL_HOSTS6)
    assert ok, detail
    assert portal_url is not None
    assert portal_url.startswith(f"{PORTAL_URL6}?t=")
    assert f"<code>{url}</code>" in response.body.replace("&amp;", "&")


def test_ipv6_portal_link_reachable_over_ipv6(lab6: Lab) -> None:
    url = f"{ORIGIN6}/x/link"
    response = curl(lab6, "c1", url)
    _, _, portal_url = check_captive_response(response, url, PORTAL_HOSTS6)
    assert portal_url is not None
    assert urlsplit(portal_url).hostname == GATEWAY_LAN_ADDRESS6
    splash = curl(lab6, "c1", portal_url)
    assert splash.status == 200
    # The splash page names the host the person will be sent back to.
    assert UPSTREAM_ADDRESS6 in splash.body


def test_ipv6_tcp_refused_before_login(lab6: Lab) -> None:
    started = time.monotonic()
    result = curl6(lab6, "c1", f"{ORIGIN6}:443/")
    assert result.returncode == CURL_COULDNT_CONNECT, result.stderr
    assert time.monotonic() - started < 3


def test_ipv6_origin_unreached_before_login(lab6: Lab) -> None:
    curl6(lab6, "c2", f"{ORIGIN6}/x/never")
    curl6(lab6, "c2", f"{ORIGIN6}:443/")
    log = lab6.origin_log_path.read_text()
    assert CLIENT_ADDRESSES6["c2"] not in log
    assert "/x/never" not in log


def test_ipv6_udp_rejected_before_login(lab6: Lab) -> None:
    with Namespace(lab6.namespace("c2")).entered():
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    with sock:
        sock.settimeout(3)
        sock.connect((UPSTREAM_ADDRESS6, 9))
        sock.send(b"probe")
        # Linux reports ICMPv6 "administratively prohibited" to a connected
        # UDP socket as EACCES (icmpv6_err_convert).
        with pytest.raises(PermissionError):
            sock.recv(100)


# Login and after


def test_ipv6_login_reaches_origin(c1_signed_out: Lab) -> None:
    lab = c1_signed_out
    assert not reaches_origin(lab, "c1")
    log_in6(lab, "c1")
    assert reaches_origin(lab, "c1")
    log = lab.origin_log_path.read_text()
    assert CLIENT_ADDRESSES6["c1"] in log


def test_new_ipv6_address_gets_access_without_login(c1_signed_out: Lab) -> None:
    lab = c1_signed_out
    log_in6(lab, "c1")
    lab.run(
        "c1",
        ["ip", "-6", "address", "add", f"{PRIVACY_ADDRESS}/64", "dev", "eth0"],
        check=True,
    )
    source = ("--interface", PRIVACY_ADDRESS)
    # The first packet from the new address is rejected, and the gateway
    # resolves the address to send the rejection, which authorises it.
    assert wait_until(
        lambda: reaches_origin(lab, "c1", *source), timeout=10, interval=0.2
    )
    log = lab.origin_log_path.read_text()
    assert PRIVACY_ADDRESS in log


def test_revoke_makes_all_ipv6_addresses_captive(c1_signed_out: Lab) -> None:
    lab = c1_signed_out
    log_in6(lab, "c1")
    lab.run(
        "c1",
        ["ip", "-6", "address", "add", f"{PRIVACY_ADDRESS}/64", "dev", "eth0"],
        check=True,
    )
    source = ("--interface", PRIVACY_ADDRESS)
    assert wait_until(
        lambda: reaches_origin(lab, "c1", *source), timeout=10, interval=0.2
    )
    revoke_quietly(lab, lab.macs["c1"])

    for extra in ((), source):
        result = curl6(
            lab, "c1", f"{ORIGIN6}/", "-o", "/dev/null", "-w", "%{http_code}", *extra
        )
        assert result.stdout == "511", (extra, result.stdout, result.stderr)
    elements = lab.run(
        "gw", ["nft", "list", "set", "inet", "capport", "allowed6"], check=True
    ).stdout
    assert CLIENT_ADDRESSES6["c1"] not in elements
    assert PRIVACY_ADDRESS not in elements


def test_ipv4_login_authorises_known_ipv6(c1_signed_out: Lab) -> None:
    lab = c1_signed_out
    # A request over IPv6 first, so the gateway has resolved the address.
    curl6(lab, "c1", f"{ORIGIN6}/x/before")
    log_in(lab, "c1")
    assert reaches_origin(lab, "c1")


def test_learned_address_survives_restart(c1_signed_out: Lab) -> None:
    lab = c1_signed_out
    log_in6(lab, "c1")
    lab.run(
        "c1",
        ["ip", "-6", "address", "add", f"{PRIVACY_ADDRESS}/64", "dev", "eth0"],
        check=True,
    )
    source = ("--interface", PRIVACY_ADDRESS)
    assert wait_until(
        lambda: reaches_origin(lab, "c1", *source), timeout=10, interval=0.2
    )
    lab.restart_gateway()
    # The store records only the address of the login; the others are read
    # again from the kernel's neighbour table when the gateway starts.
    assert reaches_origin(lab, "c1", *source)
    assert reaches_origin(lab, "c1")


def test_revoke_cuts_download_from_learned_address(c1_signed_out: Lab) -> None:
    lab = c1_signed_out
    log_in6(lab, "c1")
    lab.run(
        "c1",
        ["ip", "-6", "address", "add", f"{PRIVACY_ADDRESS}/64", "dev", "eth0"],
        check=True,
    )
    source = ("--interface", PRIVACY_ADDRESS)
    assert wait_until(
        lambda: reaches_origin(lab, "c1", *source), timeout=10, interval=0.2
    )
    with Namespace(lab.namespace("c1")).entered():
        sock = socket.create_connection(
            (UPSTREAM_ADDRESS6, 80), timeout=5, source_address=(PRIVACY_ADDRESS, 0)
        )
    reads: list[float] = []

    def read() -> None:
        with sock:
            sock.settimeout(0.2)
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                try:
                    if not sock.recv(65536):
                        return
                except TimeoutError:
                    continue
                except OSError:
                    return
                reads.append(time.monotonic())

    sock.sendall(b"GET /bytes/1000000000 HTTP/1.1\r\nHost: [2001:db8:2::80]\r\n\r\n")
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert wait_until(lambda: len(reads) > 20, timeout=5), "the download did not start"

    assert f"src={PRIVACY_ADDRESS} " in tracked_ipv6(lab)

    revoke_quietly(lab, lab.macs["c1"])
    revoked_at = time.monotonic()
    reader.join(timeout=10)
    assert reads[-1] - revoked_at < 2.0
    # The origin's packets would pass towards the device while its entry
    # lasts, so revocation deletes the entries of every learned address.
    assert f"src={PRIVACY_ADDRESS} " not in tracked_ipv6(lab)


def tracked_ipv6(lab: Lab) -> str:
    """Return the gateway's IPv6 conntrack table as `conntrack -L` prints it."""
    # The table is listed whole: Linux 6.18 inverts ctnetlink's IPv6 source
    # filter, which `conntrack -s` uses.
    return lab.run("gw", ["conntrack", "-L", "-f", "ipv6"], check=True).stdout


@pytest.fixture
def c2_ipv6_only(lab6: Lab) -> Iterator[Lab]:
    """Take c2's IPv4 address away for the test, and sign c2 out afterwards."""
    address = f"{lab6.addresses['c2']}/24"
    lab6.run("c2", ["ip", "address", "del", address, "dev", "eth0"], check=True)
    try:
        yield lab6
    finally:
        revoke_quietly(lab6, lab6.macs["c2"])
        lab6.run("c2", ["ip", "address", "add", address, "dev", "eth0"], check=True)
        lab6.run(
            "c2", ["ip", "route", "replace", "default", "via", GATEWAY_LAN_ADDRESS]
        )


def test_ipv6_only_client_logs_in(c2_ipv6_only: Lab) -> None:
    lab = c2_ipv6_only
    addresses = lab.run("c2", ["ip", "-4", "address", "show", "dev", "eth0"]).stdout
    assert "inet " not in addresses
    assert not reaches_origin(lab, "c2")
    log_in6(lab, "c2")
    assert reaches_origin(lab, "c2")

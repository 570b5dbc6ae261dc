"""RADIUS authentication and accounting against a real FreeRADIUS on 127.0.0.1.

The server is Debian's freeradius with a configuration these tests write
(see freeradius.py); it listens on loopback ports chosen at start. The
accounting tests drive a real Gateway on an in-memory firewall, with the
device's traffic counters set by the test.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import freeradius
import pytest
from freeradius import (
    BANDWIDTH_DOWN,
    BANDWIDTH_UP,
    CLASS_VALUE,
    IDLE_TIMEOUT,
    LIMITED_PASSWORD,
    LIMITED_USER,
    MAX_TOTAL_OCTETS,
    PLAIN_PASSWORD,
    PLAIN_USER,
    REJECTED_USER,
    SESSION_TIMEOUT,
    TEST_SECRET,
    FreeRadius,
    closed_udp_port,
)

from capport.auth.entitlement import Bandwidth, Method, Quota
from capport.auth.radius import (
    Accepted,
    NasIdentity,
    RadiusClient,
    RadiusServer,
    Rejected,
    RetryPolicy,
)
from capport.auth.radius.accounting import RadiusAccounting, Usage, session_id_for
from capport.auth.radius.method import RadiusAuthenticator
from capport.enforce.base import MemoryEnforcer
from capport.errors import RadiusTimeout
from capport.gateway import Gateway
from capport.models import Device, EndReason, Session
from capport.neighbours import MemoryNeighbours
from capport.store.sqlite import SQLiteStore

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        freeradius.find_binary() is None,
        reason="FreeRADIUS is not installed; scripts/install installs it",
    ),
]

LOOPBACK = IPv4Address("127.0.0.1")
DEVICE = Device.parse("02:00:00:00:00:11", "192.0.2.11")
NAS = NasIdentity("capport-test", IPv4Address("192.0.2.1"), "02-00-00-00-00-01")
QUICK = RetryPolicy(timeout=1.0, retries=1)
# The wait for a silent server, per send, in the failover tests.
SHORT_TIMEOUT = 0.3
INTERIM_INTERVAL = 0.3
GIGAWORD = 2**32


@pytest.fixture(scope="module")
def radius(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreeRadius]:
    server = freeradius.start(tmp_path_factory.mktemp("freeradius"))
    try:
        yield server
    finally:
        server.stop()


def server_entry(radius: FreeRadius, secret: str = TEST_SECRET) -> RadiusServer:
    return RadiusServer(LOOPBACK, radius.auth_port, radius.acct_port, secret.encode())


def silent_entry() -> RadiusServer:
    """A server entry at loopback ports nothing listens on."""
    return RadiusServer(LOOPBACK, closed_udp_port(), closed_udp_port(), b"unused")


def make_client(
    radius: FreeRadius,
    authentication: str = "pap",
    servers: tuple[RadiusServer, ...] | None = None,
    policy: RetryPolicy = QUICK,
) -> RadiusClient:
    return RadiusClient(
        servers or (server_entry(radius),),
        NAS,
        policy,
        authentication,  # type: ignore[arg-type]
    )


def authenticate(client: RadiusClient, username: str, password: str) -> object:
    return asyncio.run(client.authenticate(username, password, DEVICE))


# Authentication


def test_pap_accept_maps_limits(radius: FreeRadius) -> None:
    result = authenticate(make_client(radius), LIMITED_USER, LIMITED_PASSWORD)
    assert isinstance(result, Accepted)
    limits = result.limits
    assert limits.session_timeout == SESSION_TIMEOUT
    assert limits.idle_timeout == IDLE_TIMEOUT
    assert limits.bandwidth_max_up == BANDWIDTH_UP
    assert limits.bandwidth_max_down == BANDWIDTH_DOWN
    assert limits.max_total_octets == MAX_TOTAL_OCTETS
    assert limits.classes == (CLASS_VALUE.encode(),)


def test_accept_without_limits_leaves_them_unset(radius: FreeRadius) -> None:
    result = authenticate(make_client(radius), PLAIN_USER, PLAIN_PASSWORD)
    assert isinstance(result, Accepted)
    assert result.limits.session_timeout is None
    assert result.limits.max_total_octets is None
    assert result.limits.bandwidth_max_down is None


def test_chap_accept(radius: FreeRadius) -> None:
    result = authenticate(make_client(radius, "chap"), LIMITED_USER, LIMITED_PASSWORD)
    assert isinstance(result, Accepted)
    assert result.limits.session_timeout == SESSION_TIMEOUT


def test_chap_wrong_password_rejected(radius: FreeRadius) -> None:
    result = authenticate(make_client(radius, "chap"), LIMITED_USER, "not-it")
    assert isinstance(result, Rejected)


def test_pap_wrong_password_rejected(radius: FreeRadius) -> None:
    result = authenticate(make_client(radius), LIMITED_USER, "not-it")
    assert isinstance(result, Rejected)


def test_reject_carries_reply_message(radius: FreeRadius) -> None:
    result = authenticate(make_client(radius), REJECTED_USER, "anything")
    assert isinstance(result, Rejected)
    assert result.reply_message == "This account is closed."


def test_access_request_names_station(radius: FreeRadius) -> None:
    username = "station-check"
    authenticate(make_client(radius), username, "whatever")
    requests = [r for r in radius.access_requests() if r["User-Name"] == username]
    assert len(requests) == 1
    request = requests[0]
    assert request["NAS-Identifier"] == NAS.identifier
    assert request["NAS-IP-Address"] == str(NAS.ip_address)
    assert request["Called-Station-Id"] == NAS.called_station_id
    assert request["Calling-Station-Id"] == "02-00-00-00-00-11"
    assert request["Framed-IP-Address"] == str(DEVICE.ip)
    assert "Message-Authenticator" in request


def test_ipv6_server_accepts(tmp_path: Path) -> None:
    server = freeradius.start(tmp_path / "freeradius6", host="::1")
    try:
        entry = RadiusServer(
            IPv6Address("::1"),
            server.auth_port,
            server.acct_port,
            TEST_SECRET.encode(),
        )
        result = authenticate(
            make_client(server, servers=(entry,)), PLAIN_USER, PLAIN_PASSWORD
        )
    finally:
        server.stop()
    assert isinstance(result, Accepted)
    assert result.server == f"[::1]:{server.auth_port}"


def test_wrong_secret_times_out(radius: FreeRadius) -> None:
    policy = RetryPolicy(timeout=SHORT_TIMEOUT, retries=0)
    client = make_client(
        radius, servers=(server_entry(radius, "wrong"),), policy=policy
    )
    with pytest.raises(RadiusTimeout):
        authenticate(client, LIMITED_USER, LIMITED_PASSWORD)


# Failover


def test_primary_down_secondary_answers(radius: FreeRadius) -> None:
    policy = RetryPolicy(timeout=SHORT_TIMEOUT, retries=1)
    servers = (silent_entry(), server_entry(radius))
    client = make_client(radius, servers=servers, policy=policy)
    started = time.monotonic()
    result = authenticate(client, LIMITED_USER, LIMITED_PASSWORD)
    elapsed = time.monotonic() - started
    assert isinstance(result, Accepted)
    assert result.server == f"127.0.0.1:{radius.auth_port}"
    # The primary had its two sends, SHORT_TIMEOUT each, before the switch.
    assert elapsed >= 2 * SHORT_TIMEOUT


def test_both_down_raises_after_every_retry(radius: FreeRadius) -> None:
    policy = RetryPolicy(timeout=SHORT_TIMEOUT, retries=2)
    servers = (silent_entry(), silent_entry())
    client = make_client(radius, servers=servers, policy=policy)
    started = time.monotonic()
    with pytest.raises(RadiusTimeout) as caught:
        authenticate(client, LIMITED_USER, LIMITED_PASSWORD)
    elapsed = time.monotonic() - started
    expected = len(servers) * policy.attempts * SHORT_TIMEOUT
    assert elapsed >= expected
    assert elapsed < expected + 5.0
    message = str(caught.value)
    for server in servers:
        assert server.describe("auth") in message
    assert "3 sends each" in message


def test_failover_logs_warning(
    radius: FreeRadius, caplog: pytest.LogCaptureFixture
) -> None:
    policy = RetryPolicy(timeout=SHORT_TIMEOUT, retries=0)
    silent = silent_entry()
    client = make_client(radius, servers=(silent, server_entry(radius)), policy=policy)
    with caplog.at_level(logging.WARNING, logger="capport.radius"):
        authenticate(client, PLAIN_USER, PLAIN_PASSWORD)
    assert silent.describe("auth") in caplog.text


# Accounting through a gateway


class Harness:
    """A Gateway on an in-memory firewall with RADIUS login and accounting."""

    def __init__(self, radius: FreeRadius, tmp_path: Path) -> None:
        self.usage: dict[Device, Usage] = {}
        self.store = SQLiteStore(tmp_path / "sessions.db")
        self.gateway = Gateway(
            self.store,
            MemoryEnforcer(),
            MemoryNeighbours({DEVICE.ip: DEVICE.mac}),
            session_duration=3600,
        )
        self.client = make_client(radius)
        self.accounting = RadiusAccounting(
            self.client, lambda: dict(self.usage), INTERIM_INTERVAL
        )
        self.gateway.add_observer(self.accounting)
        self.radius = RadiusAuthenticator(self.client, self.accounting)

    async def open(self) -> None:
        await self.store.open()
        await self.gateway.start()

    async def log_in(self, username: str, password: str) -> Session | None:
        """Check the credentials with RADIUS and grant DEVICE, as the portal does."""
        entitlement = await self.radius.authenticate(
            username, password, DEVICE, self.gateway.session_duration
        )
        if entitlement is None:
            return None
        return await self.gateway.grant(DEVICE, entitlement)

    async def close(self) -> None:
        await self.accounting.close()
        await self.store.close()


def run_session(
    radius: FreeRadius,
    tmp_path: Path,
    reason: str,
    usage: Usage,
    interims: int = 0,
) -> Session:
    """Log in, let interims pass with usage counted, end the session with reason."""

    async def scenario() -> Session:
        harness = Harness(radius, tmp_path)
        await harness.open()
        runner = asyncio.create_task(harness.accounting.run())
        try:
            session = await harness.log_in(LIMITED_USER, LIMITED_PASSWORD)
            assert session is not None
            harness.usage[DEVICE] = usage
            session_id = session_id_for(session)
            if interims:
                await asyncio.to_thread(
                    radius.wait_for_accounting, session_id, 1 + interims
                )
            await harness.gateway.end(session, reason)
            return session
        finally:
            runner.cancel()
            await harness.close()

    return asyncio.run(scenario())


def records_of(radius: FreeRadius, session: Session) -> list[dict[str, str]]:
    """Wait for the Stop of session and return all its records."""
    session_id = session_id_for(session)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        records = radius.accounting_for(session_id)
        if records and records[-1]["Acct-Status-Type"] == "Stop":
            return records
        time.sleep(0.05)
    return radius.accounting_for(session_id)


def test_accounting_start_interim_stop(radius: FreeRadius, tmp_path: Path) -> None:
    usage = Usage(input_octets=5 * GIGAWORD + 1234, input_packets=77)
    session = run_session(radius, tmp_path, EndReason.REVOKED, usage, interims=1)
    records = records_of(radius, session)
    statuses = [record["Acct-Status-Type"] for record in records]
    assert statuses[0] == "Start"
    assert "Interim-Update" in statuses
    assert statuses[-1] == "Stop"
    assert statuses.count("Stop") == 1


def test_accounting_records_name_user_and_device(
    radius: FreeRadius, tmp_path: Path
) -> None:
    session = run_session(radius, tmp_path, EndReason.LOGOUT, Usage())
    for record in records_of(radius, session):
        assert record["User-Name"] == LIMITED_USER
        assert record["Calling-Station-Id"] == "02-00-00-00-00-11"
        assert record["Framed-IP-Address"] == str(DEVICE.ip)
        assert record["Class"] == "0x" + CLASS_VALUE.encode().hex()


def test_interim_carries_octets_and_gigawords(
    radius: FreeRadius, tmp_path: Path
) -> None:
    usage = Usage(input_octets=3 * GIGAWORD + 99, output_octets=4242)
    session = run_session(radius, tmp_path, EndReason.REVOKED, usage, interims=1)
    interim = next(
        record
        for record in records_of(radius, session)
        if record["Acct-Status-Type"] == "Interim-Update"
    )
    assert interim["Acct-Input-Octets"] == "99"
    assert interim["Acct-Input-Gigawords"] == "3"
    assert interim["Acct-Output-Octets"] == "4242"
    assert interim["Acct-Output-Gigawords"] == "0"


def test_stop_carries_final_octets(radius: FreeRadius, tmp_path: Path) -> None:
    usage = Usage(input_octets=GIGAWORD + 5, output_octets=7, input_packets=9)
    session = run_session(radius, tmp_path, EndReason.REVOKED, usage)
    stop = records_of(radius, session)[-1]
    assert stop["Acct-Status-Type"] == "Stop"
    assert stop["Acct-Input-Octets"] == "5"
    assert stop["Acct-Input-Gigawords"] == "1"
    assert stop["Acct-Output-Octets"] == "7"
    assert stop["Acct-Input-Packets"] == "9"
    assert int(stop["Acct-Session-Time"]) >= 0


@pytest.mark.parametrize(
    ("reason", "cause"),
    [
        (EndReason.EXPIRED, "Session-Timeout"),
        (EndReason.REVOKED, "Admin-Reset"),
        (EndReason.LOGOUT, "User-Request"),
        ("idle", "Idle-Timeout"),
    ],
)
def test_stop_terminate_cause(
    radius: FreeRadius, tmp_path: Path, reason: str, cause: str
) -> None:
    session = run_session(radius, tmp_path, reason, Usage())
    stop = records_of(radius, session)[-1]
    assert stop["Acct-Status-Type"] == "Stop"
    assert stop["Acct-Terminate-Cause"] == cause


def test_accept_maps_to_entitlement(radius: FreeRadius) -> None:
    authenticator = RadiusAuthenticator(make_client(radius))
    entitlement = asyncio.run(
        authenticator.authenticate(LIMITED_USER, LIMITED_PASSWORD, DEVICE, 3600)
    )
    assert entitlement is not None
    assert entitlement.method == Method.RADIUS
    assert entitlement.subject == LIMITED_USER
    assert entitlement.duration == SESSION_TIMEOUT
    assert entitlement.idle_timeout == IDLE_TIMEOUT
    assert entitlement.quota == Quota(total=MAX_TOTAL_OCTETS)
    assert entitlement.bandwidth == Bandwidth(BANDWIDTH_UP, BANDWIDTH_DOWN)


def test_accept_without_limits_uses_default(radius: FreeRadius) -> None:
    authenticator = RadiusAuthenticator(make_client(radius))
    entitlement = asyncio.run(
        authenticator.authenticate(PLAIN_USER, PLAIN_PASSWORD, DEVICE, 3600)
    )
    assert entitlement is not None
    assert entitlement.duration == 3600
    assert entitlement.quota is None
    assert entitlement.bandwidth is None
    assert entitlement.idle_timeout is None


def test_session_lasts_session_timeout(radius: FreeRadius, tmp_path: Path) -> None:
    session = run_session(radius, tmp_path, EndReason.LOGOUT, Usage())
    assert session.expires_at - session.started_at == SESSION_TIMEOUT


def test_reject_grants_nothing(radius: FreeRadius, tmp_path: Path) -> None:
    async def scenario() -> tuple[Session | None, list[Session]]:
        harness = Harness(radius, tmp_path)
        await harness.open()
        try:
            session = await harness.log_in(REJECTED_USER, "x")
            return session, harness.gateway.sessions()
        finally:
            await harness.close()

    session, active = asyncio.run(scenario())
    assert session is None
    assert active == []


# Secrets


def test_no_secret_or_password_logged(
    radius: FreeRadius, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        authenticate(make_client(radius), LIMITED_USER, LIMITED_PASSWORD)
        authenticate(make_client(radius, "chap"), LIMITED_USER, LIMITED_PASSWORD)
        authenticate(make_client(radius), REJECTED_USER, "reject-password")
        run_session(radius, tmp_path, EndReason.LOGOUT, Usage(), interims=1)
        client = make_client(
            radius,
            servers=(server_entry(radius, "wrong-secret-value"),),
            policy=RetryPolicy(SHORT_TIMEOUT, 0),
        )
        with pytest.raises(RadiusTimeout):
            authenticate(client, PLAIN_USER, PLAIN_PASSWORD)
    assert caplog.records
    for secret in (
        TEST_SECRET,
        "wrong-secret-value",
        LIMITED_PASSWORD,
        PLAIN_PASSWORD,
        "reject-password",
    ):
        assert secret not in caplog.text


def test_server_repr_hides_secret(radius: FreeRadius) -> None:
    assert TEST_SECRET not in repr(server_entry(radius))
    assert TEST_SECRET not in repr(make_client(radius).servers)

"""Log lines of the intercepting responder for rejected and failed connections."""

from __future__ import annotations

import asyncio
import logging
from ipaddress import ip_address

import pytest

from capport.config import ResponderSection
from capport.intercept import Responder
from capport.tokens import TokenSigner

pytestmark = pytest.mark.timeout(30)

SIGNER = TokenSigner(b"socket-test-secret-socket-test-secret", lifetime=900)


def new_responder(**settings: object) -> Responder:
    return Responder(
        ResponderSection(**settings), "http://192.0.2.1/", SIGNER, lambda ip: False
    )


async def open_from(source: str, port: int) -> asyncio.StreamWriter:
    """Connect to the responder on 127.0.0.1 from the loopback address source."""
    _, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    return writer


def connect_in_turn(sources: list[str]) -> None:
    """Open one connection from each source in turn to a one-per-client responder."""

    async def main() -> None:
        responder = new_responder(max_connections_per_client=1)
        await responder.start("127.0.0.1", 0)
        port = responder.addresses[0][1]
        writers = []
        try:
            for source in sources:
                writers.append(await open_from(source, port))
                # Accepting runs on the loop; give it a turn per connection.
                await asyncio.sleep(0.05)
        finally:
            for writer in writers:
                writer.close()
            await responder.stop()

    asyncio.run(main())


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "capport.intercept" and record.levelno >= logging.WARNING
    ]


def test_rejection_of_each_client_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "capport.intercept")
    connect_in_turn(["127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.2"])
    reason = "because it is at max_connections_per_client."
    assert warnings(caplog) == [
        f"Rejected a connection from 127.0.0.1 {reason}",
        f"Rejected a connection from 127.0.0.2 {reason}",
    ]


def test_identical_rejection_counted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "capport.intercept")
    connect_in_turn(["127.0.0.1", "127.0.0.1", "127.0.0.1"])
    assert len(warnings(caplog)) == 1


def test_errors_of_each_client_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "capport.intercept")
    responder = new_responder()
    error = ValueError("broken")
    responder.report_error(error, ip_address("192.0.2.11"))
    responder.report_error(error, ip_address("192.0.2.11"))
    responder.report_error(error, ip_address("192.0.2.12"))
    lines = warnings(caplog)
    assert len(lines) == 2
    assert "from 192.0.2.11 failed with ValueError('broken')" in lines[0]
    assert "from 192.0.2.12 failed with ValueError('broken')" in lines[1]

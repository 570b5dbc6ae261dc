"""The responder's portal link for IPv6 clients, on ::1 and 127.0.0.1."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterator

import pytest

from capport.config import ResponderSection
from capport.intercept import Responder
from capport.tokens import TokenSigner

pytestmark = pytest.mark.timeout(60)

PORTAL = "http://192.0.2.1/"
PORTAL6 = "http://[2001:db8:1::1]/"
SIGNER = TokenSigner(b"socket-test-secret-socket-test-secret", lifetime=900)
REQUEST = b"GET /x HTTP/1.1\r\nHost: [2001:db8:2::80]\r\nConnection: close\r\n\r\n"


def fetch(host: str, port: int) -> str:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect((host, port))
        sock.sendall(REQUEST)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def link(response: str) -> str:
    match = re.search(r'<a href="([^"]+)"', response)
    assert match, response
    return match.group(1)


@pytest.fixture
def responses() -> Iterator[dict[str, str]]:
    """Start a responder on both loopback addresses and fetch the same URL twice.

    Each address is asked twice, so the second answer comes from the cache.
    """
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")

    async def scenario() -> dict[str, str]:
        responder = Responder(
            ResponderSection(), PORTAL, SIGNER, lambda ip: False, portal_url6=PORTAL6
        )
        await responder.start(["127.0.0.1", "::1"], 0)
        try:
            found = {}
            for host, port in responder.addresses:
                for attempt in range(2):
                    text = await asyncio.to_thread(fetch, host, port)
                    found[f"{host} {attempt}"] = text
            return found
        finally:
            await responder.stop()

    yield asyncio.run(scenario())


def test_ipv6_client_gets_ipv6_portal_link(responses: dict[str, str]) -> None:
    assert link(responses["::1 0"]).startswith(f"{PORTAL6}?t=")
    assert link(responses["::1 1"]).startswith(f"{PORTAL6}?t=")


def test_ipv4_client_keeps_ipv4_portal_link(responses: dict[str, str]) -> None:
    assert link(responses["127.0.0.1 0"]).startswith(f"{PORTAL}?t=")
    assert link(responses["127.0.0.1 1"]).startswith(f"{PORTAL}?t=")


def test_bracketed_host_kept_in_captured_url(responses: dict[str, str]) -> None:
    assert "<code>http://[2001:db8:2::80]/x</code>" in responses["::1 0"]

"""The responder behind a real nftables redirect, in a throwaway namespace.

An HTTP/1.0 request without Host names no site, so the responder reads the
address the connection was sent to before nftables redirected it from
conntrack, with getsockopt(SO_ORIGINAL_DST). The test builds a network
namespace with a `redirect` rule for locally generated port-80 traffic,
runs the responder and a client in it, and checks the captured URL inside
the portal link.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("nft") is None,
        reason="needs root and nft to build a network namespace",
    ),
]

RESPONDER_PORT = 8511

RULESET = f"""
table inet capport_test {{
    chain output {{
        type nat hook output priority -100; policy accept;
        tcp dport 80 redirect to :{RESPONDER_PORT}
    }}
}}
"""

# Runs inside the namespace: start the responder, send one request without
# Host to target port 80, and print the URL signed into the portal link.
CLIENT_SCRIPT = f"""
import asyncio, html, re, socket, sys
from urllib.parse import parse_qs, urlsplit
import uvloop
from capport.config import ResponderSection
from capport.intercept import Responder
from capport.tokens import TokenSigner

async def main(listen, target):
    signer = TokenSigner(b"redirect-test-secret-redirect-test", 900)
    responder = Responder(
        ResponderSection(), "http://192.0.2.1/", signer, lambda ip: False
    )
    await responder.start(listen, {RESPONDER_PORT})

    def fetch():
        with socket.create_connection((target, 80), timeout=5) as sock:
            sock.sendall(b"GET /page?x=1 HTTP/1.0\\r\\n\\r\\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        return data.decode()

    page = await asyncio.get_running_loop().run_in_executor(None, fetch)
    await responder.stop()
    link = html.unescape(re.search(r'<a href="([^"]*)">', page).group(1))
    print(signer.verify(parse_qs(urlsplit(link).query)["t"][0]))

uvloop.run(main(sys.argv[1], sys.argv[2]))
"""

_counter = itertools.count(1)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def namespace() -> Iterator[str]:
    """Create a namespace with lo up, test addresses and the redirect rule."""
    name = f"cpt-{os.getpid()}-{next(_counter)}-intercept"
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "addr", "add", "192.0.2.10/32", "dev", "lo")
        ip("-n", name, "-6", "addr", "add", "2001:db8::10/128", "dev", "lo", "nodad")
        subprocess.run(
            ["ip", "netns", "exec", name, "nft", "-f", "-"],
            input=RULESET,
            text=True,
            check=True,
            capture_output=True,
            timeout=10,
        )
        yield name
    finally:
        ip("netns", "del", name)


def captured_url(namespace: str, listen: str, target: str) -> str:
    result = subprocess.run(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", CLIENT_SCRIPT]
        + [listen, target],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_ipv4_redirect_captures_original_address(namespace: str) -> None:
    # For locally generated traffic, redirect sends IPv4 to 127.0.0.1.
    url = captured_url(namespace, "127.0.0.1", "192.0.2.10")
    assert url == "http://192.0.2.10/page?x=1"


def test_ipv6_redirect_captures_bracketed_address(namespace: str) -> None:
    url = captured_url(namespace, "::1", "2001:db8::10")
    assert url == "http://[2001:db8::10]/page?x=1"

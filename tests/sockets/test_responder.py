"""The intercepting responder over real TCP connections on 127.0.0.1.

The responder runs on its own event loop in a background thread, once with
asyncio's loop and once with uvloop, and the tests talk to it with blocking
sockets, as a device would.
"""

from __future__ import annotations

import asyncio
import html
import re
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv6Address
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import uvloop

from capport.config import ResponderSection
from capport.intercept import Responder
from capport.models import Epoch, IPAddress
from capport.tokens import TokenSigner

pytestmark = pytest.mark.timeout(60)

PORTAL = "http://192.0.2.1/"
SIGNER = TokenSigner(b"socket-test-secret-socket-test-secret", lifetime=900)
LOOPBACK = "127.0.0.1"


class RunningResponder:
    """A Responder serving on a background thread's event loop."""

    def __init__(
        self,
        settings: ResponderSection,
        new_loop: Callable[[], asyncio.AbstractEventLoop],
        host: str = LOOPBACK,
    ) -> None:
        self.authorised: set[IPAddress] = set()
        self.authorisation_checks = 0
        self.epoch = Epoch()
        self.clients: list[Client] = []
        self.responder = Responder(
            settings,
            PORTAL,
            SIGNER,
            self._is_authorised,
            has_session=lambda ip: ip in self.authorised,
            address_epoch=self.epoch,
        )
        self._loop = new_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._call(self.responder.start(host, 0))
        self.host = host
        self.port = self.responder.addresses[0][1]

    def authorise(self, ip: IPAddress) -> None:
        """Give ip a session, as the gateway does: the epoch moves on."""
        self.authorised.add(ip)
        self.epoch.advance()

    def _is_authorised(self, ip: IPAddress) -> bool:
        self.authorisation_checks += 1
        return ip in self.authorised

    def close_clients(self) -> None:
        for client in self.clients:
            client.close()

    def stop(self) -> None:
        if self._loop.is_closed():
            return
        self._call(self.responder.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    def connect(self, timeout: float = 5.0) -> Client:
        client = Client(self.host, self.port, timeout)
        self.clients.append(client)
        return client

    def wait_for_open_connections(self, count: int, timeout: float = 5.0) -> None:
        """Wait until the responder has noticed closed connections."""
        deadline = time.monotonic() + timeout
        while self.responder.stats.open_connections != count:
            assert time.monotonic() < deadline, (
                f"{self.responder.stats.open_connections} connections open, "
                f"expected {count}"
            )
            time.sleep(0.01)


class Response:
    """One HTTP response read from a socket."""

    def __init__(self, head: bytes, body: bytes) -> None:
        lines = head.decode("ascii").split("\r\n")
        self.status = int(lines[0].split(" ")[1])
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.lower()] = value.strip()
        self.body = body
        self.text = body.decode("utf-8")

    def portal_token_url(self) -> str:
        """Return the captured URL inside the page's portal link."""
        match = re.search(r'<a href="([^"]*)">', self.text)
        assert match is not None, "no link in the page"
        link = html.unescape(match.group(1))
        assert link.startswith(PORTAL)
        return SIGNER.verify(parse_qs(urlsplit(link).query)["t"][0])


class Client:
    """A blocking HTTP/1.1 client that reads responses one at a time."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self._buffer = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_response(self, head_request: bool = False) -> Response:
        while b"\r\n\r\n" not in self._buffer:
            self._receive()
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        response = Response(head, b"")
        if head_request or response.status == 100:
            return response
        length = int(response.headers["content-length"])
        while len(self._buffer) < length:
            self._receive()
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return Response(head, body)

    def is_closed_by_server(self) -> bool:
        """Tell whether the server closed the connection with nothing more sent."""
        try:
            data = self.sock.recv(1)
        except TimeoutError:
            return False
        return data == b"" and self._buffer == b""

    def _receive(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        self._buffer += data


def get(
    target: str = "/",
    host: str | None = "example.com",
    method: str = "GET",
    version: str = "1.1",
    extra: bytes = b"",
) -> bytes:
    request = f"{method} {target} HTTP/{version}\r\n".encode()
    if host is not None:
        request += f"Host: {host}\r\n".encode()
    return request + extra + b"\r\n"


LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture(params=sorted(LOOPS))
def start_responder(
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., RunningResponder]]:
    """Start responders with the given ResponderSection settings."""
    running: list[RunningResponder] = []

    def start(host: str = LOOPBACK, **settings: Any) -> RunningResponder:
        server = RunningResponder(
            ResponderSection(**settings), LOOPS[request.param], host
        )
        running.append(server)
        return server

    yield start
    for server in running:
        server.close_clients()
        server.stop()


@pytest.fixture
def responder(start_responder: Callable[..., RunningResponder]) -> RunningResponder:
    return start_responder()


# Ordinary requests


def test_request_gets_511(responder: RunningResponder) -> None:
    client = responder.connect()
    client.send(get("/news"))
    response = client.read_response()
    assert response.status == 511
    assert response.headers["cache-control"] == "no-store"
    assert response.portal_token_url() == "http://example.com/news"


def test_keep_alive_serves_two_requests(responder: RunningResponder) -> None:
    client = responder.connect()
    client.send(get("/first"))
    first = client.read_response()
    client.send(get("/second"))
    second = client.read_response()
    assert first.portal_token_url() == "http://example.com/first"
    assert second.portal_token_url() == "http://example.com/second"
    # HTTP/1.1 connections persist by default, so no header says so.
    assert "connection" not in second.headers


def test_http10_keep_alive_is_confirmed(responder: RunningResponder) -> None:
    client = responder.connect()
    client.send(get("/first", version="1.0", extra=b"Connection: keep-alive\r\n"))
    first = client.read_response()
    client.send(get("/second", version="1.0", extra=b"Connection: keep-alive\r\n"))
    second = client.read_response()
    assert first.headers["connection"] == "keep-alive"
    assert second.portal_token_url() == "http://example.com/second"


def test_pipelined_requests_get_ordered_responses(responder: RunningResponder) -> None:
    client = responder.connect()
    client.send(get("/1") + get("/2", method="HEAD") + get("/3"))
    first = client.read_response()
    second = client.read_response(head_request=True)
    third = client.read_response()
    assert first.portal_token_url() == "http://example.com/1"
    assert second.status == 511
    assert third.portal_token_url() == "http://example.com/3"


def test_http10_closes_after_response(responder: RunningResponder) -> None:
    client = responder.connect()
    client.send(get("/old", version="1.0"))
    response = client.read_response()
    assert response.status == 511
    assert response.headers["connection"] == "close"
    assert client.is_closed_by_server()


def test_http10_without_host_uses_local_address(
    responder: RunningResponder,
) -> None:
    # Without an nftables redirect there is no original destination, so the
    # responder falls back to the address the client connected to.
    client = responder.connect()
    client.send(get("/old", host=None, version="1.0"))
    response = client.read_response()
    expected = f"http://{LOOPBACK}:{responder.port}/old"
    assert response.portal_token_url() == expected


def test_post_body_is_discarded(responder: RunningResponder) -> None:
    client = responder.connect()
    client.send(get("/form", method="POST", extra=b"Content-Length: 5\r\n") + b"a=b&c")
    client.send(get("/after"))
    assert client.read_response().status == 511
    assert client.read_response().portal_token_url() == "http://example.com/after"


def test_chunked_body_is_discarded(responder: RunningResponder) -> None:
    client = responder.connect()
    chunked = b"Transfer-Encoding: chunked\r\n"
    client.send(get("/up", method="POST", extra=chunked) + b"3\r\nabc\r\n0\r\n\r\n")
    client.send(get("/after"))
    assert client.read_response().status == 511
    assert client.read_response().portal_token_url() == "http://example.com/after"


def test_expect_continue_gets_100_then_511(responder: RunningResponder) -> None:
    client = responder.connect()
    extra = b"Content-Length: 3\r\nExpect: 100-continue\r\n"
    client.send(get("/up", method="PUT", extra=extra))
    assert client.read_response().status == 100
    client.send(b"abc")
    assert client.read_response().status == 511


def test_upgrade_request_gets_511_and_close(responder: RunningResponder) -> None:
    client = responder.connect()
    extra = b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
    client.send(get("/socket", extra=extra))
    response = client.read_response()
    assert response.status == 511
    assert response.headers["connection"] == "close"
    assert client.is_closed_by_server()


def test_authorised_client_gets_307_and_close(responder: RunningResponder) -> None:
    client = responder.connect()
    client.send(get("/page?x=1"))
    assert client.read_response().status == 511
    responder.authorise(IPv4Address(LOOPBACK))
    client.send(get("/page?x=1"))
    response = client.read_response()
    assert response.status == 307
    assert response.headers["location"] == "http://example.com/page?x=1"
    assert client.is_closed_by_server()


def test_client_without_session_is_checked_once_per_epoch(
    responder: RunningResponder,
) -> None:
    client = responder.connect()
    for _ in range(4):
        client.send(get("/same"))
        assert client.read_response().status == 511
    checks = responder.authorisation_checks
    # The last three requests hit the response cache; the first check
    # found no session, so none of them asked again.
    client.send(get("/same"))
    assert client.read_response().status == 511
    assert responder.authorisation_checks == checks

    responder.epoch.advance()
    client.send(get("/same"))
    assert client.read_response().status == 511
    assert responder.authorisation_checks == checks + 1


def test_identical_requests_each_get_511(responder: RunningResponder) -> None:
    first = responder.connect()
    second = responder.connect()
    for client in (first, second, first, second):
        client.send(get("/same"))
        response = client.read_response()
        assert response.status == 511
        assert response.portal_token_url() == "http://example.com/same"
    assert responder.responder.stats.captive_responses == 4


def test_same_target_on_other_host_gets_own_link(
    responder: RunningResponder,
) -> None:
    client = responder.connect()
    client.send(get("/x", host="a.example"))
    first = client.read_response()
    client.send(get("/x", host="b.example"))
    second = client.read_response()
    assert first.portal_token_url() == "http://a.example/x"
    assert second.portal_token_url() == "http://b.example/x"


def test_read_ending_in_partial_request_is_parsed_again(
    responder: RunningResponder,
) -> None:
    # A read with one whole request and the start of the next must not be
    # remembered as "one request": the parser has to see the partial one.
    for _ in range(2):
        client = responder.connect()
        client.send(get("/a") + b"GET /b HT")
        time.sleep(0.05)
        client.send(b"TP/1.1\r\nHost: example.com\r\n\r\n")
        assert client.read_response().portal_token_url() == "http://example.com/a"
        assert client.read_response().portal_token_url() == "http://example.com/b"


# Size limits


def test_large_head_within_limits_gets_511(responder: RunningResponder) -> None:
    client = responder.connect()
    headers = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"v" * 1000) for i in range(8))
    target = "/" + "t" * 2047
    client.send(get(target, extra=headers))
    response = client.read_response()
    assert response.status == 511
    assert response.portal_token_url() == "http://example.com" + target


def test_64kb_header_gets_431_and_close(responder: RunningResponder) -> None:
    client = responder.connect()
    client.send(get("/", extra=b"X-Big: " + b"b" * 65536 + b"\r\n"))
    assert client.read_response().status == 431
    assert client.is_closed_by_server()


def test_unfinished_64kb_header_gets_431(responder: RunningResponder) -> None:
    # The header line never ends, so only the byte count can catch it.
    client = responder.connect()
    client.send(b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * 65536)
    assert client.read_response().status == 431
    assert client.is_closed_by_server()


def test_20kb_target_gets_414_and_close(responder: RunningResponder) -> None:
    client = responder.connect()
    client.send(get("/" + "t" * 20480))
    assert client.read_response().status == 414
    assert client.is_closed_by_server()


def test_declared_body_over_limit_gets_413(
    start_responder: Callable[..., RunningResponder],
) -> None:
    server = start_responder(max_body_bytes=1000)
    client = server.connect()
    client.send(get("/", method="POST", extra=b"Content-Length: 1001\r\n"))
    assert client.read_response().status == 413
    assert client.is_closed_by_server()


def test_chunked_body_over_limit_gets_413(
    start_responder: Callable[..., RunningResponder],
) -> None:
    server = start_responder(max_body_bytes=1000)
    client = server.connect()
    chunked = b"Transfer-Encoding: chunked\r\n"
    client.send(get("/", method="POST", extra=chunked) + b"7d0\r\n" + b"x" * 2000)
    assert client.read_response().status == 413
    assert client.is_closed_by_server()


# Malformed input


def test_garbage_gets_400_and_close(responder: RunningResponder) -> None:
    client = responder.connect()
    client.send(b"\x00\xff\x13garbage that is not HTTP\r\n\r\n")
    assert client.read_response().status == 400
    assert client.is_closed_by_server()


def test_tls_client_hello_gets_400_and_close(responder: RunningResponder) -> None:
    # The start of a TLS 1.2 ClientHello record, as a browser sends it to
    # port 443 (here redirected to the HTTP responder by mistake).
    hello = bytes.fromhex("16030100c4010000c00303") + bytes(range(32)) + b"\x00"
    client = responder.connect()
    client.send(hello)
    assert client.read_response().status == 400
    assert client.is_closed_by_server()


def test_http11_without_host_gets_400(responder: RunningResponder) -> None:
    client = responder.connect()
    client.send(get("/", host=None))
    assert client.read_response().status == 400
    assert client.is_closed_by_server()


def test_duplicate_host_gets_400(responder: RunningResponder) -> None:
    client = responder.connect()
    client.send(get("/", extra=b"Host: other.example\r\n"))
    assert client.read_response().status == 400
    assert client.is_closed_by_server()


def test_markup_in_host_is_escaped_on_the_wire(responder: RunningResponder) -> None:
    client = responder.connect()
    client.send(get("/", host='"><script>alert(1)</script>'))
    response = client.read_response()
    assert response.status == 511
    assert "<script" not in response.text
    assert "&quot;&gt;&lt;script&gt;" in response.text


# Time limits


def test_slow_head_gets_408_after_header_timeout(
    start_responder: Callable[..., RunningResponder],
) -> None:
    server = start_responder(header_timeout=0.5)
    client = server.connect()
    started = time.monotonic()
    client.send(b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Slow: ")
    assert client.read_response().status == 408
    assert client.is_closed_by_server()
    assert 0.3 < time.monotonic() - started < 3.0


def test_silent_connection_closed_after_header_timeout(
    start_responder: Callable[..., RunningResponder],
) -> None:
    server = start_responder(header_timeout=0.5)
    client = server.connect()
    started = time.monotonic()
    assert client.is_closed_by_server()
    assert 0.3 < time.monotonic() - started < 3.0
    assert server.responder.stats.timeouts == 1


def test_idle_keep_alive_end_is_not_a_timeout(
    start_responder: Callable[..., RunningResponder],
) -> None:
    server = start_responder(keepalive_timeout=0.5)
    client = server.connect()
    client.send(get("/"))
    assert client.read_response().status == 511
    assert client.is_closed_by_server()
    assert server.responder.stats.timeouts == 0


def test_trickled_head_gets_408_after_header_timeout(
    start_responder: Callable[..., RunningResponder],
) -> None:
    # A slowloris client sends a header line now and then, so the deadline
    # must run from the first byte, not from the last.
    server = start_responder(header_timeout=0.5)
    client = server.connect()
    client.send(b"GET / HTTP/1.1\r\n")
    started = time.monotonic()
    while not select.select([client.sock], [], [], 0.1)[0]:
        assert time.monotonic() - started < 3.0, "still open after 3 s"
        client.send(b"X-A: b\r\n")
    assert client.read_response().status == 408
    assert client.is_closed_by_server()
    assert time.monotonic() - started > 0.3


def test_idle_keep_alive_closed_after_timeout(
    start_responder: Callable[..., RunningResponder],
) -> None:
    server = start_responder(keepalive_timeout=0.5)
    client = server.connect()
    client.send(get())
    assert client.read_response().status == 511
    started = time.monotonic()
    assert client.is_closed_by_server()
    assert 0.3 < time.monotonic() - started < 3.0


# Connection limits


def test_per_client_limit_rejects_extra_connection(
    start_responder: Callable[..., RunningResponder],
) -> None:
    server = start_responder(max_connections_per_client=3)
    clients = [server.connect() for _ in range(3)]
    for client in clients:
        client.send(get())
        assert client.read_response().status == 511
    extra = server.connect()
    assert extra.read_response().status == 503
    assert extra.is_closed_by_server()
    assert server.responder.stats.connections_rejected == 1


def test_per_client_slot_is_freed_on_close(
    start_responder: Callable[..., RunningResponder],
) -> None:
    server = start_responder(max_connections_per_client=1)
    first = server.connect()
    first.send(get())
    assert first.read_response().status == 511
    first.close()
    server.wait_for_open_connections(0)
    second = server.connect()
    second.send(get())
    assert second.read_response().status == 511


def test_total_limit_rejects_extra_connection(
    start_responder: Callable[..., RunningResponder],
) -> None:
    server = start_responder(max_connections=2)
    clients = [server.connect() for _ in range(2)]
    for client in clients:
        client.send(get())
        assert client.read_response().status == 511
    extra = server.connect()
    assert extra.read_response().status == 503
    assert extra.is_closed_by_server()


def test_300_connections_at_once_each_get_511(
    start_responder: Callable[..., RunningResponder],
) -> None:
    server = start_responder(max_connections=400, max_connections_per_client=400)
    clients = [server.connect(timeout=20) for _ in range(300)]
    for index, client in enumerate(clients):
        client.send(get(f"/{index}"))
    for index, client in enumerate(clients):
        response = client.read_response()
        assert response.status == 511
        assert response.portal_token_url() == f"http://example.com/{index}"
    assert server.responder.stats.connections_rejected == 0


# Robustness


def kernel_buffer_max_bytes() -> int:
    """Return the most a TCP connection can buffer in one direction."""
    total = 0
    for name in ("tcp_rmem", "tcp_wmem"):
        with open(f"/proc/sys/net/ipv4/{name}") as file:
            total += int(file.read().split()[2])
    return total


def test_client_that_does_not_read_stops_being_read(
    responder: RunningResponder,
) -> None:
    # Pipelined requests whose responses are never read fill the socket
    # buffers; the responder must then stop reading instead of queueing
    # responses in memory. Once it stops, the client can send no more than
    # the kernel buffers between them hold, so sending stalls.
    client = responder.connect(timeout=1.0)
    burst = get("/") * 1000
    limit = kernel_buffer_max_bytes() + 16 * 1024 * 1024
    sent = 0
    with pytest.raises(TimeoutError):
        while sent < limit:
            client.send(burst)
            sent += len(burst)
    other = responder.connect()
    other.send(get())
    assert other.read_response().status == 511


def test_responder_serves_after_abuse(responder: RunningResponder) -> None:
    abuse = [
        b"\x16\x03\x01\x00\xc4\x01\x00\x00\xc0",
        get("/", extra=b"X-Big: " + b"b" * 65536 + b"\r\n"),
        get("/" + "t" * 20480),
        get("/", host=None),
        b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
        b"\r\n" * 100,
    ]
    for data in abuse:
        client = responder.connect()
        client.send(data)
        client.close()
    client = responder.connect()
    client.send(get("/fine"))
    response = client.read_response()
    assert response.status == 511
    assert response.portal_token_url() == "http://example.com/fine"


def test_stop_closes_open_connections(
    start_responder: Callable[..., RunningResponder],
) -> None:
    server = start_responder()
    client = server.connect()
    client.send(get())
    assert client.read_response().status == 511
    server.stop()
    try:
        data = client.sock.recv(1)
    except ConnectionResetError:
        data = b""
    assert data == b""


def ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback")
def test_ipv6_client_gets_511_with_bracketed_host(
    start_responder: Callable[..., RunningResponder],
) -> None:
    server = start_responder(host="::1")
    client = server.connect()
    client.send(get("/x", host=None, version="1.0"))
    response = client.read_response()
    assert response.status == 511
    assert response.portal_token_url() == f"http://[::1]:{server.port}/x"


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback")
def test_ipv6_client_is_checked_for_authorisation(
    start_responder: Callable[..., RunningResponder],
) -> None:
    server = start_responder(host="::1")
    server.authorise(IPv6Address("::1"))
    client = server.connect()
    client.send(get("/x", host="[2001:db8::1]"))
    response = client.read_response()
    assert response.status == 307
    assert response.headers["location"] == "http://[2001:db8::1]/x"

"""The laboratory's origin server over real loopback sockets."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

from capport.lab.origin import (
    CHUNK_BYTES,
    MARKER,
    TCP_GREETING,
    GreetingHandler,
    GreetingServer,
    OriginHandler,
)


@pytest.fixture
def origin() -> Iterator[tuple[str, int]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), OriginHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def get(origin: tuple[str, int], target: str, method: str = "GET") -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(*origin, timeout=5)
    try:
        connection.request(method, target)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_root_page_contains_marker(origin: tuple[str, int]) -> None:
    status, body = get(origin, "/")
    assert status == 200
    assert MARKER.encode() in body


def test_path_echoed(origin: tuple[str, int]) -> None:
    status, body = get(origin, "/x/a/b?q=1")
    assert status == 200
    assert body == b"/x/a/b\n"


def test_bytes_streams_exact_count(origin: tuple[str, int]) -> None:
    size = CHUNK_BYTES * 2 + 5
    status, body = get(origin, f"/bytes/{size}?delay=0")
    assert status == 200
    assert len(body) == size


def test_head_sends_no_body(origin: tuple[str, int]) -> None:
    status, body = get(origin, "/bytes/1000", method="HEAD")
    assert status == 200
    assert body == b""


@pytest.mark.parametrize("target", ["/bytes/-1", "/bytes/abc", "/bytes/10?delay=5000"])
def test_bytes_rejects_bad_values(origin: tuple[str, int], target: str) -> None:
    status, _ = get(origin, target)
    assert status == 400


def test_unknown_path_not_found(origin: tuple[str, int]) -> None:
    status, _ = get(origin, "/nothing")
    assert status == 404


def test_cut_stream_leaves_server_serving(origin: tuple[str, int]) -> None:
    with socket.create_connection(origin, timeout=5) as connection:
        connection.sendall(b"GET /bytes/100000000 HTTP/1.1\r\nHost: o\r\n\r\n")
        assert connection.recv(100).startswith(b"HTTP/1.1 200")
    status, _ = get(origin, "/")
    assert status == 200


def test_greeting_port_sends_line() -> None:
    server = GreetingServer(("127.0.0.1", 0), GreetingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with socket.create_connection(server.server_address, timeout=5) as client:
            assert client.recv(100) == TCP_GREETING
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

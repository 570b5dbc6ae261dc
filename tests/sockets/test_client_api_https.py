"""The RFC 8908 client against a loopback HTTPS server with its own CA file."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_client_portals import PortalServer, running_portal_server

from capport.client import (
    CaptiveApiError,
    CaptivePortalApi,
    DetectionKind,
    Expectation,
    Probe,
    State,
    check_connectivity,
    fetch_api_state,
)
from capport.client.api import CAPTIVE_JSON

STATE = {
    "captive": True,
    "user-portal-url": "https://127.0.0.1/portal",
    "venue-info-url": "https://127.0.0.1/venue",
    "can-extend-session": False,
    "seconds-remaining": 600,
    "bytes-remaining": 1000000,
    "unknown-future-key": [1],
}


@pytest.fixture
def portal_server() -> Iterator[PortalServer]:
    with running_portal_server() as server:
        yield server


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made with openssl."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class ApiServer:
    """An HTTPS server that sends `response` for every GET and records requests."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.response: tuple[int, str, bytes] = (
            200,
            CAPTIVE_JSON,
            json.dumps(STATE).encode(),
        )
        self.accept_headers: list[str | None] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def uri(self) -> str:
        return f"https://127.0.0.1:{self.port}/capport/api"

    def send(self, document: Any, content_type: str = CAPTIVE_JSON) -> None:
        self.response = (200, content_type, json.dumps(document).encode())


def _handler_for(server: ApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.accept_headers.append(self.headers.get("Accept"))
            status, content_type, body = server.response
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "private")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def api_server(certificate: tuple[Path, Path]) -> Iterator[ApiServer]:
    server = ApiServer(*certificate)
    server._thread.start()
    try:
        yield server
    finally:
        server._server.shutdown()
        server._server.server_close()


def test_state_fetched_with_ca_file(
    api_server: ApiServer, certificate: tuple[Path, Path]
) -> None:
    state = fetch_api_state(api_server.uri, ca_file=certificate[0])
    assert state.captive is True
    assert state.user_portal_url == "https://127.0.0.1/portal"
    assert state.venue_info_url == "https://127.0.0.1/venue"
    assert state.can_extend_session is False
    assert state.seconds_remaining == 600
    assert state.bytes_remaining == 1000000


def test_request_accepts_captive_json(
    api_server: ApiServer, certificate: tuple[Path, Path]
) -> None:
    fetch_api_state(api_server.uri, ca_file=certificate[0])
    assert api_server.accept_headers == [CAPTIVE_JSON]


def test_untrusted_certificate_rejected(api_server: ApiServer) -> None:
    with pytest.raises(CaptiveApiError, match="CERTIFICATE_VERIFY_FAILED"):
        fetch_api_state(api_server.uri)


def test_missing_ca_file_rejected(api_server: ApiServer, tmp_path: Path) -> None:
    with pytest.raises(CaptiveApiError, match="cannot load the CA file"):
        fetch_api_state(api_server.uri, ca_file=tmp_path / "missing.pem")


def test_oversized_answer_rejected(
    api_server: ApiServer, certificate: tuple[Path, Path]
) -> None:
    api_server.send({"captive": False, "padding": "x" * 5000})
    with pytest.raises(CaptiveApiError, match="more than 4096 bytes"):
        fetch_api_state(api_server.uri, ca_file=certificate[0])


def test_error_status_rejected(
    api_server: ApiServer, certificate: tuple[Path, Path]
) -> None:
    api_server.response = (503, "text/plain", b"down")
    with pytest.raises(CaptiveApiError, match="responded with 503"):
        fetch_api_state(api_server.uri, ca_file=certificate[0])


def test_bad_answer_keeps_last_state(
    api_server: ApiServer, certificate: tuple[Path, Path]
) -> None:
    api = CaptivePortalApi(api_server.uri, ca_file=certificate[0])
    api_server.send({"captive": False, "seconds-remaining": 120})
    api.refresh()
    api_server.send({"captive": "maybe"})
    state = api.refresh()
    assert state is not None
    assert api.captive is False
    assert api.seconds_remaining == 120
    assert api.last_error is not None


def test_properties_none_before_first_state(
    api_server: ApiServer, certificate: tuple[Path, Path]
) -> None:
    api_server.send({"captive": "maybe"})
    api = CaptivePortalApi(api_server.uri, ca_file=certificate[0])
    assert api.refresh() is None
    assert api.captive is None
    assert api.user_portal_url is None


def test_check_reports_captive_api(
    api_server: ApiServer,
    certificate: tuple[Path, Path],
    portal_server: PortalServer,
) -> None:
    probe = Probe(portal_server.url("/probe"), Expectation(200, b"probe-ok"), 2)
    result = check_connectivity(probe, api_uri=api_server.uri, ca_file=certificate[0])
    assert result.state is State.CAPTIVE
    assert result.portal is not None
    assert result.portal.kind is DetectionKind.API
    assert result.portal_url == "https://127.0.0.1/portal"
    assert portal_server.count("/probe") == 0


def test_check_open_api_still_probes(
    api_server: ApiServer,
    certificate: tuple[Path, Path],
    portal_server: PortalServer,
) -> None:
    api_server.send({"captive": False})
    portal_server.is_open = True
    probe = Probe(portal_server.url("/probe"), Expectation(200, b"probe-ok"), 2)
    result = check_connectivity(probe, api_uri=api_server.uri, ca_file=certificate[0])
    assert result.state is State.ONLINE
    assert result.api is not None
    assert result.api.captive is False

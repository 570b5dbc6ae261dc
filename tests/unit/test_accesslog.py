"""The portal's access log middleware, over Starlette's test client."""

from __future__ import annotations

import logging

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from capport.portal.accesslog import AccessLogMiddleware


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello", status_code=202)


async def broken(request: Request) -> PlainTextResponse:
    raise RuntimeError("broken view")


def client() -> TestClient:
    app = Starlette(routes=[Route("/hello", hello), Route("/broken", broken)])
    return TestClient(AccessLogMiddleware(app), raise_server_exceptions=False)


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "capport.access"]


@pytest.fixture(autouse=True)
def _propagate_access() -> None:
    # configure_logging in other tests may have stopped propagation to the
    # root logger, where caplog listens.
    logging.getLogger("capport.access").propagate = True


def test_access_one_record_per_request(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "capport.access")
    client().get("/hello")
    client().get("/hello")
    assert len(access_records(caplog)) == 2


def test_access_record_fields(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "capport.access")
    client().get("/hello?t=signed-token")
    record = access_records(caplog)[0]
    assert record.client == "testclient"
    assert record.method == "GET"
    assert record.path == "/hello"
    assert record.status == 202
    assert record.duration_ms >= 0


def test_access_leaves_out_query(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "capport.access")
    client().get("/hello?t=signed-token")
    assert "signed-token" not in caplog.text


def test_access_logs_failed_request(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "capport.access")
    response = client().get("/broken")
    assert response.status_code == 500
    assert access_records(caplog)[-1].status == 500


def test_access_disabled_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "capport.access")
    client().get("/hello")
    assert access_records(caplog) == []

"""The dashboard's pages, static files and accounting CSV on a FastAPI app."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI, HTTPException, Request
from starlette.testclient import TestClient

from capport.acct.records import AccountingRecord
from capport.dashboard import CONTENT_SECURITY_POLICY, mount_dashboard
from capport.dashboard.routes import STATIC
from capport.store.sqlite import SQLiteStore

TOKEN = "test-token"
PAGES = ("/", "/vouchers/sheet")
SCRIPTS = (
    "api.js",
    "charts.js",
    "dashboard.js",
    "format.js",
    "sessions.js",
    "vouchers.js",
)


async def require_token(request: Request) -> str:
    """A stand-in for the admin API's bearer-token check."""
    if request.headers.get("authorization") != f"Bearer {TOKEN}":
        raise HTTPException(401, "missing bearer token")
    return "token test"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = SQLiteStore(tmp_path / "s.db")
    record = AccountingRecord(
        1, "02:00:00:00:00:11", "192.0.2.11", "user", "alice",
        1_796_400_000.0, 1_796_403_600.0, 2048, 0, "revoked",
    )  # fmt: skip

    async def prepare() -> None:
        await store.open()
        await store.add_accounting_record(record)

    with TestClient(FastAPI()) as test_client:
        test_client.portal.call(prepare)  # type: ignore[union-attr]
        mount_dashboard(test_client.app, store, require_token)  # type: ignore[arg-type]
        yield test_client
        test_client.portal.call(store.close)  # type: ignore[union-attr]


@pytest.mark.parametrize("path", PAGES)
def test_page_served_as_html(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize("path", PAGES)
def test_page_has_content_security_policy(client: TestClient, path: str) -> None:
    headers = client.get(path).headers
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert headers["x-content-type-options"] == "nosniff"


def test_policy_allows_own_scripts_only() -> None:
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert "connect-src 'self'" in CONTENT_SECURITY_POLICY


@pytest.mark.parametrize("name", ["index.html", "vouchers.html"])
def test_page_has_no_inline_code(name: str) -> None:
    html = (STATIC / name).read_text()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts
    assert all(' src="/static/' in tag for tag in scripts)
    assert "<style" not in html
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_served_as_javascript(client: TestClient, name: str) -> None:
    response = client.get(f"/static/{name}")
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_scripts_load_nothing_from_elsewhere() -> None:
    for path in STATIC.iterdir():
        text = path.read_text()
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), path.name


def test_stylesheet_served(client: TestClient) -> None:
    response = client.get("/static/dashboard.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")


def test_stylesheet_has_print_rules() -> None:
    css = (STATIC / "dashboard.css").read_text()
    assert "@media print" in css
    assert "break-inside: avoid" in css


def test_static_path_traversal_rejected(client: TestClient) -> None:
    response = client.get("/static/..%2Froutes.py")
    assert response.status_code == 404


def test_accounting_csv_needs_token(client: TestClient) -> None:
    assert client.get("/api/v1/accounting.csv").status_code == 401


def test_accounting_csv_rows(client: TestClient) -> None:
    response = client.get(
        "/api/v1/accounting.csv", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    lines = response.text.splitlines()
    assert lines[0].startswith("session,mac,ip,method,subject,started,ended")
    assert lines[1].startswith("1,02:00:00:00:00:11,192.0.2.11,user,alice,")


def test_accounting_csv_period_filters(client: TestClient) -> None:
    response = client.get(
        "/api/v1/accounting.csv",
        params={"since": "2026-12-05", "until": "2026-12-06"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.text.splitlines()[1:] == []


def test_accounting_csv_invalid_since(client: TestClient) -> None:
    response = client.get(
        "/api/v1/accounting.csv",
        params={"since": "soon"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 400
    assert response.json()["field"] == "since"


def test_accounting_in_openapi(client: TestClient) -> None:
    app = client.app
    assert isinstance(app, FastAPI)
    assert "/api/v1/accounting.csv" in app.openapi()["paths"]

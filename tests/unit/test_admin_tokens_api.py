"""The admin API's token requests: control socket only, values shown once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from capport.admin.records import TOKEN_PREFIX, token_digest
from capport.store.sqlite import SQLiteStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from admin_app import TOKEN_NAME, Admin, start_admin  # noqa: E402


@pytest.fixture
def socket_admin() -> Iterator[Admin]:
    """The admin application as the control socket serves it: no token needed."""
    yield from start_admin(require_token=False)


@pytest.fixture
def tcp_admin() -> Iterator[Admin]:
    """The admin application as the TCP listener serves it: a token needed."""
    yield from start_admin()


def create(admin: Admin, name: str) -> dict[str, Any]:
    response = admin.post("/api/v1/tokens", {"name": name})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def names(admin: Admin) -> list[str]:
    return [token["name"] for token in admin.get("/api/v1/tokens").json()["tokens"]]


def test_create_returns_value_once(socket_admin: Admin) -> None:
    body = create(socket_admin, "monitoring")
    assert body["name"] == "monitoring"
    assert body["token"].startswith(TOKEN_PREFIX)
    assert body["last_used"] is None
    listed = socket_admin.get("/api/v1/tokens").text
    assert body["token"] not in listed


def test_create_stores_only_digest(socket_admin: Admin) -> None:
    body = create(socket_admin, "monitoring")
    stored = socket_admin.call(socket_admin.store.token, token_digest(body["token"]))
    assert stored is not None
    assert stored.name == "monitoring"
    assert stored.id == body["id"]


def test_list_omits_values_and_digests(socket_admin: Admin) -> None:
    create(socket_admin, "monitoring")
    tokens = socket_admin.get("/api/v1/tokens").json()["tokens"]
    assert [token["name"] for token in tokens] == ["monitoring", TOKEN_NAME]
    for token in tokens:
        assert set(token) == {"id", "name", "created", "last_used"}


def test_create_taken_name_is_conflict(socket_admin: Admin) -> None:
    response = socket_admin.post("/api/v1/tokens", {"name": TOKEN_NAME})
    assert response.status_code == 409
    assert response.json()["field"] == "name"
    assert "already exists" in response.json()["error"]


@pytest.mark.parametrize("name", ["", "no spaces", "-dash-first", "x" * 65])
def test_create_invalid_name_rejected(socket_admin: Admin, name: str) -> None:
    response = socket_admin.post("/api/v1/tokens", {"name": name})
    assert response.status_code == 422
    assert response.json()["field"] == "name"


def test_revoke_by_name(socket_admin: Admin) -> None:
    created = create(socket_admin, "monitoring")
    response = socket_admin.post("/api/v1/tokens/revoke", {"name": "monitoring"})
    assert response.status_code == 200, response.text
    assert response.json() == {"id": created["id"], "name": "monitoring"}
    assert names(socket_admin) == [TOKEN_NAME]


def test_revoke_by_id(socket_admin: Admin) -> None:
    created = create(socket_admin, "monitoring")
    response = socket_admin.post("/api/v1/tokens/revoke", {"id": created["id"]})
    assert response.status_code == 200, response.text
    assert names(socket_admin) == [TOKEN_NAME]


def test_delete_by_id(socket_admin: Admin) -> None:
    created = create(socket_admin, "monitoring")
    response = socket_admin.delete(f"/api/v1/tokens/{created['id']}")
    assert response.status_code == 204
    assert names(socket_admin) == [TOKEN_NAME]


@pytest.mark.parametrize(
    ("body", "field"), [({"name": "ghost"}, "name"), ({"id": 99}, "id")]
)
def test_revoke_unknown_token_not_found(
    socket_admin: Admin, body: dict[str, Any], field: str
) -> None:
    response = socket_admin.post("/api/v1/tokens/revoke", body)
    assert response.status_code == 404
    assert response.json()["field"] == field
    assert "not found" in response.json()["error"]


@pytest.mark.parametrize(
    "body", [{}, {"id": 1, "name": TOKEN_NAME}], ids=["neither", "both"]
)
def test_revoke_needs_exactly_one_of_id_and_name(
    socket_admin: Admin, body: dict[str, Any]
) -> None:
    response = socket_admin.post("/api/v1/tokens/revoke", body)
    assert response.status_code == 422
    assert response.json()["error"] == "give exactly one of id and name"
    assert names(socket_admin) == [TOKEN_NAME]


def test_revoked_id_is_not_reused(socket_admin: Admin) -> None:
    first = create(socket_admin, "first")
    socket_admin.post("/api/v1/tokens/revoke", {"id": first["id"]})
    second = create(socket_admin, "second")
    assert second["id"] > first["id"]


def test_changes_are_audited(
    socket_admin: Admin, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="capport.audit"):
        created = create(socket_admin, "monitoring")
        socket_admin.post("/api/v1/tokens/revoke", {"name": "monitoring"})
    lines = [r.getMessage() for r in caplog.records if r.name == "capport.audit"]
    token_id = created["id"]
    assert lines == [
        f"control socket: created API token {token_id} (monitoring).",
        f"control socket: revoked API token {token_id} (monitoring, given by name).",
    ]
    assert created["token"] not in caplog.text


# The TCP listener, where requests carry bearer tokens


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/tokens", None),
        ("POST", "/api/v1/tokens", {"name": "minted"}),
        ("POST", "/api/v1/tokens/revoke", {"name": TOKEN_NAME}),
        ("DELETE", "/api/v1/tokens/1", None),
    ],
)
def test_bearer_token_cannot_manage_tokens(
    tcp_admin: Admin, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = tcp_admin.client.request(method, path, json=body, headers=tcp_admin.auth)
    assert response.status_code == 403
    assert "control socket" in response.json()["error"]
    stored = tcp_admin.call(tcp_admin.store.tokens)
    assert [token.name for token in stored] == [TOKEN_NAME]


def test_token_routes_need_token_first(tcp_admin: Admin) -> None:
    response = tcp_admin.client.get("/api/v1/tokens")
    assert response.status_code == 401


# Stores made before tokens had ids


def test_store_numbers_tokens_of_old_table(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(
            "CREATE TABLE api_tokens (name TEXT PRIMARY KEY, digest TEXT NOT NULL "
            "UNIQUE, created_at REAL NOT NULL, last_used_at REAL)"
        )
        db.executemany(
            "INSERT INTO api_tokens VALUES (?, ?, ?, ?)",
            [("later", "d2", 20.0, 25.0), ("earlier", "d1", 10.0, None)],
        )
        db.commit()

    async def reopen() -> list[Any]:
        store = SQLiteStore(path)
        await store.open()
        try:
            return await store.tokens()
        finally:
            await store.close()

    tokens = asyncio.run(reopen())
    by_name = {token.name: token for token in tokens}
    assert by_name["earlier"].id == 1
    assert by_name["later"].id == 2
    assert by_name["later"].digest == "d2"
    assert by_name["later"].last_used_at == 25.0
    assert [token.name for token in asyncio.run(reopen())] == ["earlier", "later"]

"""The admin API's user and voucher requests that the command line sends."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from capport.auth.passwords import verify_password

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from admin_app import TOKEN_NAME, Admin, start_admin  # noqa: E402


@pytest.fixture
def admin() -> Iterator[Admin]:
    yield from start_admin()


def error_of(response: Any) -> tuple[str | None, str]:
    body = response.json()
    return body["field"], body["error"]


def create_vouchers(admin: Admin, count: int = 1, **limits: Any) -> list[Any]:
    body = {"count": count, "duration": 3600, **limits}
    response = admin.post("/api/v1/vouchers", body)
    assert response.status_code == 201, response.text
    created: list[Any] = response.json()["vouchers"]
    return created


def states(admin: Admin) -> dict[int, str]:
    vouchers = admin.get("/api/v1/vouchers").json()["vouchers"]
    return {voucher["id"]: voucher["state"] for voucher in vouchers}


# Voucher revocation by id or code


def test_revoke_by_code_revokes_voucher(admin: Admin) -> None:
    first, second = create_vouchers(admin, count=2)
    typed = first["code"].lower().replace("-", "")
    response = admin.post("/api/v1/vouchers/revoke", {"code": typed})
    assert response.status_code == 200, response.text
    assert response.json() == {"id": first["id"]}
    assert states(admin) == {first["id"]: "revoked", second["id"]: "unused"}


def test_revoke_by_id_revokes_voucher(admin: Admin) -> None:
    (voucher,) = create_vouchers(admin)
    response = admin.post("/api/v1/vouchers/revoke", {"id": voucher["id"]})
    assert response.status_code == 200, response.text
    assert states(admin) == {voucher["id"]: "revoked"}


def test_revoke_twice_keeps_first_time(admin: Admin) -> None:
    (voucher,) = create_vouchers(admin)
    admin.post("/api/v1/vouchers/revoke", {"id": voucher["id"]})
    (before,) = admin.get("/api/v1/vouchers").json()["vouchers"]
    response = admin.post("/api/v1/vouchers/revoke", {"code": voucher["code"]})
    assert response.status_code == 200
    (after,) = admin.get("/api/v1/vouchers").json()["vouchers"]
    assert after["revoked"] == before["revoked"]


@pytest.mark.parametrize(
    "body", [{}, {"id": 1, "code": "K7QXM-3HNPD"}], ids=["neither", "both"]
)
def test_revoke_needs_exactly_one_of_id_and_code(
    admin: Admin, body: dict[str, Any]
) -> None:
    create_vouchers(admin)
    response = admin.post("/api/v1/vouchers/revoke", body)
    assert response.status_code == 422
    assert error_of(response) == ("code", "give exactly one of id and code")


def test_revoke_unknown_code_is_404(admin: Admin) -> None:
    create_vouchers(admin)
    response = admin.post("/api/v1/vouchers/revoke", {"code": "ZZZZZ-ZZZZZ"})
    assert response.status_code == 404
    field, message = error_of(response)
    assert field == "code"
    assert "ZZZZZ" not in message


def test_revoke_unknown_id_is_404(admin: Admin) -> None:
    response = admin.post("/api/v1/vouchers/revoke", {"id": 999})
    assert response.status_code == 404
    assert error_of(response)[0] == "id"


@pytest.mark.parametrize("code", ["AB2CD-EF3G", "AB2CD-EF3GO", "", "x" * 65])
def test_revoke_malformed_code_is_422(admin: Admin, code: str) -> None:
    response = admin.post("/api/v1/vouchers/revoke", {"code": code})
    assert response.status_code == 422
    field, message = error_of(response)
    assert field == "code"
    if code:
        assert code not in message


@pytest.mark.parametrize("voucher_id", [0, -1, 2**63, "7", 1.5])
def test_revoke_invalid_id_is_422(admin: Admin, voucher_id: Any) -> None:
    response = admin.post("/api/v1/vouchers/revoke", {"id": voucher_id})
    assert response.status_code == 422
    assert error_of(response)[0] == "id"


def test_revoke_by_code_is_audited_without_code(
    admin: Admin, caplog: pytest.LogCaptureFixture
) -> None:
    (voucher,) = create_vouchers(admin)
    with caplog.at_level(logging.DEBUG):
        admin.post("/api/v1/vouchers/revoke", {"code": voucher["code"]})
    audit = [r.getMessage() for r in caplog.records if r.name == "capport.audit"]
    assert audit == [
        f"token {TOKEN_NAME}: revoked voucher {voucher['id']} (given by code)."
    ]
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert voucher["code"] not in everything


def test_openapi_describes_revoke_by_code(admin: Admin) -> None:
    schema = admin.get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/vouchers/revoke"]["post"]
    assert "code" in operation["description"]
    body = schema["components"]["schemas"]["VoucherRevocation"]
    assert set(body["properties"]) == {"id", "code"}


# Created vouchers and user paths


def test_created_voucher_carries_its_limits(admin: Admin) -> None:
    (voucher,) = create_vouchers(
        admin, quota_bytes=5_000_000, max_devices=2, max_uses=3
    )
    assert voucher["duration"] == 3600
    assert voucher["quota_bytes"] == 5_000_000
    assert voucher["max_devices"] == 2
    assert voucher["max_uses"] == 3
    assert voucher["state"] == "unused"


def test_user_name_with_slash_is_changed_and_removed(admin: Admin) -> None:
    response = admin.post("/api/v1/users", {"name": "dept/alice", "password": "a"})
    assert response.status_code == 201
    path = "/api/v1/users/dept%2Falice"
    assert admin.put(f"{path}/password", {"password": "b"}).status_code == 204
    stored = admin.call(admin.store.user, "dept/alice")
    assert verify_password(stored.password_hash, "b")
    assert admin.delete(path).status_code == 204
    assert admin.get("/api/v1/users").json() == {"users": []}


def test_password_is_never_logged(
    admin: Admin, caplog: pytest.LogCaptureFixture
) -> None:
    admin.post("/api/v1/users", {"name": "alice", "password": "first-pw-81"})
    with caplog.at_level(logging.DEBUG):
        admin.put("/api/v1/users/alice/password", {"password": "second-pw-82"})
        admin.put("/api/v1/users/alice/password", {"password": "x" * 1025})
        admin.put("/api/v1/users/nobody/password", {"password": "third-pw-83"})
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "changed the password of user alice" in text
    assert "second-pw-82" not in text
    assert "third-pw-83" not in text
    assert "x" * 1025 not in text

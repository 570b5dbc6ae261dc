"""User names that the admin API accepts: one length limit, and usable in paths."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from capport.auth.users import MAX_NAME_CHARS, new_username
from capport.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from admin_app import Admin, start_admin  # noqa: E402


@pytest.fixture
def admin() -> Iterator[Admin]:
    yield from start_admin()


def add_user(admin: Admin, name: str) -> tuple[int, dict[str, str]]:
    response = admin.post("/api/v1/users", {"name": name, "password": "pw"})
    body: dict[str, str] = response.json()
    return response.status_code, body


def test_name_at_limit_is_added(admin: Admin) -> None:
    status, body = add_user(admin, "a" * MAX_NAME_CHARS)
    assert status == 201
    assert body["name"] == "a" * MAX_NAME_CHARS


@pytest.mark.parametrize("length", [MAX_NAME_CHARS + 1, 100, 5000])
def test_name_over_limit_names_limit(admin: Admin, length: int) -> None:
    status, body = add_user(admin, "a" * length)
    assert status == 422
    assert body["field"] == "name"
    assert f"at most {MAX_NAME_CHARS} characters" in body["error"]


def test_name_longer_after_normalisation_is_422(admin: Admin) -> None:
    # NFKC turns U+FB03 (the "ffi" ligature) into three letters.
    status, body = add_user(admin, "\ufb03" * 30)
    assert status == 422
    assert body["field"] == "name"
    assert f"longer than {MAX_NAME_CHARS} characters" in body["error"]


def test_openapi_states_validated_limit(admin: Admin) -> None:
    schema = admin.get("/api/v1/openapi.json").json()
    name = schema["components"]["schemas"]["NewUser"]["properties"]["name"]
    assert name["maxLength"] == MAX_NAME_CHARS


@pytest.mark.parametrize("name", [".", ".."])
def test_dot_segment_name_is_422(admin: Admin, name: str) -> None:
    status, body = add_user(admin, name)
    assert status == 422
    assert body["field"] == "name"
    assert "admin API's paths" in body["error"]


@pytest.mark.parametrize("name", ["a.b", "...", "./a", "a/.."])
def test_name_with_dots_is_managed(admin: Admin, name: str) -> None:
    assert add_user(admin, name)[0] == 201
    path = "/api/v1/users/" + name.replace("/", "%2F")
    assert admin.put(f"{path}/password", {"password": "new"}).status_code == 204
    assert admin.delete(path).status_code == 204


@pytest.mark.parametrize("name", [".", ".."])
def test_cli_rejects_dot_segment_name(tmp_path: Path, name: str) -> None:
    result = CliRunner().invoke(
        main,
        ["users", "add", name, "--password-stdin", "--store", str(tmp_path / "s.db")],
        input="pw\n",
    )
    assert result.exit_code == 2
    assert "admin API's paths" in result.output


def test_new_username_normalises_like_lookup() -> None:
    assert new_username("  Alice ") == "alice"

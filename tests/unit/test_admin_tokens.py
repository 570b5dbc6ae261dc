"""`capport tokens --store`: create, list and revoke bearer tokens in a store file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner

from capport.admin.records import TOKEN_PREFIX, token_digest
from capport.cli import main
from capport.store.sqlite import SQLiteStore


def run(store: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["tokens", *args, "--store", str(store)])
    return result.exit_code, result.stdout, result.stderr


def stored_digests(path: Path) -> list[str]:
    async def read() -> list[str]:
        store = SQLiteStore(path)
        await store.open()
        try:
            return [token.digest for token in await store.tokens()]
        finally:
            await store.close()

    return asyncio.run(read())


def test_create_prints_token_once(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    status, output, _ = run(store, "create", "ops")
    assert status == 0
    token = output.strip()
    assert token.startswith(TOKEN_PREFIX)
    assert len(token) > 40


def test_store_keeps_only_digest(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    token = run(store, "create", "ops")[1].strip()
    assert stored_digests(store) == [token_digest(token)]
    assert token.encode() not in store.read_bytes()


def test_tokens_are_random(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    first = run(store, "create", "one")[1]
    second = run(store, "create", "two")[1]
    assert first != second


def test_duplicate_name_fails(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    run(store, "create", "ops")
    status, _, error = run(store, "create", "ops")
    assert status == 1
    assert "already exists" in error


def test_invalid_name_fails(tmp_path: Path) -> None:
    status, _, error = run(tmp_path / "s.db", "create", "no spaces")
    assert status == 2
    assert "invalid token name" in error


def test_list_shows_names_without_tokens(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    token = run(store, "create", "ops")[1].strip()
    status, output, _ = run(store, "list", "--json")
    assert status == 0
    rows = json.loads(output)
    assert [row["name"] for row in rows] == ["ops"]
    assert rows[0]["last_used"] is None
    assert token not in output


def test_revoke_deletes_token(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    run(store, "create", "ops")
    assert run(store, "revoke", "ops")[0] == 0
    assert stored_digests(store) == []


def test_revoke_unknown_token_fails(tmp_path: Path) -> None:
    status, _, error = run(tmp_path / "s.db", "revoke", "ghost")
    assert status == 1
    assert "not found" in error


def test_revoke_by_id_deletes_token(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    run(store, "create", "ops")
    run(store, "create", "other")
    (row,) = [
        r for r in json.loads(run(store, "list", "--json")[1]) if r["name"] == "ops"
    ]
    status, output, _ = run(store, "revoke", "--id", str(row["id"]))
    assert status == 0
    assert output == f"Revoked token ops (id {row['id']}).\n"
    assert len(stored_digests(store)) == 1


def test_revoke_unknown_id_fails(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    run(store, "create", "ops")
    status, _, error = run(store, "revoke", "--id", "7")
    assert status == 1
    assert "API token 7 not found" in error

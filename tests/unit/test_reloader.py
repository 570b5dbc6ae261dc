"""The daemon's reload on SIGHUP, with a real store and an in-memory firewall."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from capport.config import Config, load_config
from capport.daemon import _Reloader
from capport.enforce.base import MemoryEnforcer
from capport.enforce.ruleset import RulesetSpec
from capport.gateway import Gateway
from capport.neighbours import MemoryNeighbours
from capport.store.sqlite import SQLiteStore
from capport.tokens import TokenSigner

BASE = '[gateway]\ninterface = "lan0"\n[portal]\naddress = "192.0.2.1"\n'


class FailingGateway(Gateway):
    """A gateway whose reconcile can fail with an error capport does not raise.

    It records the firewall ports each reconcile ran with.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failures = 0
        self.rebuilt_with: list[tuple[int, ...]] = []

    async def start(self) -> None:
        spec = self._enforcer.spec  # type: ignore[attr-defined]
        self.rebuilt_with.append(spec.allow_tcp_ports)
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("unexpected failure")
        await super().start()


class Bench:
    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "capport.toml"
        self.path.write_text(BASE + "[session]\nduration = 600\n")
        self.config: Config = load_config(self.path)
        self.store = SQLiteStore(tmp_path / "s.db")
        self.enforcer = MemoryEnforcer()
        self.enforcer.spec = RulesetSpec.from_config(self.config)  # type: ignore[attr-defined]
        self.gateway = FailingGateway(
            self.store, self.enforcer, MemoryNeighbours({}), 600
        )
        self.signer = TokenSigner(b"k" * 32, self.config.session.token_lifetime)
        self.reloader = _Reloader(
            self.config,
            self.path,
            self.gateway,
            self.enforcer,  # type: ignore[arg-type]
            self.signer,
        )

    async def reload(self) -> None:
        self.reloader.schedule()
        task = self.reloader._running
        assert task is not None
        await task


def reload_with(tmp_path: Path, text: str, *, failures: int = 0) -> Bench:
    async def main() -> Bench:
        bench = Bench(tmp_path)
        await bench.store.open()
        try:
            await bench.gateway.start()
            bench.path.write_text(text)
            bench.gateway.failures = failures
            await bench.reload()
        finally:
            await bench.store.close()
        return bench

    return asyncio.run(main())


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_reload_applies_duration(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, "capport.daemon")
    bench = reload_with(tmp_path, BASE + "[session]\nduration = 1200\n")

    assert errors(caplog) == []
    assert bench.gateway.session_duration == 1200


def test_reload_terms_not_utf8_fails(tmp_path: Path, caplog) -> None:
    terms = tmp_path / "terms.txt"
    terms.write_bytes("Caf\u00e9 terms".encode("latin-1"))
    text = BASE + f'terms_file = "{terms}"\n[session]\nduration = 1200\n'
    caplog.set_level(logging.INFO, "capport.daemon")
    bench = reload_with(tmp_path, text)

    [message] = errors(caplog)
    assert message.startswith("Reload failed; the running configuration is kept")
    assert "is not UTF-8 text" in message
    assert bench.gateway.session_duration == 600


def test_reload_unexpected_error_logged(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, "capport.daemon")
    text = BASE + "[session]\nduration = 1200\n[firewall]\nallow_tcp_ports = [22]\n"
    bench = reload_with(tmp_path, text, failures=1)

    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.getMessage().startswith(
        "Reload failed; the running configuration is kept"
    )
    assert "unexpected failure" in record.getMessage()
    assert record.exc_info is not None
    assert "Configuration reloaded." not in caplog.messages
    assert bench.gateway.session_duration == 600
    spec = bench.enforcer.spec  # type: ignore[attr-defined]
    assert spec == RulesetSpec.from_config(bench.config)


def test_reload_unexpected_error_rebuilds_running(tmp_path: Path) -> None:
    text = BASE + "[firewall]\nallow_tcp_ports = [22]\n"
    bench = reload_with(tmp_path, text, failures=1)

    # The start of the bench, the failed reload, then the rebuild.
    assert bench.gateway.rebuilt_with == [(), (22,), ()]


def test_reload_failed_rebuild_logged(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, "capport.daemon")
    text = BASE + "[firewall]\nallow_tcp_ports = [22]\n"
    reload_with(tmp_path, text, failures=2)

    messages = errors(caplog)
    assert len(messages) == 2
    assert messages[1].startswith(
        "Rebuilding the firewall with the running configuration failed"
    )

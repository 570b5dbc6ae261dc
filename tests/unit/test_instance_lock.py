"""The lock beside the store that keeps a second capport off the same store."""

from __future__ import annotations

from pathlib import Path

import pytest

from capport.errors import ConfigError
from capport.listeners import InstanceLock


def test_check_free_creates_nothing(tmp_path: Path) -> None:
    store = tmp_path / "state" / "capport.db"
    InstanceLock(store).check_free()
    assert not (tmp_path / "state").exists()


def test_check_free_rejects_held_lock(tmp_path: Path) -> None:
    store = tmp_path / "capport.db"
    running = InstanceLock(store)
    running.acquire()
    try:
        with pytest.raises(ConfigError, match="another capport is already running"):
            InstanceLock(store).check_free()
    finally:
        running.release()


def test_check_free_releases_probe(tmp_path: Path) -> None:
    store = tmp_path / "capport.db"
    stopped = InstanceLock(store)
    stopped.acquire()
    stopped.release()
    lock = InstanceLock(store)
    lock.check_free()
    lock.acquire()
    lock.release()

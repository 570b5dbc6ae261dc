"""Keeping the objects of the start out of later garbage collections."""

import gc
from collections.abc import Iterator

import pytest

from capport import heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()


def test_freeze_moves_live_objects_out_of_collections(unfrozen: None) -> None:
    alive = [object() for _ in range(10)] + [[] for _ in range(1000)]

    heap.freeze_start_objects()

    assert gc.get_freeze_count() >= len(alive)


def test_freeze_collects_garbage_cycles_first(unfrozen: None) -> None:
    class Node:
        def __init__(self) -> None:
            self.other: object = self

    collected: list[object] = []
    gc.callbacks.append(lambda phase, info: collected.append(info))
    try:
        Node()
        heap.freeze_start_objects()
    finally:
        gc.callbacks.pop()

    assert any(info.get("collected", 0) >= 1 for info in collected)

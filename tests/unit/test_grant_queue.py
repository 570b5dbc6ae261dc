"""Coalescing of concurrent requests into batches."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

import pytest

from capport.grant_queue import BatchQueue


class Recorder:
    """A commit function that records its batches and doubles each request.

    A negative request gets a ValueError of its own; with fail_all set, the
    whole batch raises.
    """

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.fail_all = False
        self.gate = asyncio.Event()
        self.gate.set()

    async def commit(self, requests: list[int]) -> list[int | Exception]:
        self.batches.append(list(requests))
        await self.gate.wait()
        if self.fail_all:
            raise RuntimeError("commit failed")
        return [
            ValueError(f"negative request {r}") if r < 0 else 2 * r for r in requests
        ]


def _keys(request: int) -> list[Hashable]:
    return [abs(request) % 100]


def test_single_request_commits_alone() -> None:
    async def scenario() -> tuple[int, list[list[int]]]:
        recorder = Recorder()
        queue: BatchQueue[int, int] = BatchQueue(recorder.commit, _keys)
        result = await queue.submit(4)
        return result, recorder.batches

    result, batches = asyncio.run(scenario())

    assert result == 8
    assert batches == [[4]]


def test_concurrent_requests_share_batch() -> None:
    async def scenario() -> tuple[list[int], list[list[int]]]:
        recorder = Recorder()
        queue: BatchQueue[int, int] = BatchQueue(recorder.commit, _keys)
        results = await asyncio.gather(*(queue.submit(n) for n in (1, 2, 3)))
        return list(results), recorder.batches

    results, batches = asyncio.run(scenario())

    assert results == [2, 4, 6]
    assert batches == [[1, 2, 3]]


def test_requests_during_commit_form_next_batch() -> None:
    async def scenario() -> tuple[list[int], list[list[int]]]:
        recorder = Recorder()
        queue: BatchQueue[int, int] = BatchQueue(recorder.commit, _keys)
        recorder.gate.clear()
        first = asyncio.create_task(queue.submit(1))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        later = [asyncio.create_task(queue.submit(n)) for n in (2, 3)]
        await asyncio.sleep(0)
        recorder.gate.set()
        results = await asyncio.gather(first, *later)
        return list(results), recorder.batches

    results, batches = asyncio.run(scenario())

    assert results == [2, 4, 6]
    assert batches == [[1], [2, 3]]


def test_conflicting_request_waits_for_next_batch() -> None:
    async def scenario() -> tuple[list[int], list[list[int]]]:
        recorder = Recorder()
        queue: BatchQueue[int, int] = BatchQueue(recorder.commit, _keys)
        # 101 shares its key with 1, so it goes after 1's batch, and 3
        # keeps its place in the first batch.
        results = await asyncio.gather(*(queue.submit(n) for n in (1, 101, 3)))
        return list(results), recorder.batches

    results, batches = asyncio.run(scenario())

    assert results == [2, 202, 6]
    assert batches == [[1, 3], [101]]


def test_request_error_fails_only_its_caller() -> None:
    async def scenario() -> list[object]:
        recorder = Recorder()
        queue: BatchQueue[int, int] = BatchQueue(recorder.commit, _keys)
        submitted = (queue.submit(n) for n in (1, -2, 3))
        return list(await asyncio.gather(*submitted, return_exceptions=True))

    results = asyncio.run(scenario())

    assert results[0] == 2
    assert isinstance(results[1], ValueError)
    assert results[2] == 6


def test_commit_failure_fails_whole_batch() -> None:
    async def scenario() -> list[object]:
        recorder = Recorder()
        recorder.fail_all = True
        queue: BatchQueue[int, int] = BatchQueue(recorder.commit, _keys)
        submitted = (queue.submit(n) for n in (1, 2))
        return list(await asyncio.gather(*submitted, return_exceptions=True))

    results = asyncio.run(scenario())

    for result in results:
        assert isinstance(result, RuntimeError)


def test_queue_recovers_after_failed_batch() -> None:
    async def scenario() -> int:
        recorder = Recorder()
        recorder.fail_all = True
        queue: BatchQueue[int, int] = BatchQueue(recorder.commit, _keys)
        with pytest.raises(RuntimeError):
            await queue.submit(1)
        recorder.fail_all = False
        return await queue.submit(5)

    assert asyncio.run(scenario()) == 10


def test_batch_size_is_capped() -> None:
    async def scenario() -> list[list[int]]:
        recorder = Recorder()
        queue: BatchQueue[int, int] = BatchQueue(recorder.commit, _keys, max_batch=2)
        await asyncio.gather(*(queue.submit(n) for n in (1, 2, 3, 4, 5)))
        return recorder.batches

    assert asyncio.run(scenario()) == [[1, 2], [3, 4], [5]]


def test_wrong_result_count_fails_batch() -> None:
    async def short_commit(requests: list[int]) -> list[int | Exception]:
        return [1]

    async def scenario() -> list[object]:
        queue: BatchQueue[int, int] = BatchQueue(short_commit, _keys)
        submitted = (queue.submit(n) for n in (1, 2))
        return list(await asyncio.gather(*submitted, return_exceptions=True))

    results = asyncio.run(scenario())

    for result in results:
        assert isinstance(result, RuntimeError)


def test_zero_max_batch_is_rejected() -> None:
    async def commit(requests: list[int]) -> list[int | Exception]:
        return list(requests)

    with pytest.raises(ValueError, match="max_batch 0"):
        BatchQueue(commit, _keys, max_batch=0)

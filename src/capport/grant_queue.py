"""Coalescing concurrent requests into batches that commit one at a time.

A grant costs a store transaction and a firewall transaction whatever the
number of devices in it, so logins that arrive while one is being granted
wait and are granted together in the next batch. Each caller still gets
its own result or its own error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from capport.auth.entitlement import Entitlement
from capport.auth.records import Contact
from capport.models import Device

log = logging.getLogger("capport.gateway")

R = TypeVar("R")
T = TypeVar("T")

# The commit function returns one item per request: its result, or the
# exception that request alone raises.
Commit = Callable[[list[R]], Awaitable[list[T | Exception]]]


class BatchQueue(Generic[R, T]):
    """A queue that runs commit on batches of submitted requests, one at a time.

    keys returns what a request must not share with another request in the
    same batch (an address, a MAC, a voucher). A request that shares one is
    left for the next batch, so that within a batch the order of requests
    does not matter and the outcome is that of committing them one by one.
    """

    def __init__(
        self,
        commit: Commit[R, T],
        keys: Callable[[R], Iterable[Hashable]],
        max_batch: int = 64,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"invalid max_batch {max_batch}: expected at least 1")
        self._commit = commit
        self._keys = keys
        self._max_batch = max_batch
        self._pending: list[tuple[R, asyncio.Future[T]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, request: R) -> T:
        """Queue request, wait for the batch that commits it, and return its result.

        Raises the exception that commit returned for this request, or the
        exception that commit raised for its whole batch. A caller cancelled
        while it waits does not withdraw its request from a batch that
        already started.
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        if self._worker is None:
            self._worker = asyncio.create_task(self._drain())
        return await future

    def _take(self) -> list[tuple[R, asyncio.Future[T]]]:
        """Remove and return the next batch, in submission order."""
        batch: list[tuple[R, asyncio.Future[T]]] = []
        deferred: list[tuple[R, asyncio.Future[T]]] = []
        used: set[Hashable] = set()
        for item in self._pending:
            keys = set(self._keys(item[0]))
            if len(batch) >= self._max_batch or keys & used:
                deferred.append(item)
                continue
            used |= keys
            batch.append(item)
        self._pending = deferred
        return batch

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._take()
                await self._commit_batch(batch)
        finally:
            self._worker = None
            # Only cancellation (at shutdown) leaves requests behind.
            for _, future in self._pending:
                future.cancel()
            self._pending = []

    async def _commit_batch(self, batch: list[tuple[R, asyncio.Future[T]]]) -> None:
        requests = [request for request, _ in batch]
        try:
            results = await self._commit(requests)
        except Exception as error:
            results = [error] * len(batch)
        except BaseException:
            for _, future in batch:
                future.cancel()
            raise
        if len(results) != len(batch):
            log.error(
                "A batch commit returned %d results for %d requests.",
                len(results),
                len(batch),
            )
            mismatch = RuntimeError(
                f"commit returned {len(results)} results for {len(batch)} requests"
            )
            results = [mismatch] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


@dataclass(frozen=True, slots=True)
class GrantRequest:
    """A login waiting to be granted: the device, its entitlement and contact."""

    device: Device
    entitlement: Entitlement
    contact: Contact | None = None


def grant_keys(request: GrantRequest) -> list[Hashable]:
    """Return what two grants in one batch must not share.

    Two logins of one address or MAC replace each other, and two of one
    voucher or user count against the same device limit, so their order
    matters and they go in separate batches.
    """
    keys: list[Hashable] = [request.device.ip, request.device.mac]
    subject = request.entitlement.subject
    if subject is not None:
        keys.append((request.entitlement.method, subject))
    return keys

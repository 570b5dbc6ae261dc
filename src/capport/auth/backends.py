"""Backends of `capport users` and `capport vouchers`: a gateway or a store file.

GatewayAccounts sends each change to the running gateway through its control
socket, as the admin API's requests, so the gateway validates it and its
audit log records it with the caller's uid. StoreAccounts opens a SQLite
store file directly. It is the offline mode, for setting up users and
vouchers before the gateway's first start, and its changes reach no audit
log. Both return users and vouchers as the admin API describes them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from capport.auth.passwords import hash_password
from capport.auth.records import NewVoucher, User
from capport.auth.voucherrows import render_vouchers_csv, voucher_row
from capport.auth.vouchers import code_digest, generate_code, normalise_code
from capport.controlclient import ControlClient
from capport.errors import RecordNotFound, StoreError
from capport.store.sqlite import SQLiteStore

T = TypeVar("T")

# The admin API creates at most this many vouchers per request
# (capport.admin.schemas.MAX_VOUCHERS_PER_REQUEST), so larger runs are split.
GATEWAY_VOUCHER_BATCH = 1000


class Accounts(Protocol):
    """The operations of `capport users` and `capport vouchers`.

    Each method raises CapportError with a message for the operator.
    """

    voucher_batch: int

    def users(self) -> list[dict[str, Any]]: ...

    def add_user(self, name: str, password: str, max_devices: int | None) -> None: ...

    def set_password(self, name: str, password: str) -> None: ...

    def remove_user(self, name: str) -> None: ...

    def vouchers(self) -> list[dict[str, Any]]: ...

    def create_vouchers(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        """Create request["count"] vouchers, at most voucher_batch at once."""
        ...

    def revoke_voucher(self, value: str) -> int:
        """Revoke the voucher whose id or code is value and return its id."""
        ...

    def vouchers_csv(self) -> str: ...


def revocation(value: str) -> dict[str, Any]:
    """Return the admin API's revoke request for an id or a code as typed."""
    if value.isdigit():
        return {"id": int(value)}
    return {"code": value}


class GatewayAccounts:
    """Users and vouchers of the gateway that listens on a control socket."""

    voucher_batch = GATEWAY_VOUCHER_BATCH

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path

    def users(self) -> list[dict[str, Any]]:
        with ControlClient(self.socket_path) as control:
            return control.users()

    def add_user(self, name: str, password: str, max_devices: int | None) -> None:
        with ControlClient(self.socket_path) as control:
            control.add_user(name, password, max_devices)

    def set_password(self, name: str, password: str) -> None:
        with ControlClient(self.socket_path) as control:
            control.set_password(name, password)

    def remove_user(self, name: str) -> None:
        with ControlClient(self.socket_path) as control:
            control.remove_user(name)

    def vouchers(self) -> list[dict[str, Any]]:
        with ControlClient(self.socket_path) as control:
            return control.vouchers()

    def create_vouchers(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        with ControlClient(self.socket_path) as control:
            return control.create_vouchers(request)

    def revoke_voucher(self, value: str) -> int:
        with ControlClient(self.socket_path) as control:
            return control.revoke_voucher(revocation(value))

    def vouchers_csv(self) -> str:
        with ControlClient(self.socket_path) as control:
            return control.vouchers_csv()


class StoreAccounts:
    """Users and vouchers in a SQLite store file, changed without the gateway."""

    # One run is one write transaction, whatever its size.
    voucher_batch = 1_000_000

    def __init__(self, path: Path, synchronous: str = "full") -> None:
        self.path = path
        self.synchronous = synchronous

    def users(self) -> list[dict[str, Any]]:
        users = self._run(lambda store: store.users())
        return [
            {"name": u.name, "created": u.created_at, "max_devices": u.max_devices}
            for u in users
        ]

    def add_user(self, name: str, password: str, max_devices: int | None) -> None:
        user = User(name, hash_password(password), time.time(), max_devices)
        self._run(lambda store: store.add_user(user), create=True)

    def set_password(self, name: str, password: str) -> None:
        password_hash = hash_password(password)
        self._run(lambda store: store.set_password(name, password_hash))

    def remove_user(self, name: str) -> None:
        self._run(lambda store: store.remove_user(name))

    def vouchers(self) -> list[dict[str, Any]]:
        vouchers = self._run(lambda store: store.vouchers())
        now = time.time()
        return [voucher_row(voucher, now) for voucher in vouchers]

    def create_vouchers(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        codes = [generate_code() for _ in range(request["count"])]
        new = [
            NewVoucher(
                code_digest(normalise_code(code) or ""),
                request["duration"],
                request["quota_bytes"],
                request["max_devices"],
                request["max_uses"],
            )
            for code in codes
        ]
        now = time.time()
        stored = self._run(lambda store: store.add_vouchers(new, now), create=True)
        return [
            {**voucher_row(voucher, now), "code": code}
            for code, voucher in zip(codes, stored, strict=True)
        ]

    def revoke_voucher(self, value: str) -> int:
        request = revocation(value)

        async def revoke(store: SQLiteStore) -> int:
            if "id" in request:
                voucher_id: int = request["id"]
            else:
                voucher_id = await _voucher_id(store, request["code"])
            await store.revoke_voucher(voucher_id, time.time())
            return voucher_id

        return self._run(revoke)

    def vouchers_csv(self) -> str:
        return render_vouchers_csv(self.vouchers())

    def _run(
        self, work: Callable[[SQLiteStore], Awaitable[T]], create: bool = False
    ) -> T:
        return asyncio.run(with_store(self.path, self.synchronous, work, create=create))


async def _voucher_id(store: SQLiteStore, typed: str) -> int:
    code = normalise_code(typed)
    voucher = None if code is None else await store.voucher(code_digest(code))
    if voucher is None:
        raise RecordNotFound(
            "no voucher has this code. Give a code as printed or a voucher id "
            "from `capport vouchers list`"
        )
    return voucher.id


async def with_store(
    path: Path,
    synchronous: str,
    work: Callable[[SQLiteStore], Awaitable[T]],
    *,
    create: bool = False,
) -> T:
    """Open the store at path, run work on it and close it.

    A missing file is created only when create is true: a listing or a
    removal on a mistyped path would otherwise leave an empty store there.
    """
    if not create and not path.exists():
        raise StoreError(
            f"store file {path} not found: give the path of the gateway's store "
            "(store.path in its configuration)"
        )
    store = SQLiteStore(path, synchronous=synchronous)
    await store.open()
    try:
        return await work(store)
    finally:
        await store.close()

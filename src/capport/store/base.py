"""The interface every session store implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from capport.accounting import SessionTerms, UsageRecord
from capport.acct.records import AccountingRecord
from capport.admin.records import ApiToken, Sample
from capport.auth.entitlement import Entitlement
from capport.auth.records import Contact, NewVoucher, User, Voucher
from capport.errors import CapportError
from capport.models import Device, Session

# The policy for a grant beyond a user's or voucher's device limit: reject
# the new device, or end the subject's oldest session to make room.
DeviceLimitPolicy = Literal["reject", "end-oldest"]


@dataclass(frozen=True, slots=True)
class SessionStart:
    """A session just committed, and the sessions ended to make room for it.

    displaced lists other devices' sessions that the device limit ended. The
    earlier session of the same device, if any, is ended as "replaced" and
    is not listed. terms are the limits stored with the session by
    start_sessions. start_session stores none and leaves them empty.
    """

    session: Session
    displaced: list[Session] = field(default_factory=list)
    terms: SessionTerms = SessionTerms()


@dataclass(frozen=True, slots=True)
class SessionRequest:
    """A session to start in a batch, with the limits to store beside it.

    terms carries the limits without a boot-clock deadline. The store adds
    the deadline once it has computed how long the session lasts, since a
    voucher can end it sooner than the entitlement's duration.
    """

    device: Device
    entitlement: Entitlement
    terms: SessionTerms = SessionTerms()
    contact: Contact | None = None


@dataclass(frozen=True, slots=True)
class BootClock:
    """A reading of the kernel's CLOCK_BOOTTIME and the id of the boot it is from."""

    boot_id: str
    now: float


class Store(Protocol):
    """Sessions, users, vouchers and gateway state that must outlive the daemon.

    Every method is a coroutine so that a networked backend can implement
    the same interface without blocking the event loop.
    """

    async def open(self) -> None:
        """Connect, and migrate the schema to this version of capport."""
        ...

    async def close(self) -> None: ...

    async def secret(self) -> bytes:
        """Return the gateway's signing key, creating it on first use."""
        ...

    # Sessions

    async def start_session(
        self,
        device: Device,
        entitlement: Entitlement,
        now: float,
        *,
        contact: Contact | None = None,
        on_device_limit: DeviceLimitPolicy = "reject",
    ) -> SessionStart:
        """Commit a new session, ending any active one of the same device.

        In one transaction: a voucher session counts one use of the voucher
        (the subject is its id) and lasts no longer than the voucher, and
        the entitlement's device limit is applied under on_device_limit.
        Raises VoucherUnavailable, RecordNotFound or DeviceLimitReached
        having changed nothing.
        """
        ...

    async def start_sessions(
        self,
        requests: list[SessionRequest],
        now: float,
        boot: BootClock,
        *,
        on_device_limit: DeviceLimitPolicy = "reject",
    ) -> list[SessionStart | CapportError]:
        """Commit sessions and their terms in one transaction, one result each.

        Each request is applied as start_session would apply it, in order,
        and its terms are stored with the boot-clock deadline of the session
        the store committed. A request that raises VoucherUnavailable,
        RecordNotFound or DeviceLimitReached changes nothing and gets that
        error as its result, while the others still commit. Any other
        failure raises and commits none of them.
        """
        ...

    async def end_session(
        self, session_id: int, reason: str, now: float
    ) -> Session | None:
        """Mark a session ended; return it, or None if it was not active."""
        ...

    async def active_sessions(self) -> list[Session]:
        """Return every session that has not ended, oldest first."""
        ...

    async def expire_due(self, now: float) -> list[Session]:
        """End every active session whose time is up and return them."""
        ...

    # Local users, keyed by their normalised name

    async def add_user(self, user: User) -> None:
        """Store a new user; raise RecordExists if the name is taken."""
        ...

    async def user(self, name: str) -> User | None:
        """Return the user called name, or None."""
        ...

    async def users(self) -> list[User]:
        """Return every user, sorted by name."""
        ...

    async def set_password(self, name: str, password_hash: str) -> None:
        """Replace a user's password hash; raise RecordNotFound if there is none."""
        ...

    async def remove_user(self, name: str) -> None:
        """Delete a user; raise RecordNotFound if there is none."""
        ...

    # Vouchers, found by the SHA-256 digest of their normalised code

    async def add_vouchers(
        self, vouchers: list[NewVoucher], now: float
    ) -> list[Voucher]:
        """Store new vouchers in one transaction and return them with their ids."""
        ...

    async def voucher(self, digest: str) -> Voucher | None:
        """Return the voucher whose code has digest, or None."""
        ...

    async def vouchers(self) -> list[Voucher]:
        """Return every voucher, oldest first."""
        ...

    async def revoke_voucher(self, voucher_id: int, now: float) -> None:
        """Stop a voucher from granting new sessions; raise RecordNotFound."""
        ...

    async def save_terms(self, session_id: int, terms: SessionTerms) -> None:
        """Store the limits and boot-clock deadline of a session."""
        ...

    async def session_terms(
        self, session_ids: list[int]
    ) -> dict[int, tuple[SessionTerms, UsageRecord]]:
        """Return the terms and last usage of those active sessions that have them."""
        ...

    async def record_usage(self, records: list[UsageRecord]) -> None:
        """Store the bytes each session has used so far."""
        ...

    async def set_expiry(self, expiries: list[tuple[int, float]]) -> None:
        """Set the wall-clock expiry of active sessions, given as (id, expiry)."""
        ...

    async def mac_overrides(self) -> dict[str, str]:
        """Return the runtime changes to the MAC lists, by MAC."""
        ...

    async def set_mac_override(self, mac: str, policy_name: str, now: float) -> None:
        """Store a runtime change to the MAC lists ("trusted", "blocked", "neither")."""
        ...

    # Admin API tokens, found by the SHA-256 digest of the token

    async def add_token(self, token: ApiToken) -> ApiToken:
        """Store a new token and return it with its id.

        Raises RecordExists if the name is taken.
        """
        ...

    async def tokens(self) -> list[ApiToken]:
        """Return every token, sorted by name."""
        ...

    async def token(self, digest: str) -> ApiToken | None:
        """Return the token whose value has digest, or None."""
        ...

    async def touch_token(self, name: str, now: float) -> None:
        """Record that the token called name was used at now."""
        ...

    async def remove_token(self, name: str) -> ApiToken:
        """Delete the token called name and return it.

        Raises RecordNotFound if there is none.
        """
        ...

    async def remove_token_by_id(self, token_id: int) -> ApiToken:
        """Delete the token with token_id and return it.

        Raises RecordNotFound if there is none.
        """
        ...

    # History

    async def add_sample(self, sample: Sample, keep_after: float) -> None:
        """Store a sample and delete those taken before keep_after."""
        ...

    async def samples(self, since: float) -> list[Sample]:
        """Return the samples taken at or after since, oldest first."""
        ...

    async def session_starts(self, since: float) -> list[tuple[float, str]]:
        """Return (started_at, method) of the sessions started at or after since."""
        ...

    # Accounting records of ended sessions

    async def add_accounting_record(self, record: AccountingRecord) -> None:
        """Store the record of an ended session, replacing one with its id."""
        ...

    async def accounting_records(
        self, since: float, until: float
    ) -> list[AccountingRecord]:
        """Return the records of sessions that overlap [since, until)."""
        ...

    async def prune_accounting(self, before: float) -> int:
        """Delete records of sessions that ended before `before`; return how many."""
        ...

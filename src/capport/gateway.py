"""The control plane: grants, revocations, expiry, accounting and reconciliation.

The order of a grant is fixed: the session is committed to the store, then
the kernel set is updated, then the caller may respond to the client. The store
is the source of truth, and the kernel set is rebuilt from it at every start.

A session belongs to a MAC address. Besides the address it was granted at,
it covers every IPv6 address of that MAC in the LAN's neighbour table: those
present at the grant, and those that appear while it lasts (learn_ipv6).
They are not stored. Each start reads them again from the neighbour table,
which the kernel keeps while the daemon restarts. IPv4 is not learned this
way, because a second IPv4 address of an authorised MAC is how a host that
copies the MAC shows itself, and it stays captive.

The kernel enforces time limits, quotas and rates by itself; the gateway
notices from its counters when a session ran out of quota or went idle,
and ends it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from ipaddress import IPv6Address
from typing import NamedTuple, Protocol

from capport import accounting, boottime, heap
from capport.accounting import SessionTerms
from capport.auth.entitlement import Entitlement
from capport.auth.records import Contact
from capport.config import MAX_SESSION_DAYS, MAX_SESSION_SECONDS, format_days
from capport.enforce.base import DeviceUsage, Enforcer, Grant, Traffic
from capport.errors import (
    CapportError,
    DeviceBlocked,
    DeviceNotFound,
    SessionTooLong,
)
from capport.grant_queue import BatchQueue, GrantRequest, grant_keys
from capport.macindex import SessionsByMac
from capport.maclists import MacLists, override_for
from capport.meters import SessionMeters
from capport.metrics import ACCOUNTING_PASS_SECONDS, GRANT_BATCH_SIZE
from capport.models import Device, EndReason, Epoch, IPAddress, Session
from capport.neighbours import NeighbourTable
from capport.pacing import AccountingPacer, PassRecord
from capport.store.base import (
    BootClock,
    DeviceLimitPolicy,
    SessionRequest,
    SessionStart,
    Store,
)

log = logging.getLogger("capport.gateway")

# One SessionTerms for every session stored without terms.
_NO_TERMS = SessionTerms()


@dataclass(frozen=True, slots=True)
class Clocks:
    """Wall clock for records, monotonic for deadlines, boot clock for restarts."""

    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    boot: Callable[[], float] = boottime.boottime
    boot_id: Callable[[], str] = boottime.boot_id


class SessionObserver(Protocol):
    """Told when sessions start and end, as RADIUS accounting needs to be."""

    def session_started(self, session: Session) -> None:
        """Called after the grant is in the store and the kernel; must not block."""
        ...

    async def session_ending(self, session: Session) -> None:
        """Called before the device is revoked, while its counters still run."""
        ...

    def session_ended(self, session: Session, reason: str) -> None:
        """Called after the session ended; must not block."""
        ...


class _LiveSession(NamedTuple):
    """A stored session that a start keeps, with what it carries into the kernel.

    One tuple per session rather than a dict of terms and one of totals
    beside the list, which took 5 MB each for 100,000 sessions at the
    start's peak.
    """

    session: Session
    remaining: float
    terms: SessionTerms
    total: Traffic


@dataclass(frozen=True, slots=True)
class Listing:
    """The authorised addresses by IP version that an accounting pass read."""

    taken_at: float
    addresses: dict[int, int]


class Gateway:
    """Keeps the store, the kernel set and an in-memory index in step."""

    def __init__(
        self,
        store: Store,
        enforcer: Enforcer,
        neighbours: NeighbourTable,
        session_duration: float,
        clocks: Clocks = Clocks(),
        device_limit_policy: DeviceLimitPolicy = "reject",
        defaults: Entitlement | None = None,
    ) -> None:
        self._store = store
        self._enforcer = enforcer
        self._neighbours = neighbours
        self._duration = session_duration
        self._defaults = defaults or Entitlement("click-through", session_duration)
        self._clocks = clocks
        self._device_limit_policy: DeviceLimitPolicy = device_limit_policy
        # Every authorised address, learned IPv6 ones included, to its session.
        self._by_ip: dict[IPAddress, Session] = {}
        # Advanced whenever an address gains a session, so the responder can
        # keep "not authorised" for an address without one until then.
        self.address_epoch = Epoch()
        self._by_mac = SessionsByMac()
        # MAC to IPv6 addresses from neighbour messages; None until the
        # daemon calls follow_neighbour_events, so grants dump the table.
        self._ipv6_by_mac: dict[str, set[IPv6Address]] | None = None
        # Active sessions by id, in the order they were indexed.
        self._active: dict[int, Session] = {}
        self._learned: dict[int, set[IPv6Address]] = {}
        self._deadlines: dict[int, float] = {}
        self._observers: list[SessionObserver] = []
        self._meters = SessionMeters()
        self._configured_macs: tuple[frozenset[str], frozenset[str]] = (
            frozenset(),
            frozenset(),
        )
        self._mac_lists = MacLists(frozenset(), frozenset())
        self._lock = asyncio.Lock()
        self._grants: BatchQueue[GrantRequest, Session] = BatchQueue(
            self._grant_batch, grant_keys
        )
        self.last_listing: Listing | None = None
        self.accounting_pacer: AccountingPacer | None = None

    # Reading state

    def identify(self, ip: IPAddress) -> Device:
        """Return the device behind ip, as the kernel's neighbour table has it."""
        mac = self._neighbours.lookup(ip)
        if mac is None:
            raise DeviceNotFound(f"no MAC address is known for {ip}")
        return Device(mac, ip)

    def session_for(self, device: Device) -> Session | None:
        """Return the active session that authorises this MAC at this IP, if any."""
        session = self._by_ip.get(device.ip)
        if session is None or session.device.mac != device.mac:
            return None
        return session

    def is_authorised_ip(self, ip: IPAddress) -> bool:
        """Tell whether the device now at ip has a session.

        The index is checked first, so the neighbour lookup only runs for
        addresses that have a session: a device that rejoined with a new
        MAC and got the old address back is not the session's device.
        """
        session = self._by_ip.get(ip)
        if session is None:
            return False
        return self._neighbours.lookup(ip) == session.device.mac

    def has_session_ip(self, ip: IPAddress) -> bool:
        """Return whether any session has ip, whatever device is at ip now."""
        return ip in self._by_ip

    def sessions(self) -> list[Session]:
        """Return the active sessions, oldest first."""
        return sorted(self._active.values(), key=lambda session: session.id)

    def learned_addresses(self, session: Session) -> list[IPv6Address]:
        """Return the IPv6 addresses authorised with session beyond its own."""
        return sorted(self._learned.get(session.id, ()))

    def usage(self, session: Session) -> Traffic:
        """Return the bytes session has sent and received, as of the last pass."""
        return self._meters.total(session.id)

    def bytes_remaining(self, session: Session) -> int | None:
        """Return the bytes session may still use, or None if it has no quota."""
        return self._meters.bytes_left(session.id)

    def terms(self, session: Session) -> SessionTerms:
        """Return the limits of session."""
        return self._meters.terms(session.id)

    @property
    def mac_lists(self) -> MacLists:
        return self._mac_lists

    def is_blocked(self, mac: str) -> bool:
        return mac in self._mac_lists.blocked

    def remaining(self, session: Session) -> float:
        """Return the seconds left in session by the monotonic clock."""
        deadline = self._deadlines.get(session.id)
        if deadline is None:
            return 0.0
        return max(0.0, deadline - self._clocks.monotonic())

    def mac_conflict(self, device: Device) -> Session | None:
        """Return a session of the same MAC at another IP that is still in use.

        A second host copying an authorised MAC leaves both addresses
        active in the neighbour table. A device whose address changed stops
        responding at the old one, whose entry then goes stale, so it may
        sign in again at the new address.
        """
        for session in self._by_mac.of(device.mac):
            other = session.device
            if self._by_ip.get(device.ip) is session:
                continue
            if device.ip.version == 6 or other.ip.version == 6:
                # The IPv6 addresses of an authorised MAC belong to its
                # session, and its IPv4 address needs a login of its own.
                continue
            if self._neighbours.lookup(
                other.ip
            ) == device.mac and self._neighbours.is_active(other.ip):
                log.warning(
                    "MAC %s is authorised at %s and also seen at %s; "
                    "the second address stays captive.",
                    device.mac,
                    other.ip,
                    device.ip,
                )
                return session
        return None

    # Changing state

    @property
    def store(self) -> Store:
        """The store, for the authentication methods that read users and vouchers."""
        return self._store

    @property
    def session_duration(self) -> float:
        """The seconds a session lasts when its entitlement sets no other duration."""
        return self._duration

    def add_observer(self, observer: SessionObserver) -> None:
        """Tell observer about every session that starts or ends from now on."""
        self._observers.append(observer)

    def set_session_duration(self, seconds: float) -> None:
        """Set the duration of sessions granted from now on."""
        self._duration = seconds

    def set_device_limit_policy(self, policy: DeviceLimitPolicy) -> None:
        """Set what a grant beyond a user's or voucher's device limit does."""
        self._device_limit_policy = policy

    def set_defaults(self, defaults: Entitlement) -> None:
        """Set the limits that sessions granted from now on get by default."""
        self._defaults = defaults

    def set_configured_macs(
        self, trusted: Iterable[str], blocked: Iterable[str]
    ) -> None:
        """Set the MAC lists of the configuration file; start() applies them."""
        self._configured_macs = (frozenset(trusted), frozenset(blocked))

    async def start(self) -> None:
        """Reconcile the kernel set with the store in one transaction.

        Each session's remaining time comes from the boot clock (see
        accounting.remaining_seconds), and its byte counts from the store
        and from the table the previous run left in the kernel.
        """
        async with self._lock:
            await self._load_mac_lists()
            now = self._clocks.wall()
            clocks_now = (now, self._clocks.boot(), self._clocks.boot_id())
            # Listing the old table is mostly libnftables and kernel time
            # outside the GIL, so it runs in a thread while the store reads.
            listing = asyncio.create_task(asyncio.to_thread(self._previous_usage))
            try:
                active = await self._store.active_sessions()
                stored = await self._store.session_terms([s.id for s in active])
            finally:
                kernel = await listing
            # A finished task references its result, so kernel can only be
            # freed once the task is gone.
            del listing
            live: list[_LiveSession] = []
            ended: list[tuple[Session, str]] = []
            for session in active:
                terms = stored[session.id][0] if session.id in stored else _NO_TERMS
                remaining = self._remaining_at_start(session, terms, clocks_now)
                blocked = self.is_blocked(session.device.mac)
                if remaining <= 0 or blocked:
                    reason = EndReason.BLOCKED if blocked else EndReason.EXPIRED
                    # A session that ran out while the daemon was down ends
                    # at its expiry, so its record does not count the downtime.
                    ended_at = now
                    if remaining <= 0:
                        ended_at = accounting.expiry_time(
                            session.expires_at, terms, *clocks_now
                        )
                    closed = await self._store.end_session(session.id, reason, ended_at)
                    ended.append((closed or session, reason))
                else:
                    total = accounting.carried_total(
                        stored.get(session.id, (None, None))[1],
                        kernel.get(session.device),
                    )
                    live.append(_LiveSession(session, remaining, terms, total))
            # With 100,000 sessions the stored rows and the old table's
            # counters take tens of MB, and the install that follows is the
            # start's peak of memory, so they go first.
            del stored, kernel
            # asyncio keeps the future that last woke this task, and so its
            # result, until the task yields again. Yielding here frees the
            # store's rows and the old table's counters before the install.
            await asyncio.sleep(0)
            grants = [
                Grant(s.device, left, terms.limits, total)
                for s, left, terms, total in live
            ]
            sessions = [entry.session for entry in live]
            learned = self._neighbour_ipv6(sessions, {s.device.ip: s for s in sessions})
            del sessions
            grants += [
                Grant(Device(s.device.mac, ip), left, terms.limits)
                for s, left, terms, _ in live
                for ip in learned.get(s.id, ())
            ]
            self._enforcer.install(grants)
            del grants
            if ended:
                # Their elements timed out in the kernel while the daemon was
                # down, but their tracked connections may still be open.
                devices = [session.device for session, _ in ended]
                await asyncio.to_thread(self._enforcer.revoke, devices)
            for session, reason in ended:
                for observer in self._observers:
                    observer.session_ended(session, reason)
            self._by_ip.clear()
            self._by_mac.clear()
            self._active.clear()
            self._learned.clear()
            self._deadlines.clear()
            self._meters.clear()
            # One start time for all, so sessions that carried nothing share
            # one meter (see SessionMeters.start).
            metered_from = self._clocks.monotonic()
            for session, left, terms, total in live:
                self._index(session, left)
                self._index_learned(session, learned.get(session.id, ()))
                self._meters.start(session.id, terms, total, metered_from)
            await self._store.record_usage(self._meters.changed())
            await self._store.set_expiry(self._moved_expiries(live, now))
            live_count, ended_count = len(live), len(active) - len(live)
            # The start's lists and dicts of every session go before the
            # heap is trimmed, or glibc would keep their memory.
            del active, live, learned, ended
        heap.release_free_memory()
        log.info(
            "Reconciled the firewall with the store: %d active sessions, "
            "%d ended while the gateway was down.",
            live_count,
            ended_count,
        )

    @staticmethod
    def _moved_expiries(
        live: list[_LiveSession], now: float
    ) -> list[tuple[int, float]]:
        """Return new wall-clock expiries for sessions the wall clock disagrees with.

        After a wall-clock jump, the stored expiry is moved to where the
        boot clock puts the end, so the store and the kernel agree again.
        """
        moved = []
        for session, remaining, _, _ in live:
            expires_at = now + remaining
            if abs(session.expires_at - expires_at) > 1.0:
                moved.append((session.id, expires_at))
        return moved

    @staticmethod
    def _remaining_at_start(
        session: Session, terms: SessionTerms, clocks_now: tuple[float, float, str]
    ) -> float:
        # The clocks are read once per reconcile: reading them per session
        # would make sessions late in a long loop look moved by a clock jump.
        wall_now, boot_now, boot_id = clocks_now
        return accounting.remaining_seconds(
            started_at=session.started_at,
            expires_at=session.expires_at,
            terms=terms,
            wall_now=wall_now,
            boot_now=boot_now,
            boot_id=boot_id,
        )

    def _previous_usage(self) -> Mapping[Device, DeviceUsage]:
        """Read the counters of the table a previous run left, if there is one."""
        try:
            return self._enforcer.usage()
        except CapportError as error:
            log.debug("No counters to carry over from the kernel: %s", error)
            return {}

    async def grant(
        self,
        device: Device,
        entitlement: Entitlement | str,
        *,
        contact: Contact | None = None,
    ) -> Session:
        """Commit a session for device, then authorise it in the kernel.

        A bare method name grants the configured duration. Limits that the
        entitlement leaves open come from the configuration. Grants that
        arrive while another is in progress are committed together (see
        grant_queue). Raises DeviceBlocked, DeviceLimitReached or
        VoucherUnavailable, having granted nothing.
        """
        if isinstance(entitlement, str):
            entitlement = Entitlement(entitlement, self._duration)
        entitlement = self._with_defaults(entitlement)
        if self.is_blocked(device.mac):
            raise DeviceBlocked(f"MAC address {device.mac} is blocked on this network")
        return await self._grants.submit(GrantRequest(device, entitlement, contact))

    async def _grant_batch(
        self, requests: list[GrantRequest]
    ) -> list[Session | Exception]:
        """Grant requests in one store transaction and one nftables transaction.

        A request the store rejects fails alone. If the kernel rejects the
        grants, every session of the batch is ended as "failed" and every
        request gets that error.
        """
        GRANT_BATCH_SIZE.observe(len(requests))
        results: dict[int, Session | Exception] = {}
        async with self._lock:
            now = self._clocks.wall()
            pending: list[int] = []
            replaced: dict[int, Session] = {}
            for index, request in enumerate(requests):
                outcome = await self._settle_address(request.device, now)
                if isinstance(outcome, Session | Exception):
                    results[index] = outcome
                    continue
                if self._by_ip.get(request.device.ip) is not None:
                    replaced[index] = self._by_ip[request.device.ip]
                pending.append(index)
            started = await self._start_sessions(requests, pending, now, results)
            sessions = [start.session for _, start in started]
            learned = self._neighbour_ipv6(sessions, self._by_ip)
            grants = self._kernel_grants([start for _, start in started], learned, now)
            try:
                if grants:
                    self._enforcer.grant(grants)
            except CapportError as error:
                log.error(
                    "Authorising %d new sessions in the firewall failed, so "
                    "they end as failed: %s",
                    len(started),
                    error,
                )
                for index, start in started:
                    await self._store.end_session(start.session.id, "failed", now)
                    results[index] = error
                return [results[index] for index in range(len(requests))]
            for index, start in started:
                session = start.session
                await self._activate(
                    start, replaced.get(index), learned.get(session.id, ()), now
                )
                results[index] = session
        for index, start in started:
            self._log_grant(start.session, requests[index], now, learned)
        return [results[index] for index in range(len(requests))]

    async def _settle_address(
        self, device: Device, now: float
    ) -> Session | Exception | None:
        """Check a request against the sessions that hold its address.

        Returns the session that already authorises the device at a learned
        IPv6 address, an error for a blocked MAC, or None to go ahead.
        """
        if self.is_blocked(device.mac):
            # Blocked while the request was queued.
            return DeviceBlocked(f"MAC address {device.mac} is blocked on this network")
        holder = self._by_ip.get(device.ip)
        if holder is None or device.ip not in self._learned.get(holder.id, ()):
            return None
        if holder.device.mac == device.mac:
            # The address is already authorised with this device's
            # session, which a second login keeps.
            return holder
        await self._end(holder, EndReason.REPLACED, now)
        return None

    async def _start_sessions(
        self,
        requests: list[GrantRequest],
        pending: list[int],
        now: float,
        results: dict[int, Session | Exception],
    ) -> list[tuple[int, SessionStart]]:
        """Commit the pending requests' sessions; put the store's errors in results.

        Returns the sessions started, with the index of their request.
        """
        if not pending:
            return []
        boot = BootClock(self._clocks.boot_id(), self._clocks.boot())
        batch = [
            SessionRequest(
                requests[index].device,
                requests[index].entitlement,
                accounting.terms_for(requests[index].entitlement),
                requests[index].contact,
            )
            for index in pending
        ]
        starts = await self._store.start_sessions(
            batch, now, boot, on_device_limit=self._device_limit_policy
        )
        started = []
        for index, start in zip(pending, starts, strict=True):
            if isinstance(start, Exception):
                results[index] = start
            else:
                started.append((index, start))
        # The store has ended the displaced sessions, so the kernel follows
        # even if authorising the new devices fails afterwards.
        for _, start in started:
            for displaced in start.displaced:
                await self._cut_off(displaced)
        return started

    @staticmethod
    def _kernel_grants(
        starts: list[SessionStart],
        learned: Mapping[int, set[IPv6Address]],
        now: float,
    ) -> list[Grant]:
        """Return the elements of new sessions: their address and learned ones."""
        grants = []
        for start in starts:
            session = start.session
            timeout = session.remaining(now)
            limits = start.terms.limits
            grants.append(Grant(session.device, timeout, limits))
            grants += [
                Grant(Device(session.device.mac, ip), timeout, limits)
                for ip in learned.get(session.id, ())
            ]
        return grants

    async def _activate(
        self,
        start: SessionStart,
        replaced: Session | None,
        learned: Iterable[IPv6Address],
        now: float,
    ) -> None:
        """Index a session the kernel now authorises, and end what it replaced."""
        session = start.session
        if replaced is not None and replaced.id not in self._active:
            # Another grant of the batch displaced it already.
            replaced = None
        if replaced is not None and replaced.device != session.device:
            await self._end(replaced, EndReason.REPLACED, now)
        elif replaced is not None:
            # The store ended it as part of start_sessions.
            self._deadlines.pop(replaced.id, None)
            self._active.pop(replaced.id, None)
            self._by_mac.remove(replaced)
            self._forget_learned(replaced)
            self._meters.forget(replaced.id)
            log.info(
                "Ended session %d of %s: %s.",
                replaced.id,
                replaced.device,
                EndReason.REPLACED,
                extra=_log_fields(replaced),
            )
            for observer in self._observers:
                observer.session_ended(replaced, EndReason.REPLACED)
        self._index(session, session.remaining(now))
        self._index_learned(session, learned)
        self._meters.start(session.id, start.terms, Traffic(), self._clocks.monotonic())
        for observer in self._observers:
            observer.session_started(session)

    @staticmethod
    def _log_grant(
        session: Session,
        request: GrantRequest,
        now: float,
        learned: Mapping[int, set[IPv6Address]],
    ) -> None:
        log.info(
            "Granted session %d to %s by %s for %.0f s, with %d more IPv6 "
            "addresses of the MAC.",
            session.id,
            session.device,
            request.entitlement.method,
            session.remaining(now),
            len(learned.get(session.id, ())),
            extra=_log_fields(session),
        )

    def would_learn(self, mac: str, ip: IPv6Address) -> bool:
        """Tell cheaply whether learn_ipv6(mac, ip) could authorise anything."""
        return ip not in self._by_ip and mac in self._by_mac

    async def learn_ipv6(self, mac: str, ip: IPv6Address) -> bool:
        """Authorise ip with the active session of mac, if it has one.

        Called for each IPv6 neighbour entry the kernel adds or changes on
        the LAN. Returns whether ip was newly authorised.
        """
        if not self.would_learn(mac, ip):
            return False
        async with self._lock:
            session = self._by_mac.first(mac)
            if session is None or ip in self._by_ip:
                return False
            remaining = self.remaining(session)
            if remaining <= 0:
                return False
            limits = self.terms(session).limits
            self._enforcer.grant([Grant(Device(mac, ip), remaining, limits)])
            self._index_learned(session, [ip])
        log.info(
            "Authorised %s with session %d of %s for its remaining %.0f s.",
            ip,
            session.id,
            session.device,
            remaining,
        )
        return True

    def follow_neighbour_events(self) -> None:
        """Keep a MAC-to-IPv6 map from neighbour messages instead of dumping.

        Without it every grant dumps the kernel's IPv6 neighbour table,
        whose cost grows with the LAN. The caller feeds note_ipv6 with every
        message and calls learn_all_ipv6 to fill the map and after overflows.
        """
        self._ipv6_by_mac = {}

    def note_ipv6(self, mac: str, ip: IPv6Address) -> None:
        """Record that the kernel resolved ip to mac on the LAN."""
        if self._ipv6_by_mac is not None:
            self._ipv6_by_mac.setdefault(mac, set()).add(ip)

    async def learn_all_ipv6(self) -> int:
        """Authorise every IPv6 neighbour entry of an authorised MAC; return how many.

        This catches up after neighbour messages were lost.
        """
        learned = 0
        table = self._neighbours.ipv6_neighbours()
        if self._ipv6_by_mac is not None:
            self._ipv6_by_mac = {mac: set(ips) for mac, ips in table.items()}
        for mac, addresses in table.items():
            for ip in addresses:
                learned += await self.learn_ipv6(mac, ip)
        return learned

    def _with_defaults(self, entitlement: Entitlement) -> Entitlement:
        """Fill the limits entitlement leaves open from the configured ones."""
        defaults = self._defaults
        idle = entitlement.idle_timeout
        return replace(
            entitlement,
            quota=entitlement.quota or defaults.quota,
            idle_timeout=defaults.idle_timeout if idle is None else idle,
            bandwidth=entitlement.bandwidth or defaults.bandwidth,
        )

    async def revoke_mac(self, mac: str, reason: str) -> list[Session]:
        """End every active session of mac; return the sessions ended."""
        async with self._lock:
            now = self._clocks.wall()
            matching = self._by_mac.of(mac)
            return [await self._end(s, reason, now) for s in matching]

    async def extend_mac(self, mac: str, seconds: float) -> list[Session]:
        """Add seconds to every active session of mac; return them extended.

        The store commits the new end first, then the kernel elements of the
        session's addresses get the new timeout, so both deadlines move. If
        a session would then last more than MAX_SESSION_SECONDS from now,
        raises SessionTooLong and extends none.
        """
        async with self._lock:
            matching = self._by_mac.of(mac)
            for session in matching:
                self._check_extension(session, seconds)
            return [await self._extend(session, seconds) for session in matching]

    def _check_extension(self, session: Session, seconds: float) -> None:
        remaining = self.remaining(session)
        if remaining + seconds <= MAX_SESSION_SECONDS:
            return
        allowed = max(0, int(MAX_SESSION_SECONDS - remaining))
        end = remaining + seconds
        raise SessionTooLong(
            f"extending session {session.id} of {session.device} by {seconds:.0f} s "
            f"would end it in {end:.0f} s ({format_days(end)}), after the maximum "
            f"of {MAX_SESSION_DAYS} days; extend it by at most {allowed} s "
            f"({format_days(allowed)})"
        )

    async def end(self, session: Session, reason: str) -> Session:
        """End one session and cut the device off."""
        async with self._lock:
            return await self._end(session, reason, self._clocks.wall())

    async def expire_due(self) -> list[Session]:
        """End the sessions whose monotonic deadline has passed."""
        now = self._clocks.monotonic()
        due = [
            session
            for session in self._active.values()
            if self._deadlines.get(session.id, 0.0) <= now
        ]
        ended = []
        for session in due:
            ended.append(await self.end(session, EndReason.EXPIRED))
        return ended

    async def run_expiry(self, interval: float = 1.0) -> None:
        """End sessions as their time runs out, until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.expire_due()
            except CapportError:
                log.exception("Ending expired sessions failed; retrying.")

    # Accounting

    async def account(self) -> list[Session]:
        """Read the kernel's counters once; end sessions out of quota or idle.

        Return the sessions ended. The usage of every session is stored.
        """
        with ACCOUNTING_PASS_SECONDS.time():
            usage = await asyncio.to_thread(self._enforcer.usage)
            now = self._clocks.monotonic()
            sessions = list(self._active.values())
            readings = self._with_learned(usage)
            ending = self._meters.read(sessions, readings, now)
            del readings
            await self._store.record_usage(self._meters.changed())
        self.last_listing = Listing(self._clocks.wall(), _address_versions(usage))
        return [await self.end(session, reason) for session, reason in ending]

    def _with_learned(
        self, usage: Mapping[Device, DeviceUsage]
    ) -> Mapping[Device, DeviceUsage]:
        """Return usage with the learned IPv6 addresses' counters added in.

        A session with learned addresses reads the sum of all its addresses
        under its own device. The others read their device's entry as it is,
        so a pass over 100,000 sessions builds no second reading of each.
        """
        sums = {}
        for session_id in self._learned:
            session = self._active.get(session_id)
            if session is None:
                continue
            reading = self._session_usage(session, usage)
            if reading is not None:
                sums[session.device] = reading
        return _SummedUsage(sums, usage) if sums else usage

    def _session_usage(
        self, session: Session, usage: Mapping[Device, DeviceUsage]
    ) -> DeviceUsage | None:
        """Add up the counters of a session's address and its learned IPv6 ones.

        NOTE: the kernel keeps quota objects per address, so it caps each
        address at the whole quota. The sum read here ends the session once
        all its addresses together reach it, one accounting pass later.
        """
        devices = [session.device] + [
            Device(session.device.mac, ip) for ip in self._learned.get(session.id, ())
        ]
        readings = [usage[d] for d in devices if d in usage]
        if not readings:
            return None
        up = sum(r.traffic.up for r in readings)
        down = sum(r.traffic.down for r in readings)
        quota_used: dict[str, int] = {}
        for reading in readings:
            for direction, used in reading.quota_used.items():
                quota_used[direction] = quota_used.get(direction, 0) + used
        return DeviceUsage(Traffic(up, down), quota_used)

    async def run_accounting(self, interval: float) -> None:
        """Run accounting passes until cancelled, interval seconds apart or more.

        The pacer stretches the rest after a costly pass so accounting keeps
        under 4 % of one core (capport.pacing).
        """
        pacer = AccountingPacer(interval)
        self.accounting_pacer = pacer
        while True:
            await asyncio.sleep(pacer.interval)
            pacer.start_pass()
            try:
                await self.account()
            except CapportError:
                log.exception("The accounting pass failed; retrying.")
            # The pass's reading of every counter is freed once this task
            # yields, and glibc keeps freed heap memory unless asked to
            # return it. After a pass over 100,000 sessions trimming took
            # under a millisecond, which counts as part of the pass.
            await asyncio.sleep(0)
            heap.release_free_memory()
            record = pacer.end_pass()
            if record.changed:
                _log_interval_change(record, interval)

    # Trusted and blocked MACs

    async def change_mac_list(self, mac: str, command: str) -> list[Session]:
        """Apply trust, untrust, block or unblock to mac; return sessions ended.

        The change is stored, so it outlasts restarts. Blocking a MAC ends
        its sessions.
        """
        async with self._lock:
            override = override_for(self._mac_lists, mac, command)
            if override is not None:
                await self._store.set_mac_override(mac, override, self._clocks.wall())
                await self._load_mac_lists()
            ended = []
            if self.is_blocked(mac):
                now = self._clocks.wall()
                for session in self._by_mac.of(mac):
                    ended.append(await self._end(session, EndReason.BLOCKED, now))
        log.info("MAC %s: %s (now %s).", mac, command, self._mac_lists.policy(mac))
        return ended

    async def _load_mac_lists(self) -> None:
        trusted, blocked = self._configured_macs
        overrides = await self._store.mac_overrides()
        self._mac_lists = MacLists.build(trusted, blocked, overrides)
        self._enforcer.set_mac_lists(self._mac_lists.trusted, self._mac_lists.blocked)

    # Helpers; the caller holds the lock.

    async def _cut_off(self, session: Session) -> None:
        """Revoke a session the store has already ended, and unindex it."""
        for observer in self._observers:
            await observer.session_ending(session)
        indexed = self._active.get(session.id, session)
        learned = self._forget_learned(indexed)
        devices = [session.device] + [Device(session.device.mac, ip) for ip in learned]
        await asyncio.to_thread(self._enforcer.revoke, devices)
        # The store's copy carries the end time, so compare ids, not values.
        self._unindex(indexed)
        self._meters.forget(session.id)
        log.info(
            "Ended session %d of %s: %s.",
            session.id,
            session.device,
            session.end_reason,
            extra=_log_fields(session),
        )
        for observer in self._observers:
            observer.session_ended(session, session.end_reason or "")

    def _index(self, session: Session, remaining: float) -> None:
        self._by_ip[session.device.ip] = session
        self.address_epoch.advance()
        self._by_mac.add(session)
        self._active[session.id] = session
        self._deadlines[session.id] = self._clocks.monotonic() + remaining

    async def _extend(self, session: Session, seconds: float) -> Session:
        """Move one session's end in the store, the kernel and the indexes.

        The elements are created again with the session's limits and the
        bytes counted so far, so quotas keep what was used. Their counters
        start at zero, which the meter takes as its new base.

        NOTE: RADIUS accounting reads the elements' counters directly, so
        its octet counts of an extended session start again from zero.
        """
        now = self._clocks.wall()
        remaining = self.remaining(session) + seconds
        expires_at = now + remaining
        old_terms = self._meters.terms(session.id)
        terms = accounting.with_boot_deadline(
            old_terms, self._clocks.boot_id(), self._clocks.boot(), remaining
        )
        used = self._meters.total(session.id)
        grants = [Grant(session.device, remaining, terms.limits, used)]
        grants += [
            Grant(Device(session.device.mac, ip), remaining, terms.limits)
            for ip in sorted(self._learned.get(session.id, ()))
        ]
        await self._store.set_expiry([(session.id, expires_at)])
        await self._store.save_terms(session.id, terms)
        try:
            self._enforcer.grant(grants)
        except CapportError:
            await self._store.set_expiry([(session.id, session.expires_at)])
            await self._store.save_terms(session.id, old_terms)
            raise
        self._meters.start(session.id, terms, used, self._clocks.monotonic())
        # save_terms replaced the row with the usage columns, so write them back.
        record = self._meters.record(session.id)
        await self._store.record_usage([] if record is None else [record])
        updated = replace(session, expires_at=expires_at)
        self._replace_indexed(session, updated)
        self._deadlines[session.id] = self._clocks.monotonic() + remaining
        log.info(
            "Extended session %d of %s by %.0f s to %.0f s.",
            session.id,
            session.device,
            seconds,
            remaining,
        )
        return updated

    def _replace_indexed(self, old: Session, new: Session) -> None:
        """Put new in every index entry that contains old, learned addresses too."""
        for ip in [old.device.ip, *self._learned.get(old.id, ())]:
            if self._by_ip.get(ip) is old:
                self._by_ip[ip] = new
        self._by_mac.add(new)
        self._active[old.id] = new

    def _unindex(self, session: Session) -> None:
        """Remove an ended session from the indexes; its learned ones are gone."""
        indexed = self._by_ip.get(session.device.ip)
        if indexed is not None and indexed.id == session.id:
            del self._by_ip[session.device.ip]
        self._by_mac.remove(session)
        self._active.pop(session.id, None)
        self._deadlines.pop(session.id, None)

    def _index_learned(
        self, session: Session, addresses: Iterable[IPv6Address]
    ) -> None:
        addresses = list(addresses)
        if not addresses:
            # Most sessions learn no address, and an empty set costs 216 bytes.
            return
        learned = self._learned.setdefault(session.id, set())
        for ip in addresses:
            learned.add(ip)
            self._by_ip[ip] = session
        self.address_epoch.advance()

    def _forget_learned(self, session: Session) -> list[IPv6Address]:
        """Unindex the learned addresses that session still holds; return them.

        A newer session of the same MAC may have taken some over.
        """
        held = [
            ip
            for ip in self._learned.pop(session.id, set())
            if self._by_ip.get(ip) is session
        ]
        for ip in held:
            del self._by_ip[ip]
        return sorted(held)

    def _neighbour_ipv6(
        self, sessions: list[Session], authorised: Mapping[IPAddress, Session]
    ) -> dict[int, set[IPv6Address]]:
        """Return the IPv6 neighbour addresses of each session's MAC, by session id.

        Each address goes to one session only. An address that authorised
        maps to a session of another MAC is left to that session. Sessions
        without such addresses are left out, because an empty set per
        session takes 21 MB with 100,000 sessions.
        """
        by_mac: Mapping[str, Iterable[IPv6Address]] = {}
        if self._ipv6_by_mac is not None:
            by_mac = self._ipv6_by_mac
        elif sessions:
            by_mac = self._neighbours.ipv6_neighbours()
        taken: set[IPv6Address] = set()
        found: dict[int, set[IPv6Address]] = {}
        for session in sessions:
            mac = session.device.mac
            addresses = set()
            for ip in by_mac.get(mac, ()):
                other = authorised.get(ip)
                if ip in taken or (other is not None and other.device.mac != mac):
                    continue
                if ip != session.device.ip:
                    addresses.add(ip)
                    taken.add(ip)
            if addresses:
                found[session.id] = addresses
        return found

    async def _end(self, session: Session, reason: str, now: float) -> Session:
        for observer in self._observers:
            await observer.session_ending(session)
        learned = self._forget_learned(session)
        devices = [session.device] + [Device(session.device.mac, ip) for ip in learned]
        # Deleting conntrack entries walks the kernel's table (milliseconds
        # with many connections), so it runs off the event loop.
        await asyncio.to_thread(self._enforcer.revoke, devices)
        record = self._meters.record(session.id)
        if record is not None:
            await self._store.record_usage([record])
        ended = await self._store.end_session(session.id, reason, now)
        self._unindex(session)
        self._meters.forget(session.id)
        log.info(
            "Ended session %d of %s: %s.",
            session.id,
            session.device,
            reason,
            extra=_log_fields(session),
        )
        for observer in self._observers:
            observer.session_ended(ended or session, reason)
        return ended or session


class _SummedUsage(Mapping[Device, DeviceUsage]):
    """Readings of the kernel, with sums in place of some devices' own.

    Lookups go to sums first and then to usage, which may build each reading
    when it is looked up (see listing.DeviceUsageMap). Iteration and length
    are those of usage.
    """

    __slots__ = ("_sums", "_usage")

    def __init__(
        self, sums: dict[Device, DeviceUsage], usage: Mapping[Device, DeviceUsage]
    ) -> None:
        self._sums = sums
        self._usage = usage

    def __getitem__(self, device: Device) -> DeviceUsage:
        summed = self._sums.get(device)
        return summed if summed is not None else self._usage[device]

    def __iter__(self) -> Iterator[Device]:
        return iter(self._usage)

    def __len__(self) -> int:
        return len(self._usage)


def _log_fields(session: Session) -> dict[str, object]:
    """Return the ids of session for a log record's key=value fields."""
    return {
        "session": session.id,
        "mac": session.device.mac,
        "ip": str(session.device.ip),
        "method": session.method,
    }


def _log_interval_change(record: PassRecord, configured: float) -> None:
    if record.stretched:
        log.info(
            "An accounting pass used %.2f s of CPU, so the next passes wait "
            "%.0f s instead of the configured %.0f s. Idle timeouts and usage "
            "are checked that much less often.",
            record.cpu_seconds,
            record.interval,
            configured,
        )
    else:
        log.info(
            "Accounting passes run every %.0f s again, as configured "
            "(the last used %.2f s of CPU).",
            configured,
            record.cpu_seconds,
        )


def _address_versions(usage: Mapping[Device, DeviceUsage]) -> dict[int, int]:
    """Count the devices of a usage reading by IP version.

    The nftables enforcer's reading counts them from its keys; building
    every device to ask for its version took 0.06 s a pass at 100,000.
    """
    counted = getattr(usage, "address_versions", None)
    if counted is not None:
        return dict(counted())
    return dict(Counter(device.ip.version for device in usage))

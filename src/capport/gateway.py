"""The control plane: grants, revocations, expiry and reconciliation.

The order of a grant is fixed: the session is committed to the store, then
the kernel set is updated, then the caller may answer the client. The store
is the source of truth; the kernel set is rebuilt from it at every start.

A session belongs to a MAC address. Besides the address it was granted at,
it covers every IPv6 address of that MAC in the LAN's neighbour table: those
present at the grant, and those that appear while it lasts (learn_ipv6).
They are not stored. Each start reads them again from the neighbour table,
which the kernel keeps while the daemon restarts. IPv4 is not learned this
way, because a second IPv4 address of an authorised MAC is how a host that
copies the MAC shows itself, and it stays captive.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Protocol

from capport.auth.entitlement import Entitlement
from capport.auth.records import Contact
from capport.enforce.base import Enforcer, Grant
from capport.errors import CapportError, DeviceNotFound
from capport.models import Device, EndReason, IPAddress, Session
from capport.neighbours import NeighbourTable
from capport.store.base import DeviceLimitPolicy, Store

log = logging.getLogger("capport.gateway")


@dataclass(frozen=True, slots=True)
class Clocks:
    """Wall clock for records, monotonic clock for deadlines."""

    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic


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
    ) -> None:
        self._store = store
        self._enforcer = enforcer
        self._neighbours = neighbours
        self._duration = session_duration
        self._clocks = clocks
        self._device_limit_policy: DeviceLimitPolicy = device_limit_policy
        # Every authorised address, learned IPv6 ones included, to its session.
        self._by_ip: dict[IPAddress, Session] = {}
        self._by_mac: dict[str, Session] = {}
        # Active sessions by id, in the order they were indexed.
        self._active: dict[int, Session] = {}
        self._learned: dict[int, set[IPv6Address]] = {}
        self._deadlines: dict[int, float] = {}
        self._observers: list[SessionObserver] = []
        self._lock = asyncio.Lock()

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
        """Tell whether the device now at ip holds a session.

        The index is checked first, so the neighbour lookup only runs for
        addresses that have a session: a device that rejoined with a new
        MAC and got the old address back is not the session's device.
        """
        session = self._by_ip.get(ip)
        if session is None:
            return False
        return self._neighbours.lookup(ip) == session.device.mac

    def sessions(self) -> list[Session]:
        """Return the active sessions, oldest first."""
        return sorted(self._active.values(), key=lambda session: session.id)

    def learned_addresses(self, session: Session) -> list[IPv6Address]:
        """Return the IPv6 addresses authorised with session beyond its own."""
        return sorted(self._learned.get(session.id, ()))

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
        answering at the old one, whose entry then goes stale, so it may
        sign in again at the new address.
        """
        for session in self._active.values():
            other = session.device
            if other.mac != device.mac or self._by_ip.get(device.ip) is session:
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

    async def start(self) -> None:
        """Reconcile the kernel set with the store in one transaction."""
        async with self._lock:
            now = self._clocks.wall()
            active = await self._store.active_sessions()
            live = []
            ended = []
            for session in active:
                if session.remaining(now) <= 0:
                    await self._store.end_session(session.id, EndReason.EXPIRED, now)
                    ended.append(session)
                else:
                    live.append(session)
            grants = [Grant(s.device, s.remaining(now)) for s in live]
            learned = self._neighbour_ipv6(live, {s.device.ip: s for s in live})
            grants += [
                Grant(Device(s.device.mac, ip), s.remaining(now))
                for s in live
                for ip in learned.get(s.id, ())
            ]
            self._enforcer.install(grants)
            if ended:
                # Their elements timed out in the kernel while the daemon was
                # down, but their tracked connections may still be open.
                devices = [session.device for session in ended]
                await asyncio.to_thread(self._enforcer.revoke, devices)
            for session in ended:
                for observer in self._observers:
                    observer.session_ended(session, EndReason.EXPIRED)
            self._by_ip.clear()
            self._by_mac.clear()
            self._active.clear()
            self._learned.clear()
            self._deadlines.clear()
            for session in live:
                self._index(session, session.remaining(now))
                self._index_learned(session, learned.get(session.id, ()))
        log.info(
            "Reconciled the firewall with the store: %d active sessions, "
            "%d ended while the gateway was down.",
            len(live),
            len(active) - len(live),
        )

    async def grant(
        self,
        device: Device,
        entitlement: Entitlement | str,
        *,
        contact: Contact | None = None,
    ) -> Session:
        """Commit a session for device, then authorise it in the kernel.

        A bare method name grants the configured session duration. Raises
        DeviceLimitReached or VoucherUnavailable, having granted nothing.
        """
        if isinstance(entitlement, str):
            entitlement = Entitlement(entitlement, self._duration)
        async with self._lock:
            now = self._clocks.wall()
            replaced = self._by_ip.get(device.ip)
            if replaced is not None and device.ip in self._learned.get(replaced.id, ()):
                if replaced.device.mac == device.mac:
                    # The address is already authorised with this device's
                    # session, which a second login keeps.
                    return replaced
                await self._end(replaced, EndReason.REPLACED, now)
                replaced = None
            started = await self._store.start_session(
                device,
                entitlement,
                now,
                contact=contact,
                on_device_limit=self._device_limit_policy,
            )
            session = started.session
            timeout = session.remaining(now)
            # The store has ended the displaced sessions, so the kernel
            # follows even if authorising the new device fails below.
            for displaced in started.displaced:
                await self._cut_off(displaced)
            learned = self._neighbour_ipv6([session], self._by_ip)[session.id]
            grants = [Grant(device, timeout)]
            grants += [Grant(Device(device.mac, ip), timeout) for ip in learned]
            try:
                self._enforcer.grant(grants)
            except CapportError:
                await self._store.end_session(session.id, "failed", now)
                raise
            if replaced is not None and replaced.device != device:
                await self._end(replaced, EndReason.REPLACED, now)
            elif replaced is not None:
                # The store ended it as part of start_session.
                self._deadlines.pop(replaced.id, None)
                self._active.pop(replaced.id, None)
                self._forget_learned(replaced)
                for observer in self._observers:
                    observer.session_ended(replaced, EndReason.REPLACED)
            self._index(session, timeout)
            self._index_learned(session, learned)
            for observer in self._observers:
                observer.session_started(session)
        log.info(
            "Granted session %d to %s by %s for %.0f s, with %d more IPv6 "
            "addresses of the MAC.",
            session.id,
            device,
            entitlement.method,
            timeout,
            len(learned),
        )
        return session

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
            session = self._by_mac.get(mac)
            if session is None or ip in self._by_ip:
                return False
            remaining = self.remaining(session)
            if remaining <= 0:
                return False
            self._enforcer.grant([Grant(Device(mac, ip), remaining)])
            self._index_learned(session, [ip])
        log.info(
            "Authorised %s with session %d of %s for its remaining %.0f s.",
            ip,
            session.id,
            session.device,
            remaining,
        )
        return True

    async def learn_all_ipv6(self) -> int:
        """Authorise every IPv6 neighbour entry of an authorised MAC; return how many.

        This catches up after neighbour messages were lost.
        """
        learned = 0
        for mac, addresses in self._neighbours.ipv6_neighbours().items():
            for ip in addresses:
                learned += await self.learn_ipv6(mac, ip)
        return learned

    async def revoke_mac(self, mac: str, reason: str) -> list[Session]:
        """End every active session of mac; return the sessions ended."""
        async with self._lock:
            now = self._clocks.wall()
            matching = [s for s in self._active.values() if s.device.mac == mac]
            return [await self._end(s, reason, now) for s in matching]

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
        log.info(
            "Ended session %d of %s: %s.",
            session.id,
            session.device,
            session.end_reason,
        )
        for observer in self._observers:
            observer.session_ended(session, session.end_reason or "")

    def _index(self, session: Session, remaining: float) -> None:
        self._by_ip[session.device.ip] = session
        current = self._by_mac.get(session.device.mac)
        if current is None or current.id not in self._deadlines:
            self._by_mac[session.device.mac] = session
        self._active[session.id] = session
        self._deadlines[session.id] = self._clocks.monotonic() + remaining

    def _unindex(self, session: Session) -> None:
        """Remove an ended session from the indexes; its learned ones are gone."""
        indexed = self._by_ip.get(session.device.ip)
        if indexed is not None and indexed.id == session.id:
            del self._by_ip[session.device.ip]
        current = self._by_mac.get(session.device.mac)
        if current is not None and current.id == session.id:
            del self._by_mac[session.device.mac]
            for other in self._active.values():
                if other.id != session.id and other.device.mac == session.device.mac:
                    self._by_mac[other.device.mac] = other
                    break
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
        maps to a session of another MAC is left to that session.
        """
        by_mac = self._neighbours.ipv6_neighbours() if sessions else {}
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
        ended = await self._store.end_session(session.id, reason, now)
        self._unindex(session)
        log.info("Ended session %d of %s: %s.", session.id, session.device, reason)
        for observer in self._observers:
            observer.session_ended(ended or session, reason)
        return ended or session

"""The running gateway's parts that the admin API reads and changes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from capport.admin.history import Sampler
from capport.admin.schemas import Client
from capport.gateway import Gateway
from capport.intercept.server import ResponderStats
from capport.lan import Lan
from capport.models import Session
from capport.store.base import Store


@dataclass
class AdminContext:
    """The parts of a running gateway that the admin API serves.

    table_exists queries the kernel for whether the nftables table is there,
    and lan reads the LAN interface's addresses for checking grants. Both
    block, so the API calls them off the event loop.
    """

    gateway: Gateway
    store: Store
    sampler: Sampler
    table_name: str
    table_exists: Callable[[], bool]
    responder_stats: Callable[[], ResponderStats | None] = lambda: None
    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    started: float = field(default_factory=time.monotonic)
    lan: Callable[[], Lan] = field(kw_only=True)

    def client(self, session: Session) -> Client:
        """Describe session with its remaining time and the last counters."""
        remaining = self.gateway.remaining(session)
        usage = self.gateway.usage(session)
        learned = self.gateway.learned_addresses(session)
        return Client(
            session=session.id,
            mac=session.device.mac,
            ip=str(session.device.ip),
            method=session.method,
            subject=session.subject,
            since=session.started_at,
            expires=self.wall() + remaining,
            remaining=round(remaining, 1),
            bytes_up=usage.up,
            bytes_down=usage.down,
            learned_ipv6=[str(ip) for ip in learned],
        )

"""Trusted and blocked MAC addresses as the admin API keeps them in the store.

A trusted MAC is meant to be online without login, and a blocked MAC never
admitted. Each MAC has one policy: putting it on one list takes it off the
other. Blocking a MAC ends its sessions at once.
"""

from __future__ import annotations

from collections.abc import Callable

from capport.gateway import Gateway
from capport.models import EndReason, Session
from capport.store.base import Store

TRUSTED = "trusted"
BLOCKED = "blocked"
NEITHER = "neither"


class StoredMacLists:
    """The MAC lists in the store, changed through the gateway."""

    def __init__(self, store: Store, gateway: Gateway, wall: Callable[[], float]):
        self._store = store
        self._gateway = gateway
        self._wall = wall

    async def members(self, policy: str) -> list[str]:
        """Return the MACs with policy, sorted."""
        overrides = await self._store.mac_overrides()
        return sorted(mac for mac, stored in overrides.items() if stored == policy)

    async def policy(self, mac: str) -> str:
        return (await self._store.mac_overrides()).get(mac, NEITHER)

    async def put(self, mac: str, policy: str) -> list[Session]:
        """Give mac policy; return the sessions a block ended.

        NOTE: only the store and the sessions change here. The firewall
        does not yet let a trusted MAC through without login or drop a
        blocked MAC's traffic. The portal does not yet reject a blocked
        MAC's sign-in either. Both belong where the gateway starts, which
        would load these lists into the kernel sets.
        """
        await self._store.set_mac_override(mac, policy, self._wall())
        if policy == BLOCKED:
            return await self._gateway.revoke_mac(mac, EndReason.BLOCKED)
        return []

    async def remove(self, mac: str, policy: str) -> bool:
        """Take mac off the list of policy; tell whether it was on it."""
        if await self.policy(mac) != policy:
            return False
        await self._store.set_mac_override(mac, NEITHER, self._wall())
        return True

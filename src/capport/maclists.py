"""Trusted and blocked MAC addresses: the configured lists and runtime changes.

A trusted MAC is never captive and needs no login. A blocked MAC is never
admitted. The configuration file sets both lists. `capport trust`,
`untrust`, `block` and `unblock` change them at runtime, and the store keeps
those changes as overrides, which outlast restarts and take precedence over
the file. A MAC in both lists counts as blocked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

TRUSTED = "trusted"
BLOCKED = "blocked"
# An override that removes a MAC from whichever list the file puts it in.
NEITHER = "neither"

POLICIES = (TRUSTED, BLOCKED, NEITHER)


@dataclass(frozen=True, slots=True)
class MacLists:
    """The effective lists: the file's, with the runtime overrides applied."""

    trusted: frozenset[str]
    blocked: frozenset[str]

    @classmethod
    def build(
        cls,
        trusted: Iterable[str],
        blocked: Iterable[str],
        overrides: Mapping[str, str],
    ) -> MacLists:
        policy = {mac: TRUSTED for mac in trusted}
        policy.update({mac: BLOCKED for mac in blocked})
        policy.update(overrides)
        return cls(
            trusted=frozenset(m for m, p in policy.items() if p == TRUSTED),
            blocked=frozenset(m for m, p in policy.items() if p == BLOCKED),
        )

    def policy(self, mac: str) -> str:
        if mac in self.blocked:
            return BLOCKED
        if mac in self.trusted:
            return TRUSTED
        return NEITHER


def override_for(lists: MacLists, mac: str, command: str) -> str | None:
    """Return the override that command (trust, untrust, block, unblock) stores.

    None means the command changes nothing: untrust of a MAC that is not
    trusted, or unblock of one that is not blocked.
    """
    current = lists.policy(mac)
    if command == "trust":
        return TRUSTED
    if command == "block":
        return BLOCKED
    if command == "untrust":
        return NEITHER if current == TRUSTED else None
    if command == "unblock":
        return NEITHER if current == BLOCKED else None
    raise ValueError(
        f"unknown MAC list command {command!r}: expected trust, untrust, block "
        "or unblock"
    )

"""The configuration keys a reload (SIGHUP) can apply to a running gateway.

Only the keys in LIVE_KEYS change on reload. Every other key needs a
restart, because the parts that read it (listeners, the store, the
portal's pages, the probe table, the walled garden, RADIUS, the
accounting loop) are built once at start. The README's reload table
lists the same keys.
"""

from __future__ import annotations

from typing import Any

from capport.config import Config

# Keys whose new value takes effect on reload, by section. The session
# limits apply to sessions granted from then on, not to existing ones.
LIVE_KEYS = {
    "session": {
        "duration",
        "token_lifetime",
        "idle_timeout",
        "quota_up",
        "quota_down",
        "quota_total",
        "bandwidth_up",
        "bandwidth_down",
    },
    "firewall": {"allow_tcp_ports", "allow_udp_ports"},
    "access": {"trusted_macs", "blocked_macs"},
    "log": {"level", "format", "levels", "access_log", "repeat_window"},
    "auth": {"device_limit_policy"},
}


def changed_keys(old: Config, new: Config) -> list[str]:
    """Return the dotted keys whose values differ between old and new."""
    changed = []
    old_values = old.model_dump()
    new_values = new.model_dump()
    for section, values in new_values.items():
        if not isinstance(values, dict) or not isinstance(old_values[section], dict):
            # A list of tables, such as [[probes]], and an optional section
            # that was added or removed, such as [radius], change as a whole.
            if old_values[section] != values:
                changed.append(section)
            continue
        for key, value in values.items():
            if old_values[section].get(key) != value:
                changed.append(f"{section}.{key}")
    return changed


# Keys the daemon never reads, because only `capport dhcp-config` does.
# The other provisioning keys set the daemon's router advertisements.
DHCP_ONLY_KEYS = {"provisioning": {"dhcp_range", "lease_time", "hosts"}}


def restart_keys(old: Config, new: Config) -> list[str]:
    """Return the changed keys that only a restart applies."""
    return [
        key
        for key in changed_keys(old, new)
        if not _is_live(key) and not _is_dhcp_only(key)
    ]


def _is_dhcp_only(dotted: str) -> bool:
    section, _, key = dotted.partition(".")
    return key in DHCP_ONLY_KEYS.get(section, set())


def _is_live(dotted: str) -> bool:
    section, _, key = dotted.partition(".")
    return key in LIVE_KEYS.get(section, set())


def merged(old: Config, new: Config) -> Config:
    """Return old with the live keys of new applied."""
    update: dict[str, Any] = {}
    for section, keys in LIVE_KEYS.items():
        values = {key: getattr(getattr(new, section), key) for key in keys}
        update[section] = getattr(old, section).model_copy(update=values)
    return old.model_copy(update=update)

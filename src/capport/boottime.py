"""The kernel's CLOCK_BOOTTIME and boot id, which session deadlines are stored on.

CLOCK_BOOTTIME counts seconds since boot, suspend included, and no change of
the wall clock moves it. Its values compare only within one boot, so each
stored deadline is kept with the boot id that the kernel assigns at boot
(/proc/sys/kernel/random/boot_id, see random(4)).
"""

from __future__ import annotations

import time
from pathlib import Path

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")


def boottime() -> float:
    """Return CLOCK_BOOTTIME in seconds."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def boot_id() -> str:
    """Return the id of the running boot, or "" where the kernel has none."""
    try:
        return BOOT_ID_PATH.read_text().strip()
    except OSError:
        return ""

"""Returning freed heap memory to the kernel after large one-off work."""

from __future__ import annotations

import ctypes
import gc
from typing import Any


def _load_malloc_trim() -> Any:
    try:
        function = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        # Not glibc (musl has no malloc_trim), so there is nothing to call.
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return function


_MALLOC_TRIM = _load_malloc_trim()


def release_free_memory() -> None:
    """Return the heap memory that is free to the kernel, where glibc can.

    glibc keeps freed memory in its heap for reuse, so after a start that
    read 100,000 sessions and the libnftables listing of their elements, the
    resident size would stay near its peak for the life of the process.
    malloc_trim(0) gives back every whole free page of the heap, not only
    its top. It takes milliseconds.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def freeze_start_objects() -> None:
    """Leave every object alive now out of later garbage collections.

    A full collection walks every tracked object and stops the event loop
    meanwhile: 26 ms for the 90,000 objects the daemon's imports create, and
    68 ms once 100,000 sessions are indexed. What exists after the start
    (modules, configuration, the sessions reconciled) lives about as long
    as the process, so gc.freeze() moves it where no collection looks.
    Those objects are still freed by reference counting when dropped; only
    a reference cycle among them would stay until exit.
    """
    gc.collect()
    gc.freeze()

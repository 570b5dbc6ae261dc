"""Returning freed heap memory to the kernel after large one-off work."""

from __future__ import annotations

import ctypes
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

"""Durable session storage."""

from capport.store.base import Store
from capport.store.sqlite import SQLiteStore

__all__ = ["SQLiteStore", "Store", "open_store"]


def open_store(path: str, synchronous: str = "full") -> Store:
    """Return the store for path; SQLite is the only backend so far."""
    return SQLiteStore(path, synchronous=synchronous)

"""The enforcement device: the kernel firewall and its connection tracking."""

from capport.enforce.base import Enforcer, Grant, MemoryEnforcer

__all__ = ["Enforcer", "Grant", "MemoryEnforcer"]

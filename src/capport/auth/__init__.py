"""Authentication methods and the entitlement each grants."""

from capport.auth.entitlement import Bandwidth, Entitlement, Method, Quota

__all__ = ["Bandwidth", "Entitlement", "Method", "Quota"]

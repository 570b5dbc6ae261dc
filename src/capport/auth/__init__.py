"""Authentication methods and the entitlement each grants."""

from capport.auth.entitlement import Bandwidth, Entitlement, Quota

__all__ = ["Bandwidth", "Entitlement", "Quota"]

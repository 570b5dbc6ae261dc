"""RADIUS authentication and accounting (RFC 2865, RFC 2866) for the portal."""

from capport.auth.radius.client import Accepted, RadiusClient, Rejected
from capport.auth.radius.packets import AccessLimits, AccountingRecord, NasIdentity
from capport.auth.radius.transport import RadiusServer, RetryPolicy

__all__ = [
    "AccessLimits",
    "Accepted",
    "AccountingRecord",
    "NasIdentity",
    "RadiusClient",
    "RadiusServer",
    "Rejected",
    "RetryPolicy",
]

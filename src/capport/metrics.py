"""Prometheus metrics of events, counted where they happen.

Logins, failures, nftables transactions, accounting passes and forwarded
bytes are counted in these module-level metrics. They belong to no registry:
each admin application registers them in its own, together with the state
it reads at scrape time (capport.admin.metrics), so a test can build several
applications without clashing names.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from capport.auth.entitlement import Method
from capport.models import Session

# The method of sessions granted through the admin API or the command line.
ADMIN_METHOD = "admin"

KNOWN_METHODS = (
    Method.CLICK_THROUGH,
    Method.USER,
    Method.VOUCHER,
    Method.RADIUS,
    ADMIN_METHOD,
)

LOGINS = Counter(
    "capport_logins",
    "Sessions granted, by sign-in method.",
    ["method"],
    registry=None,
)
LOGIN_FAILURES = Counter(
    "capport_login_failures",
    "Sign-ins rejected for wrong credentials or an unusable voucher, by method.",
    ["method"],
    registry=None,
)
NFTABLES_TRANSACTION_SECONDS = Histogram(
    "capport_nftables_transaction_seconds",
    "Time libnftables took for one transaction (change or listing).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5, 5),
    registry=None,
)
ACCOUNTING_PASS_SECONDS = Histogram(
    "capport_accounting_pass_seconds",
    "Time one accounting pass took, from reading the counters to storing usage.",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=None,
)
GRANT_BATCH_SIZE = Histogram(
    "capport_grant_batch_size",
    "Logins granted together in one store and one nftables transaction.",
    buckets=(1, 2, 4, 8, 16, 32, 64),
    registry=None,
)
FORWARDED_BYTES = Counter(
    "capport_forwarded_bytes",
    "Bytes the kernel forwarded to and from authorised devices, all together.",
    registry=None,
)

EVENT_METRICS = (
    LOGINS,
    LOGIN_FAILURES,
    NFTABLES_TRANSACTION_SECONDS,
    ACCOUNTING_PASS_SECONDS,
    GRANT_BATCH_SIZE,
    FORWARDED_BYTES,
)


class LoginCounter:
    """A session observer that counts every granted session by its method."""

    def session_started(self, session: Session) -> None:
        LOGINS.labels(session.method).inc()

    async def session_ending(self, session: Session) -> None:
        return None

    def session_ended(self, session: Session, reason: str) -> None:
        return None

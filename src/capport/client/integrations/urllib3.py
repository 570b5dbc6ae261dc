"""urllib3: a Retry that never retries a 511.

A 511 comes from the network, not from the server, so repeating the request
returns the same 511 until a person logs in. Retry(status_forcelist=...)
configurations that name every 5xx would otherwise spend their attempts
and back-off on it.

    from urllib3 import PoolManager
    from capport.client import raise_for_portal
    from capport.client.integrations.urllib3 import PortalRetry

    http = PoolManager(retries=PortalRetry(total=3, status_forcelist=[502, 503, 511]))
    response = http.request("GET", "http://example.org/")
    raise_for_portal(response)  # NetworkAuthenticationRequired on a portal
"""

from __future__ import annotations

import copy
from typing import Any

from urllib3.util.retry import Retry

NETWORK_AUTHENTICATION_REQUIRED = 511


class PortalRetry(Retry):
    """A urllib3 Retry that returns a 511 at once instead of retrying it."""

    def is_retry(
        self, method: str, status_code: int, has_retry_after: bool = False
    ) -> bool:
        if status_code == NETWORK_AUTHENTICATION_REQUIRED:
            return False
        return super().is_retry(method, status_code, has_retry_after)


def portal_retry(retries: Any) -> Retry:
    """Return retries (a Retry, an int, None or False) as a Retry that skips 511.

    A Retry subclass of the caller's keeps its own behaviour: the result is an
    instance of a subclass of both it and PortalRetry.
    """
    if isinstance(retries, PortalRetry):
        return retries
    if not isinstance(retries, Retry):
        retries = Retry.from_int(retries)
    converted = copy.copy(retries)
    kind = type(retries)
    if kind is Retry:
        converted.__class__ = PortalRetry
    else:
        # Retry.new() builds copies with type(self), so the combined class
        # survives every increment.
        converted.__class__ = type(f"Portal{kind.__name__}", (PortalRetry, kind), {})
    return converted

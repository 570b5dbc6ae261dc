"""capport's client library: recognise captive portals and wait them out.

Importing it needs none of the HTTP libraries it supports (requests,
httpx, urllib3, aiohttp). Their integrations live in
capport.client.integrations and import only their own library.
"""

from capport.client.api import ApiState, CaptivePortalApi, fetch_api_state
from capport.client.connectivity import CheckResult, Probe, State, check_connectivity
from capport.client.detect import (
    classify,
    detect,
    detect_async,
    raise_for_portal,
    raise_for_portal_async,
)
from capport.client.errors import (
    AccessTimeout,
    CaptiveApiError,
    NetworkAuthenticationRequired,
)
from capport.client.leases import discover_api_uri
from capport.client.portal import DetectionKind, Expectation, Portal
from capport.client.retry import (
    Backoff,
    notify,
    notify_with_browser,
    retry_after_login,
    retry_after_login_async,
    wait_for_access,
    wait_for_access_async,
)

__all__ = [
    "AccessTimeout",
    "ApiState",
    "Backoff",
    "CaptiveApiError",
    "CaptivePortalApi",
    "CheckResult",
    "DetectionKind",
    "Expectation",
    "NetworkAuthenticationRequired",
    "Portal",
    "Probe",
    "State",
    "check_connectivity",
    "classify",
    "detect",
    "detect_async",
    "discover_api_uri",
    "fetch_api_state",
    "notify",
    "notify_with_browser",
    "raise_for_portal",
    "raise_for_portal_async",
    "retry_after_login",
    "retry_after_login_async",
    "wait_for_access",
    "wait_for_access_async",
]

"""requests: an adapter and a response hook that raise on a captive portal.

    import requests
    from capport.client.integrations.requests import install

    session = install(requests.Session())
    session.get("http://example.org/")  # NetworkAuthenticationRequired on a portal

install() mounts PortalAdapter for http:// and https://. The adapter wraps
its max_retries so that urllib3 never retries a 511 (see PortalRetry), and
raises NetworkAuthenticationRequired when a response gives a portal away.
raise_on_portal is the same check as a response hook, for sessions whose
adapters you mount yourself:

    session.hooks["response"].append(raise_on_portal)
"""

from __future__ import annotations

from typing import Any

from requests import PreparedRequest, Response, Session
from requests.adapters import HTTPAdapter

from capport.client.detect import raise_for_portal
from capport.client.integrations.urllib3 import portal_retry


def raise_on_portal(response: Response, *args: Any, **kwargs: Any) -> None:
    """Response hook: raise NetworkAuthenticationRequired on a captive portal."""
    raise_for_portal(response)


class PortalAdapter(HTTPAdapter):
    """An HTTPAdapter that never retries a 511 and raises on a captive portal.

    It takes HTTPAdapter's arguments; max_retries may be an int or a urllib3
    Retry, whose other settings (5xx included) stay as given.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_retries = portal_retry(self.max_retries)

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        response = super().send(request, *args, **kwargs)
        raise_for_portal(response)
        return response


def install(session: Session, **adapter_options: Any) -> Session:
    """Mount a PortalAdapter for http:// and https:// on session and return it.

    adapter_options go to PortalAdapter, for example max_retries=Retry(...).
    """
    adapter = PortalAdapter(**adapter_options)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session

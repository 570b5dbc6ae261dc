"""Client side of the control socket, used by the command line.

The socket serves the admin API (capport.admin) without tokens, so these
calls use the same paths and bodies as a program with a bearer token would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from capport.errors import ControlError
from capport.models import normalise_mac


class ControlClient:
    """Talks to a running gateway over its Unix control socket."""

    def __init__(self, socket_path: Path, timeout: float = 10.0) -> None:
        self._path = socket_path
        transport = httpx.HTTPTransport(uds=str(socket_path))
        self._http = httpx.Client(
            transport=transport, base_url="http://capport", timeout=timeout
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def clients(self) -> list[dict[str, Any]]:
        """Return the authorised devices."""
        body = self._request("GET", "/api/v1/clients")
        clients: list[dict[str, Any]] = body["clients"]
        return clients

    def revoke(self, mac: str) -> list[dict[str, Any]]:
        """End the sessions of mac; return the sessions ended."""
        path = f"/api/v1/clients/{_mac_path(mac)}"
        revoked: list[dict[str, Any]] = self._request("DELETE", path)["revoked"]
        return revoked

    def mac_lists(self) -> dict[str, list[str]]:
        """Return the trusted and blocked MAC addresses."""
        lists: dict[str, list[str]] = self._request("GET", "/v1/macs")
        return lists

    def change_mac(self, command: str, mac: str) -> dict[str, Any]:
        """Run trust, untrust, block or unblock on mac; return the new policy."""
        list_name = "trusted" if command in ("trust", "untrust") else "blocked"
        method = "PUT" if command in ("trust", "block") else "DELETE"
        return self._request(method, f"/v1/{list_name}/{mac}")

    def grant(self, mac: str, ip: str, duration: float | None) -> dict[str, Any]:
        """Authorise the device mac at ip; return its new session."""
        body: dict[str, Any] = {"mac": mac, "ip": ip}
        if duration is not None:
            body["duration"] = duration
        return self._request("POST", "/api/v1/clients", body)

    def extend(self, mac: str, seconds: float) -> list[dict[str, Any]]:
        """Add seconds to the sessions of mac; return them extended."""
        path = f"/api/v1/clients/{_mac_path(mac)}/extend"
        extended: list[dict[str, Any]] = self._request(
            "POST", path, {"seconds": seconds}
        )["extended"]
        return extended

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.TransportError as error:
            raise ControlError(
                f"cannot reach the gateway's control socket {self._path}: {error}. "
                "Is `capport run` running? Pass --socket or --config to point "
                "at it."
            ) from error
        try:
            reply: dict[str, Any] = response.json()
        except ValueError:
            raise ControlError(
                f"the gateway's control socket {self._path} sent HTTP "
                f"{response.status_code} without a JSON body to {method} {path}"
            ) from None
        if response.is_error:
            raise ControlError(_error_text(reply, response.status_code))
        return reply


def _mac_path(mac: str) -> str:
    try:
        return quote(normalise_mac(mac), safe="")
    except ValueError as error:
        raise ControlError(str(error)) from None


def _error_text(body: dict[str, Any], status_code: int) -> str:
    error = str(body.get("error", f"HTTP {status_code}"))
    field = body.get("field")
    return f"{field}: {error}" if field and field not in error else error

"""Client side of the control API, used by the command line."""

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
        clients: list[dict[str, Any]] = self._request("GET", "/v1/clients")["clients"]
        return clients

    def revoke(self, mac: str) -> list[dict[str, Any]]:
        """End the sessions of mac; return the sessions ended."""
        try:
            mac = normalise_mac(mac)
        except ValueError as error:
            raise ControlError(str(error)) from None
        path = f"/v1/clients/{quote(mac, safe='')}"
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

    def _request(self, method: str, path: str) -> dict[str, Any]:
        try:
            response = self._http.request(method, path)
        except httpx.TransportError as error:
            raise ControlError(
                f"cannot reach the gateway's control socket {self._path}: {error}. "
                "Is `capport run` running? Pass --socket or --config to point "
                "at it."
            ) from error
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            raise ControlError(
                f"the gateway's control socket {self._path} sent HTTP "
                f"{response.status_code} without a JSON body to {method} {path}"
            ) from None
        if response.is_error:
            raise ControlError(body.get("error", f"HTTP {response.status_code}"))
        return body

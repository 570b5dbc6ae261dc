"""Client side of the control socket, used by the command line.

The socket serves the admin API (capport.admin) without tokens, so these
calls use the same paths and bodies as a program with a bearer token would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from capport.errors import ControlError, GatewayUnreachable
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

    # Users and vouchers

    def users(self) -> list[dict[str, Any]]:
        """Return the local users, without their password hashes."""
        users: list[dict[str, Any]] = self._request("GET", "/api/v1/users")["users"]
        return users

    def add_user(
        self, name: str, password: str, max_devices: int | None
    ) -> dict[str, Any]:
        """Add a local user, whose password the gateway hashes."""
        body = {"name": name, "password": password, "max_devices": max_devices}
        return self._request("POST", "/api/v1/users", body)

    def set_password(self, name: str, password: str) -> None:
        """Replace the password of the user name."""
        path = f"/api/v1/users/{quote(name, safe='')}/password"
        self._request("PUT", path, {"password": password})

    def remove_user(self, name: str) -> None:
        """Remove the user name."""
        self._request("DELETE", f"/api/v1/users/{quote(name, safe='')}")

    def vouchers(self) -> list[dict[str, Any]]:
        """Return the vouchers with their limits and state."""
        body = self._request("GET", "/api/v1/vouchers")
        vouchers: list[dict[str, Any]] = body["vouchers"]
        return vouchers

    def create_vouchers(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        """Create vouchers as request describes and return them with their codes."""
        body = self._request("POST", "/api/v1/vouchers", request)
        created: list[dict[str, Any]] = body["vouchers"]
        return created

    def revoke_voucher(self, request: dict[str, Any]) -> int:
        """Revoke the voucher that request names by id or code and return its id."""
        body = self._request("POST", "/api/v1/vouchers/revoke", request)
        voucher_id: int = body["id"]
        return voucher_id

    def vouchers_csv(self) -> str:
        """Return the vouchers as CSV, without codes."""
        return self._text("/api/v1/vouchers.csv")

    # API tokens and accounting

    def tokens(self) -> list[dict[str, Any]]:
        """Return the admin API's tokens, without their values."""
        tokens: list[dict[str, Any]] = self._request("GET", "/api/v1/tokens")["tokens"]
        return tokens

    def create_token(self, name: str) -> dict[str, Any]:
        """Create the token name and return it with its value."""
        return self._request("POST", "/api/v1/tokens", {"name": name})

    def revoke_token(self, request: dict[str, Any]) -> dict[str, Any]:
        """Revoke the token that request names by id or name; return both."""
        return self._request("POST", "/api/v1/tokens/revoke", request)

    def accounting_csv(self, since: str | None, until: str | None) -> str:
        """Return the accounting records of sessions overlapping the period as CSV.

        since and until take the forms of capport.acct.records.parse_time;
        None means the oldest record and the gateway's current time.
        """
        params = {
            name: value
            for name, value in (("since", since), ("until", until))
            if value is not None
        }
        return self._text("/api/v1/accounting.csv", params)

    def _text(self, path: str, params: dict[str, str] | None = None) -> str:
        try:
            response = self._http.get(path, params=params)
        except httpx.TransportError as error:
            raise _unreachable(self._path, error) from error
        if response.is_error:
            raise self._error("GET", path, response)
        return response.text

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        response = self._send(method, path, body)
        if response.is_error:
            raise self._error(method, path, response)
        if response.status_code == 204:
            return {}
        try:
            reply: dict[str, Any] = response.json()
        except ValueError:
            raise self._no_json(method, path, response) from None
        return reply

    def _send(
        self, method: str, path: str, body: dict[str, Any] | None
    ) -> httpx.Response:
        try:
            return self._http.request(method, path, json=body)
        except httpx.TransportError as error:
            raise _unreachable(self._path, error) from error

    def _error(self, method: str, path: str, response: httpx.Response) -> ControlError:
        try:
            reply = response.json()
        except ValueError:
            return self._no_json(method, path, response)
        if not isinstance(reply, dict):
            return self._no_json(method, path, response)
        return ControlError(_error_text(reply, response.status_code))

    def _no_json(
        self, method: str, path: str, response: httpx.Response
    ) -> ControlError:
        return ControlError(
            f"the gateway's control socket {self._path} sent HTTP "
            f"{response.status_code} without a JSON body to {method} {path}"
        )


def _unreachable(path: Path, error: httpx.TransportError) -> GatewayUnreachable:
    cause = _os_error(error)
    if isinstance(cause, PermissionError):
        return GatewayUnreachable(
            f"permission denied on the gateway's control socket {path}: only "
            "the gateway's user (root) may connect, so run the command as root"
        )
    if isinstance(cause, FileNotFoundError):
        reason = "the socket does not exist, so the gateway is not running"
    elif isinstance(cause, ConnectionRefusedError):
        reason = "no gateway is listening on it"
    else:
        reason = str(error)
    return GatewayUnreachable(
        f"cannot reach the gateway's control socket {path}: {reason}. Start the "
        "gateway with `capport run` (or `systemctl start capport`), or pass "
        "--socket or --config to point at its socket."
    )


def _os_error(error: BaseException) -> OSError | None:
    """Return the OSError that httpx's transport error wraps, if any."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _mac_path(mac: str) -> str:
    try:
        return quote(normalise_mac(mac), safe="")
    except ValueError as error:
        raise ControlError(str(error)) from None


def _error_text(body: dict[str, Any], status_code: int) -> str:
    error = str(body.get("error", f"HTTP {status_code}"))
    field = body.get("field")
    return f"{field}: {error}" if field and field not in error else error

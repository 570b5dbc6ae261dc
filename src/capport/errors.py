"""The exceptions capport raises. Every one derives from CapportError."""


class CapportError(Exception):
    """Base of every error capport raises on purpose."""


class ConfigError(CapportError, ValueError):
    """The configuration file is invalid; the message names the key."""


class EnforcementError(CapportError, OSError):
    """The kernel rejected a firewall change; nothing of it was applied."""


class StoreError(CapportError):
    """The session store failed to read or write."""


class DeviceNotFound(CapportError, LookupError):
    """No MAC address is known for a client's IP address."""


class TokenError(CapportError, ValueError):
    """A portal token is missing, malformed, forged or expired."""


class ControlError(CapportError):
    """A request to the running gateway's control socket failed."""


class GatewayUnreachable(ControlError, ConnectionError):
    """No gateway listens on the control socket, or the socket rejected the caller."""


class RecordExists(CapportError, ValueError):
    """A user or voucher with the same name or code is already stored."""


class RecordNotFound(CapportError, LookupError):
    """No stored user or voucher has the given name, code or id."""


class DeviceLimitReached(CapportError):
    """A user or voucher is already in use on as many devices as it allows."""

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class VoucherUnavailable(CapportError):
    """A voucher exists but has expired, been used up or been revoked."""


class RadiusError(CapportError):
    """A RADIUS exchange failed, for example because no server replied."""


class RadiusTimeout(RadiusError, TimeoutError):
    """No RADIUS server sent a valid reply within its timeout and retries."""


class DeviceBlocked(CapportError, PermissionError):
    """The device's MAC address is on the blocked list."""


class SessionTooLong(CapportError, ValueError):
    """An extension would make a session last longer than the maximum."""

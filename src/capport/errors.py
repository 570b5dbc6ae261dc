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
    """The control socket of the running gateway could not be reached."""

"""Logging set-up for the daemon and the command line."""

from __future__ import annotations

import logging
import sys

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    """Send every capport log record at level or above to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn logs every request at INFO; the portal's access log is kept
    # at the configured level only when debugging.
    access_level = logging.DEBUG if level == "debug" else logging.WARNING
    logging.getLogger("uvicorn.access").setLevel(access_level)

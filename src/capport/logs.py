"""Logging set-up for the daemon and the command line.

Every record goes to stderr in the configured format, through a filter
that counts repeated errors. The portal's access log
(`capport.access`) has a handler of its own, so it can go to a file or be
switched off without touching the rest.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from capport.config import LogSection
from capport.errors import ConfigError
from capport.logformat import KeyValueFormatter, RepeatFilter, TextFormatter

ACCESS_LOGGER = "capport.access"
ACCESS_LAYOUT = "%(asctime)s %(name)s: %(message)s"

# Loggers that log.levels set, so a reload can reset the ones it drops.
_levelled: set[str] = set()


def configure_logging(settings: LogSection | str) -> None:
    """Apply the [log] settings; a bare level string keeps the other defaults.

    Raises ConfigError, having changed nothing, when the access log file
    cannot be opened.
    """
    if isinstance(settings, str):
        settings = LogSection(level=settings)  # type: ignore[arg-type]
    access_handler = _access_handler(settings)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(settings.format))
    handler.addFilter(RepeatFilter(settings.repeat_window))
    root = logging.getLogger()
    _replace_handlers(root, [handler])
    root.setLevel(settings.level.upper())
    # uvicorn logs every request at INFO; capport.access replaces that.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    access = logging.getLogger(ACCESS_LOGGER)
    access.propagate = False
    access.setLevel(logging.INFO)
    _replace_handlers(access, [access_handler])
    for name in _levelled - set(settings.levels):
        logging.getLogger(name).setLevel(logging.NOTSET)
    for name, level in settings.levels.items():
        logging.getLogger(name).setLevel(level.upper())
    _levelled.clear()
    _levelled.update(settings.levels)


def make_formatter(name: str) -> logging.Formatter:
    """Return the formatter for log.format: "text" or "keyvalue"."""
    return KeyValueFormatter() if name == "keyvalue" else TextFormatter()


def _access_handler(settings: LogSection) -> logging.Handler:
    target = settings.access_log
    if target == "off":
        return logging.NullHandler()
    handler: logging.Handler
    if target == "stderr":
        handler = logging.StreamHandler(sys.stderr)
    else:
        handler = _open_file_handler(Path(target))
    # An access line's message already contains its fields, so the text
    # format does not repeat them; the key=value format keeps them as fields.
    if settings.format == "keyvalue":
        handler.setFormatter(KeyValueFormatter())
    else:
        handler.setFormatter(TextFormatter(ACCESS_LAYOUT, with_fields=False))
    return handler


def _open_file_handler(path: Path) -> logging.Handler:
    # WatchedFileHandler reopens the file after logrotate has moved it.
    try:
        return logging.handlers.WatchedFileHandler(path, encoding="utf-8")
    except OSError as error:
        raise ConfigError(
            f"log.access_log: cannot open {path}: {error.strerror}; create its "
            'directory, or set "stderr" or "off"'
        ) from None


def _replace_handlers(logger: logging.Logger, handlers: list[logging.Handler]) -> None:
    for old in logger.handlers:
        old.close()
    logger.handlers[:] = handlers

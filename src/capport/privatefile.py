"""Output files that only their owner may read, such as CSV files of voucher codes.

A command creates a new file with mode 0600 and replaces an existing one
only when the operator requests it, because the file may be the only copy
of secrets that the store keeps as hashes.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import click


@dataclass
class PrivateFile:
    """An output file opened for writing text, and whether open_private created it."""

    path: Path
    file: TextIO
    created: bool

    def save(self, text: str) -> str | None:
        """Write text and close the file; return the error message on failure.

        The message names the file and the error, so that a command can
        print it after output that must not be lost, such as new codes.
        """
        try:
            with self.file:
                self.file.write(text)
        except OSError as error:
            return f"cannot write {self.path}: {error.strerror or error}"
        return None

    def discard(self) -> None:
        """Close the file, and remove it if this run created it."""
        # Nothing was written, so a failed flush loses nothing.
        with contextlib.suppress(OSError):
            self.file.close()
        if self.created:
            self.path.unlink(missing_ok=True)


def open_private(path: Path, *, replace: bool, consequence: str = "") -> PrivateFile:
    """Open path for writing with mode 0600, or raise click.ClickException.

    An existing file is replaced only with replace=True; a regular one then
    gets mode 0600 too, because open() sets the mode of new files only.
    consequence is appended to error messages, such as "; no vouchers were
    created".
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    try:
        descriptor = os.open(path, flags, 0o600)
    except FileExistsError:
        raise click.ClickException(
            f"{path} already exists{consequence}; choose another file, or add "
            "--force to replace it"
        ) from None
    except OSError as error:
        raise click.ClickException(
            f"cannot write {path}: {error.strerror}{consequence}"
        ) from None
    try:
        if stat.S_ISREG(os.fstat(descriptor).st_mode):
            # A device or pipe such as /dev/stdout keeps its mode.
            os.fchmod(descriptor, 0o600)
    except OSError as error:
        os.close(descriptor)
        raise click.ClickException(
            f"cannot make {path} private (mode 0600): {error.strerror}{consequence}"
        ) from None
    file = os.fdopen(descriptor, "w", newline="", encoding="utf-8")
    # Without replace, O_EXCL made the file. A replaced file is never
    # removed, even if the path did not exist before.
    return PrivateFile(path, file, created=not replace)

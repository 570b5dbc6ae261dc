"""Running nft's text syntax in a child `nft -f -` process.

libnftables keeps what it parses on the C heap of the process that calls
it: parsing the install of 100,000 sessions took 115-140 MB. A child
`nft` process takes that memory and returns it to the kernel when it
exits. `nft -f` sends its whole input to the kernel as one batch, so an
install through it is still one transaction that the kernel applies
whole or not at all.

The child runs in the network namespace that was current when the runner
was created, which is the daemon's own. A thread that has since moved to
another namespace starts the child through nsenter(1) with that
namespace's file descriptor, which needs root (CAP_SYS_ADMIN).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Callable
from typing import BinaryIO

from capport.errors import EnforcementError

log = logging.getLogger("capport.enforce")

NFT_PATHS = ("/usr/sbin/nft", "/sbin/nft")
NSENTER = "nsenter"
# install() of 100,000 sessions took 1.2-1.4 s on a loaded 2-core machine
# (Debian 12, nft 1.0.6), and a text listing of their set 1.4 s.
# NOTE: the default is that time with a wide margin, not a measured limit.
DEFAULT_TIMEOUT_SECONDS = 60.0
# Characters of a buffer encoded and written to the child's input at a time.
WRITE_CHUNK = 1 << 20


class NftRunner:
    """Starts `nft -f -` children in the network namespace it was created in."""

    def __init__(
        self,
        error_text: Callable[[str, str], str],
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.timeout = timeout
        self._error_text = error_text
        self._nft = _find_nft()
        self._namespace = os.open(
            "/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC
        )

    def run(self, buffer: str, action: str) -> str:
        """Run a buffer in nft's text syntax in a child and return its output.

        action names what is being done, for the error message. Raises
        EnforcementError with nft's own message when nft fails, and when
        it runs longer than the timeout (the child is then killed).
        """
        argv, pass_fds = self._argv()
        with _memory_file("nft-input") as source:
            # A slice at a time, so the encoded copy of a whole install
            # (8 MB for 100,000 devices) never exists beside the text.
            for start in range(0, len(buffer), WRITE_CHUNK):
                source.write(buffer[start : start + WRITE_CHUNK].encode())
            source.seek(0)
            with (
                _memory_file("nft-output") as output,
                _memory_file("nft-error") as error,
            ):
                status = self._wait(argv, pass_fds, source, output, error, action)
                stderr = _read(error).strip()
                if status != 0:
                    message = self._error_text(stderr, buffer)
                    raise EnforcementError(
                        f"{action} failed: {message} (nft exit status {status})"
                    )
                if stderr:
                    log.warning("nft wrote to stderr while %s: %s", action, stderr)
                return _read(output)

    def _wait(
        self,
        argv: list[str],
        pass_fds: tuple[int, ...],
        source: BinaryIO,
        output: BinaryIO,
        error: BinaryIO,
        action: str,
    ) -> int:
        """Run the child with its standard streams on files and return its status."""
        try:
            completed = subprocess.run(
                argv,
                stdin=source,
                stdout=output,
                stderr=error,
                timeout=self.timeout,
                pass_fds=pass_fds,
                check=False,
            )
        except subprocess.TimeoutExpired as expired:
            # subprocess.run has killed and reaped the child. An install is
            # then either the previous table or the new one, never a mix.
            raise EnforcementError(
                f"{action} failed: `{' '.join(argv)}` timed out after "
                f"{self.timeout:g} s and was killed. The kernel applies a batch "
                "whole or not at all, so a change it sent may have been applied. "
                "Check the load of the host and retry"
            ) from expired
        except OSError as failure:
            raise EnforcementError(
                f"{action} failed: cannot start `{' '.join(argv)}`: {failure}"
            ) from failure
        return completed.returncode

    def close(self) -> None:
        if self._namespace >= 0:
            os.close(self._namespace)
            self._namespace = -1

    def _argv(self) -> tuple[list[str], tuple[int, ...]]:
        """Return the command line, entering the runner's namespace if needed."""
        nft = [self._nft, "-f", "-"]
        if self._namespace < 0:
            raise EnforcementError("the nft runner was used after close()")
        if _same_namespace(self._namespace):
            return nft, ()
        # The child inherits the descriptor under the same number.
        enter = [NSENTER, f"--net=/proc/self/fd/{self._namespace}", "--"]
        return enter + nft, (self._namespace,)


def _memory_file(name: str) -> BinaryIO:
    """Open an anonymous file in memory for one of the child's standard streams.

    The child writes its output there and this process reads it in one
    read, so no pipe buffers or chunk lists fragment this process's heap.
    """
    return open(os.memfd_create(name, os.MFD_CLOEXEC), "w+b")  # noqa: SIM115


def _read(file: BinaryIO) -> str:
    file.seek(0)
    return file.read().decode(errors="replace")


def _same_namespace(descriptor: int) -> bool:
    current = os.stat("/proc/thread-self/ns/net")
    runner = os.fstat(descriptor)
    return (current.st_dev, current.st_ino) == (runner.st_dev, runner.st_ino)


def _find_nft() -> str:
    found = shutil.which("nft")
    if found:
        return found
    for path in NFT_PATHS:
        if os.access(path, os.X_OK):
            return path
    raise EnforcementError(
        "cannot find the nft command in PATH or /usr/sbin; install Debian's "
        "nftables package"
    )

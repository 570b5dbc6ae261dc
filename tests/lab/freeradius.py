"""A FreeRADIUS server for tests: its configuration, process and accounting log.

The server gets a directory of its own with a minimal configuration. It
authenticates with the pap, chap and files modules and writes accounting to
a detail file. Its one client is 127.0.0.1 with a test secret, and it
listens on loopback ports that were free at start. Debian's freeradius package installs
the binary as /usr/sbin/freeradius; its own service is not used.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

BINARY_NAMES = ("freeradius", "radiusd")
TEST_SECRET = "capport-test-secret"
READY_LINE = "Ready to process requests"

# The users file (rlm_files format): one accepted user with every limit
# capport maps, one plain user and one the server rejects.
LIMITED_USER = "alice"
LIMITED_PASSWORD = "wonderland"
PLAIN_USER = "bob"
PLAIN_PASSWORD = "builder"
REJECTED_USER = "mallory"
SESSION_TIMEOUT = 1800
IDLE_TIMEOUT = 600
BANDWIDTH_UP = 1_000_000
BANDWIDTH_DOWN = 4_000_000
MAX_TOTAL_OCTETS = 500_000_000
CLASS_VALUE = "plan-gold"

USERS = f"""\
{LIMITED_USER}\tCleartext-Password := "{LIMITED_PASSWORD}"
\tSession-Timeout = {SESSION_TIMEOUT},
\tIdle-Timeout = {IDLE_TIMEOUT},
\tWISPr-Bandwidth-Max-Up = {BANDWIDTH_UP},
\tWISPr-Bandwidth-Max-Down = {BANDWIDTH_DOWN},
\tChilliSpot-Max-Total-Octets = {MAX_TOTAL_OCTETS},
\tClass = "{CLASS_VALUE}"

{PLAIN_USER}\tCleartext-Password := "{PLAIN_PASSWORD}"

{REJECTED_USER}\tAuth-Type := Reject
\tReply-Message = "This account is closed."
"""


def find_binary() -> str | None:
    """Return the path of the FreeRADIUS server binary, or None."""
    for name in BINARY_NAMES:
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
        if path is not None:
            return path
    return None


def free_udp_port(host: str = "127.0.0.1") -> int:
    """Return a UDP port on host that nothing was bound to a moment ago."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with closing(socket.socket(family, socket.SOCK_DGRAM)) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def closed_udp_port(host: str = "127.0.0.1") -> int:
    """Return a loopback UDP port with no listener: requests to it go unanswered."""
    return free_udp_port(host)


def radiusd_conf(directory: Path, host: str, auth_port: int, acct_port: int) -> str:
    """Return a radiusd.conf for a server that keeps all its files in directory."""
    return f"""\
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = {directory}
sbindir = /usr/sbin
logdir = {directory}
raddbdir = {directory}
radacctdir = {directory}/acct
name = freeradius
confdir = {directory}
run_dir = {directory}
db_dir = {directory}
libdir = /usr/lib/freeradius
pidfile = {directory}/radiusd.pid
max_request_time = 10
cleanup_delay = 1
max_requests = 1024
hostname_lookups = no

log {{
    destination = stdout
    auth = yes
}}

security {{
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = yes
}}

thread pool {{
    start_servers = 2
    max_servers = 4
    min_spare_servers = 1
    max_spare_servers = 2
    max_requests_per_server = 0
}}

client loopback {{
    ipaddr = {host}
    secret = {TEST_SECRET}
    require_message_authenticator = yes
}}

modules {{
    pap {{
    }}
    chap {{
    }}
    files {{
        filename = {directory}/users
    }}
    detail auth_detail {{
        filename = {directory}/auth/detail
        escape_filenames = no
        permissions = 0600
        header = "%t"
        # The test passwords are not written, as a real server would not.
        suppress {{
            User-Password
            CHAP-Password
        }}
    }}
    detail {{
        filename = {directory}/acct/detail
        escape_filenames = no
        permissions = 0600
        header = "%t"
    }}
}}

server default {{
    listen {{
        type = auth
        ipaddr = {host}
        port = {auth_port}
    }}
    listen {{
        type = acct
        ipaddr = {host}
        port = {acct_port}
    }}
    authorize {{
        auth_detail
        chap
        files
        pap
    }}
    authenticate {{
        Auth-Type PAP {{
            pap
        }}
        Auth-Type CHAP {{
            chap
        }}
    }}
    preacct {{
    }}
    accounting {{
        detail
    }}
}}
"""


@dataclass
class FreeRadius:
    """A running FreeRADIUS server on loopback and its files."""

    directory: Path
    host: str
    auth_port: int
    acct_port: int
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def access_requests(self) -> list[dict[str, str]]:
        """Return the Access-Requests the server received, passwords left out."""
        return _read_detail(self.directory / "auth" / "detail")

    def accounting_records(self) -> list[dict[str, str]]:
        """Return the Accounting-Requests the server received."""
        return _read_detail(self.directory / "acct" / "detail")

    def accounting_for(self, session_id: str) -> list[dict[str, str]]:
        """Return the Accounting-Requests of one Acct-Session-Id, in order."""
        return [
            record
            for record in self.accounting_records()
            if record.get("Acct-Session-Id") == session_id
        ]

    def wait_for_accounting(
        self, session_id: str, count: int, timeout: float = 10.0
    ) -> list[dict[str, str]]:
        """Wait until session_id has count records (or timeout); return them."""
        deadline = time.monotonic() + timeout
        while True:
            records = self.accounting_for(session_id)
            if len(records) >= count or time.monotonic() > deadline:
                return records
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server and wait for it and its output reader to finish."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.reader is not None:
            self.reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def start(
    directory: Path,
    host: str = "127.0.0.1",
    prefix_argv: Sequence[str] = (),
    ports: tuple[int, int] | None = None,
    timeout: float = 15.0,
) -> FreeRadius:
    """Write a configuration into directory and start FreeRADIUS with it.

    prefix_argv runs the server through another command, such as
    `ip netns exec NAME`. ports are the authentication and accounting
    ports, free ones of this namespace by default. Raises RuntimeError with
    the server's output when it exits or is not ready within timeout seconds.
    """
    binary = find_binary()
    if binary is None:
        raise RuntimeError("FreeRADIUS is not installed; scripts/install installs it")
    auth_port, acct_port = ports or (free_udp_port(host), free_udp_port(host))
    for subdirectory in ("acct", "auth"):
        (directory / subdirectory).mkdir(parents=True, exist_ok=True)
    (directory / "radiusd.conf").write_text(
        radiusd_conf(directory, host, auth_port, acct_port)
    )
    (directory / "users").write_text(USERS)
    # -f stays in the foreground, -l stdout logs there, -x logs each request.
    argv = [*prefix_argv, binary, "-d", str(directory), "-f", "-l", "stdout", "-x"]
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    server = FreeRadius(directory, host, auth_port, acct_port, process)
    _wait_ready(server, timeout)
    return server


def _read_detail(path: Path) -> list[dict[str, str]]:
    """Parse a detail file: records apart by blank lines, "Name = value" lines.

    String values lose their quotes; the first line of a record is its time.
    """
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return []
    records = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            name, equals, value = line.strip().partition(" = ")
            if equals:
                fields[name] = value.strip().strip('"')
        if fields:
            records.append(fields)
    return records


def _wait_ready(server: FreeRadius, timeout: float) -> None:
    ready = threading.Event()

    def read() -> None:
        assert server.process.stdout is not None
        for line in server.process.stdout:
            server.output.append(line.rstrip("\n"))
            if READY_LINE in line:
                ready.set()

    server.reader = threading.Thread(target=read, daemon=True)
    server.reader.start()
    deadline = time.monotonic() + timeout
    while not ready.wait(0.05):
        if server.process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            output = "\n".join(server.output[-40:])
            raise RuntimeError(f"FreeRADIUS did not start:\n{output}")

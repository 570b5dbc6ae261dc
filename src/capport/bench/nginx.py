"""nginx as the responder's reference: a fixed `return 511` with capport's body.

The configuration is built here as text (pure) and nginx runs in the
gateway's namespace, in the foreground, as a child of the benchmark.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from capport.bench.testbed import SERVER_CPU, BenchError, Testbed

# The table that sends the client's port-80 traffic to nginx. Its one rule
# matches what capport's own redirect rule matches, set lookup included
# (in an empty set of the same type), so both servers are reached through
# the same kind of rule. Priority -101 runs it just before capport's
# prerouting chain (-100). Once a chain has chosen a NAT mapping for a
# connection, the kernel runs no later NAT chain for it, so capport's rule
# is not evaluated on top: a counter rule in capport's chain stayed at 0
# while this table was loaded (checked on Linux 6.18, nftables 1.0.6).
REDIRECT_TABLE = "capbench"


def redirect_ruleset(lan_interface: str, port: int) -> str:
    """Return `nft -f` input that redirects port 80 from the LAN to port."""
    return (
        f"table inet {REDIRECT_TABLE} {{\n"
        "    set unused4 { type ether_addr . ipv4_addr; }\n"
        "    chain prerouting {\n"
        "        type nat hook prerouting priority -101; policy accept;\n"
        f'        iifname "{lan_interface}" tcp dport 80 fib daddr type != local '
        f"ether saddr . ip saddr != @unused4 redirect to :{port}\n"
        "    }\n"
        "}\n"
    )


def quote_string(text: str) -> str:
    """Quote text as an nginx configuration string.

    nginx reads `\\"` and `\\\\` inside double quotes, and a `$` starts a
    variable that cannot be escaped, so text containing one is rejected.
    """
    if "$" in text:
        raise ValueError(
            "the body contains '$', which nginx would read as a variable; "
            "it cannot be used as a return text"
        )
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config(
    directory: Path, address: str, port: int, body: str, keepalive_seconds: float
) -> str:
    """Return an nginx.conf that returns 511 and body to every request.

    One worker, no access log, and keep-alive as capport's responder does
    it: the same idle timeout, and no cap on requests per connection
    (nginx 1.22 closes a connection after 1,000 requests by default).
    The same Content-Type and Cache-Control as capport's 511 are sent.
    """
    temporary = directory / "temp"
    paths = "\n".join(
        f"    {kind}_temp_path {temporary};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""\
worker_processes 1;
pid {directory / "nginx.pid"};
error_log {directory / "error.log"} warn;
events {{
    worker_connections 8192;
}}
http {{
    access_log off;
    server_tokens off;
    keepalive_requests 1000000000;
    keepalive_timeout {keepalive_seconds:g}s;
    default_type "text/html; charset=utf-8";
{paths}
    server {{
        listen {address}:{port} backlog=4096;
        location / {{
            add_header Cache-Control no-store always;
            return 511 {quote_string(body)};
        }}
    }}
}}
"""


class Nginx:
    """nginx in the gateway's namespace, pinned to the server's core."""

    def __init__(self, testbed: Testbed, directory: Path, config: str) -> None:
        self._testbed = testbed
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "temp").mkdir(exist_ok=True)
        self.config_path = directory / "nginx.conf"
        self.config_path.write_text(config)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def argv(self) -> list[str]:
        # "daemon off" keeps the master process in the foreground as this
        # process's child, so it is stopped by its PID and never outlives us.
        nginx = ["nginx", "-c", str(self.config_path), "-g", "daemon off;"]
        return self._testbed.argv("gw", nginx, cpu=SERVER_CPU)

    def start(self) -> None:
        log_path = self.directory / "stderr.log"
        with open(log_path, "ab") as output:
            self._process = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=output, stderr=output
            )
        try:
            self._process.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            return
        raise BenchError(
            f"nginx exited at once with status {self._process.returncode}: "
            f"{log_path.read_text(errors='replace')[-1000:]}"
        )

    @property
    def pid(self) -> int:
        if self._process is None:
            raise BenchError("nginx is not running")
        return self._process.pid

    def stop(self) -> None:
        """Stop nginx with SIGQUIT (graceful), then SIGKILL after 5 s."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

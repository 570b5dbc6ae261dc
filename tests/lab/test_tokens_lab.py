"""`capport tokens` and `capport accounting export` against the laboratory's gateway.

The commands find the control socket in the laboratory's configuration
file, as an operator's would in /etc/capport/capport.toml. A token they
create must work on the gateway's TCP admin listener at once and stop
working when revoked, and the gateway's audit log must show both changes
with the caller's uid.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import time
from pathlib import Path

import pytest
from clients import capport, log_text, revoke_quietly
from netns import wait_until

from capport.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.timeout(120)]

ADMIN_URL = "http://127.0.0.1:8512/api/v1"


def succeed(lab: Lab, *args: str) -> str:
    result = capport(*args, "--config", str(lab.config_path))
    assert result.returncode == 0, result.stderr
    return result.stdout


def admin_status(lab: Lab, token: str, method: str, path: str, body: str = "") -> int:
    """Send one request to the admin listener inside the gateway's namespace."""
    argv = [
        "curl", "-sS", "--max-time", "10", "--request", method,
        "--header", f"Authorization: Bearer {token}",
        "--output", "/dev/null", "--write-out", "%{http_code}",
    ]  # fmt: skip
    if body:
        argv += ["--header", "Content-Type: application/json", "--data-raw", body]
    result = lab.run("gw", [*argv, ADMIN_URL + path], check=True)
    return int(result.stdout)


def audited(lab: Lab, change: str) -> bool:
    """Wait until the gateway's log shows change made through the socket by us."""
    actor = f"control socket (uid {os.getuid()}, pid "

    def logged() -> bool:
        lines = log_text(lab).splitlines()
        return any(actor in line and change in line for line in lines)

    return wait_until(logged, timeout=5)


def test_token_commands_change_gateway(lab: Lab) -> None:
    name = f"lab-token-{os.getpid()}"
    token = succeed(lab, "tokens", "create", name).strip()
    try:
        assert admin_status(lab, token, "GET", "/clients") == 200
        rows = json.loads(succeed(lab, "tokens", "list", "--json"))
        (row,) = [row for row in rows if row["name"] == name]
        assert set(row) == {"id", "name", "created", "last_used"}
        assert token not in json.dumps(rows)

        # The listener serves the token routes only through the control socket.
        minted = json.dumps({"name": f"{name}-minted"})
        assert admin_status(lab, token, "POST", "/tokens", minted) == 403

        output = succeed(lab, "tokens", "revoke", "--id", str(row["id"]))
        assert output == f"Revoked token {name} (id {row['id']}).\n"
        assert admin_status(lab, token, "GET", "/clients") == 401
    finally:
        capport("tokens", "revoke", name, "--config", str(lab.config_path))

    assert audited(lab, f"created API token {row['id']} ({name}).")
    assert audited(lab, f"revoked API token {row['id']} ({name}, given by id).")
    assert token not in log_text(lab)


def test_accounting_export_lists_ended_session(lab: Lab, tmp_path: Path) -> None:
    mac, ip = lab.macs["c2"], lab.addresses["c2"]
    # Epoch seconds, so that sessions of c2 from earlier tests stay out.
    since = str(int(time.time()) - 1)
    try:
        succeed(lab, "grant", mac, ip, "--duration", "300")
    finally:
        revoke_quietly(lab, mac)
    target = tmp_path / "acct.csv"

    def exported() -> list[dict[str, str]]:
        succeed(lab, "accounting", "export", "--since", since, "--csv", str(target))
        rows = list(csv.DictReader(io.StringIO(target.read_text())))
        return [row for row in rows if row["mac"] == mac]

    # The recorder writes the record after the session ends, off the request.
    assert wait_until(lambda: len(exported()) == 1, timeout=10)
    (record,) = exported()
    assert record["ip"] == ip
    assert record["end_reason"] == "revoked"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600

"""`capport users` and `capport vouchers` against the laboratory's running gateway.

The commands find the control socket in the laboratory's configuration file,
as an operator's would in /etc/capport/capport.toml, and the gateway's log
must show each change in its audit log with the caller's uid.
"""

from __future__ import annotations

import csv
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from clients import log_text
from netns import wait_until

from capport.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.timeout(120)]

PASSWORD = "lab-accounts-pw-17"


def capport(lab: Lab, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run a capport command with the laboratory's configuration file."""
    return subprocess.run(
        [sys.executable, "-m", "capport", *args, "--config", str(lab.config_path)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def succeed(lab: Lab, *args: str, stdin: str = "") -> str:
    result = capport(lab, *args, stdin=stdin)
    assert result.returncode == 0, result.stderr
    return result.stdout


def audited(lab: Lab, change: str) -> bool:
    """Wait until the gateway's log shows change made through the socket by us."""
    actor = f"control socket (uid {os.getuid()}, pid "

    def logged() -> bool:
        lines = log_text(lab).splitlines()
        return any(actor in line and change in line for line in lines)

    return wait_until(logged, timeout=5)


def test_users_commands_change_gateway(lab: Lab) -> None:
    name = f"lab-user-{os.getpid()}"
    output = succeed(
        lab, "users", "add", name, "--password-stdin", "--devices", "2",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert output == f"Added user {name}.\n"
    rows = json.loads(succeed(lab, "users", "list", "--json"))
    assert {"name": name, "max_devices": 2} in [
        {"name": row["name"], "max_devices": row["max_devices"]} for row in rows
    ]

    output = succeed(lab, "users", "passwd", name, "--password-stdin", stdin="new\n")
    assert output == f"Changed the password of {name}.\n"
    assert succeed(lab, "users", "remove", name) == f"Removed user {name}.\n"
    rows = json.loads(succeed(lab, "users", "list", "--json"))
    assert name not in [row["name"] for row in rows]

    assert audited(lab, f"added user {name} (device limit 2).")
    assert audited(lab, f"changed the password of user {name}.")
    assert audited(lab, f"removed user {name}.")
    assert PASSWORD not in lab.log_path.read_text(errors="replace")


def test_voucher_commands_change_gateway(lab: Lab, tmp_path: Path) -> None:
    codes_path = tmp_path / "codes.csv"
    output = succeed(
        lab, "vouchers", "create", "--count", "2", "--duration", "10m",
        "--uses", "1", "--csv", str(codes_path),
    )  # fmt: skip
    first, second = output.split()
    with codes_path.open(newline="") as file:
        created = list(csv.DictReader(file))
    assert [row["code"] for row in created] == [first, second]
    assert stat.S_IMODE(codes_path.stat().st_mode) == 0o600
    first_id, second_id = (int(row["id"]) for row in created)

    output = succeed(lab, "vouchers", "revoke", first, str(second_id))
    assert output == f"Revoked voucher {first_id}.\nRevoked voucher {second_id}.\n"
    rows = json.loads(succeed(lab, "vouchers", "list", "--json"))
    states = {row["id"]: row["state"] for row in rows}
    assert states[first_id] == "revoked"
    assert states[second_id] == "revoked"

    export_path = tmp_path / "vouchers.csv"
    succeed(lab, "vouchers", "export", "--csv", str(export_path))
    with export_path.open(newline="") as file:
        exported = {row["id"]: row["state"] for row in csv.DictReader(file)}
    assert exported[str(first_id)] == "revoked"
    assert stat.S_IMODE(export_path.stat().st_mode) == 0o600

    assert audited(lab, f"created 2 voucher(s), ids {first_id} to {second_id}")
    assert audited(lab, f"revoked voucher {first_id} (given by code).")
    assert audited(lab, f"revoked voucher {second_id} (given by id).")
    log = lab.log_path.read_text(errors="replace")
    assert first not in log
    assert first.replace("-", "") not in log

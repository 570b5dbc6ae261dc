"""`capport doctor` in a throwaway namespace, with passing and failing hosts.

Each test builds a namespace with a bridge as LAN interface carrying the
portal address and forwarding on, breaks one thing, runs the command
line inside it and reads the check's line from the report. The
namespace is deleted afterwards, even when the test fails.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from netns import Namespace, bridge_host

from capport.lab import Lab
from capport.lab.labconfig import render_toml

pytestmark = pytest.mark.lab

PORTAL = "192.0.2.1"

# Binds the DNS and DHCP ports as dnsmasq would, then waits to be killed.
SERVICES = """
import socket, sys, time
held = []
for kind, address, port in ((socket.SOCK_DGRAM, sys.argv[1], 53),
                            (socket.SOCK_STREAM, sys.argv[1], 53),
                            (socket.SOCK_DGRAM, "0.0.0.0", 67)):
    sock = socket.socket(socket.AF_INET, kind)
    sock.bind((address, port))
    if kind == socket.SOCK_STREAM:
        sock.listen()
    held.append(sock)
print("ready", flush=True)
time.sleep(600)
"""


@pytest.fixture
def host() -> Iterator[Namespace]:
    """A namespace with a bridge lan0 at {PORTAL}/24 and IPv4 forwarding on."""
    with bridge_host("doctor", PORTAL) as namespace:
        yield namespace


@pytest.fixture
def services(host: Namespace) -> Iterator[None]:
    """DNS on the portal address and DHCP on every address, in the namespace."""
    argv = ["ip", "netns", "exec", host.name, sys.executable, "-c", SERVICES, PORTAL]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        yield
    finally:
        process.kill()
        process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()


def write_config(directory: Path, **sections: dict[str, Any]) -> Path:
    document: dict[str, dict[str, Any]] = {
        "gateway": {"interface": "lan0"},
        "portal": {"address": PORTAL},
        "store": {"path": str(directory / "state" / "capport.db")},
        "control": {"socket": str(directory / "control.sock")},
        "firewall": {"table": "capdoctor"},
    }
    for name, values in sections.items():
        document[name] = {**document.get(name, {}), **values}
    path = directory / "capport.toml"
    path.write_text(render_toml(document))
    return path


def doctor(host: Namespace, config: Path) -> tuple[int, dict[str, str]]:
    """Run capport doctor in host; return its exit status and each check's text.

    A check's text is its line with the detail and fix lines under it.
    """
    argv = ["ip", "netns", "exec", host.name, sys.executable, "-m", "capport"]
    result = subprocess.run(
        [*argv, "doctor", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines: dict[str, str] = {}
    name = ""
    for line in result.stdout.splitlines():
        status, _, rest = line.partition("  ")
        if status.strip() in ("ok", "warn", "fail"):
            name = rest.strip().split("  ")[0]
            lines[name] = line
        elif name and line.startswith(" "):
            lines[name] += "\n" + line.strip()
    assert lines, result.stdout + result.stderr
    return result.returncode, lines


def status_of(lines: dict[str, str], name: str) -> str:
    return lines[name].split()[0]


def write_certificate(directory: Path, days_left: float) -> tuple[Path, Path]:
    """Write a self-signed certificate for portal.lab ending days_left from now."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "portal.lab")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=400))
        .not_valid_after(now + datetime.timedelta(days=days_left))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("portal.lab")]), False)
        .sign(key, hashes.SHA256())
    )
    certificate_path = directory / "portal.pem"
    key_path = directory / "portal-key.pem"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certificate_path, key_path


@pytest.mark.usefixtures("services")
def test_prepared_host_passes(host: Namespace, tmp_path: Path) -> None:
    code, lines = doctor(host, write_config(tmp_path))
    assert code == 0, lines
    assert all(text.startswith("ok") for text in lines.values()), lines


def test_missing_services_only_warn(host: Namespace, tmp_path: Path) -> None:
    code, lines = doctor(host, write_config(tmp_path))
    assert code == 0, lines
    assert status_of(lines, "dns") == "warn"
    assert status_of(lines, "dhcp") == "warn"


def test_forwarding_off_fails(host: Namespace, tmp_path: Path) -> None:
    host.sysctl("net.ipv4.ip_forward", "0")
    code, lines = doctor(host, write_config(tmp_path))
    assert code == 1
    assert status_of(lines, "forwarding") == "fail"
    assert "net.ipv4.ip_forward" in lines["forwarding"]


def test_missing_interface_fails(host: Namespace, tmp_path: Path) -> None:
    code, lines = doctor(host, write_config(tmp_path, gateway={"interface": "lan9"}))
    assert code == 1
    assert status_of(lines, "interface") == "fail"
    assert "lan9" in lines["interface"]


def test_missing_address_fails(host: Namespace, tmp_path: Path) -> None:
    config = write_config(tmp_path, portal={"address": "192.0.2.99"})
    code, lines = doctor(host, config)
    assert code == 1
    assert status_of(lines, "interface") == "fail"
    assert "192.0.2.99 is not assigned to lan0" in lines["interface"]


def test_port_in_use_fails(host: Namespace, tmp_path: Path) -> None:
    with host.entered():
        import socket

        listener = socket.create_server((PORTAL, 80))
    try:
        code, lines = doctor(host, write_config(tmp_path))
    finally:
        listener.close()
    assert code == 1
    assert status_of(lines, "ports") == "fail"
    assert f"portal.port {PORTAL}:80" in lines["ports"]


def test_absent_address_not_running_capport(host: Namespace, tmp_path: Path) -> None:
    # A capport elsewhere holds the store's lock, as when the doctor runs
    # in the host namespace and the gateway in its own.
    config = write_config(tmp_path, portal={"address": "192.0.2.99"})
    lock_path = tmp_path / "state" / "capport.db.lock"
    lock_path.parent.mkdir()
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, lines = doctor(host, config)
    finally:
        os.close(fd)
    assert code == 1
    assert status_of(lines, "ports") == "fail"
    assert "192.0.2.99 is not an address in this network namespace" in lines["ports"]
    assert "running capport" not in lines["ports"]


def test_expired_certificate_fails(host: Namespace, tmp_path: Path) -> None:
    certificate, key = write_certificate(tmp_path, days_left=-1)
    tls = {"certificate": str(certificate), "key": str(key), "hostname": "portal.lab"}
    code, lines = doctor(host, write_config(tmp_path, tls=tls))
    assert code == 1
    assert status_of(lines, "certificate") == "fail"
    assert "expired" in lines["certificate"]


def test_expiring_certificate_warns(host: Namespace, tmp_path: Path) -> None:
    certificate, key = write_certificate(tmp_path, days_left=10)
    tls = {"certificate": str(certificate), "key": str(key), "hostname": "portal.lab"}
    code, lines = doctor(host, write_config(tmp_path, tls=tls))
    assert code == 0, lines
    assert status_of(lines, "certificate") == "warn"


def test_unwritable_store_fails(host: Namespace, tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("")
    store = {"path": str(tmp_path / "taken" / "capport.db")}
    code, lines = doctor(host, write_config(tmp_path, store=store))
    assert code == 1
    assert status_of(lines, "store") == "fail"


def test_invalid_configuration_fails(host: Namespace, tmp_path: Path) -> None:
    path = tmp_path / "capport.toml"
    path.write_text('[gateway]\ninterface = "lan0"\n')
    code, lines = doctor(host, path)
    assert code == 1
    assert status_of(lines, "configuration") == "fail"
    assert "portal: required key is missing" in lines["configuration"]


def test_running_gateway_ports_ok(lab: Lab) -> None:
    argv = [sys.executable, "-m", "capport", "doctor", "--config", str(lab.config_path)]
    result = lab.run("gw", argv, timeout=60)
    ports = [line for line in result.stdout.splitlines() if "  ports  " in line]
    assert ports, result.stdout + result.stderr
    assert ports[0].startswith("ok"), result.stdout
    assert "in use by the running capport" in ports[0]

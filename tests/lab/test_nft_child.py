"""The child `nft -f -` that runs the enforcer's text install.

Each test creates its own namespace and builds the enforcer in it, then
calls the enforcer from the test's thread, which is back in the host's
namespace, so the child must enter the enforcer's namespace by itself.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from ipaddress import IPv4Address

import pytest
from netns import Namespace

from capport.bench.devices import fake_devices
from capport.enforce import nftchild
from capport.enforce.base import Grant
from capport.enforce.nftables import NftablesEnforcer
from capport.enforce.ruleset import RulesetSpec
from capport.errors import EnforcementError
from capport.models import Device

pytestmark = [pytest.mark.lab, pytest.mark.timeout(60)]

TABLE = f"capchild{os.getpid()}"
SPEC = RulesetSpec(
    table=TABLE,
    lan_interface="lan0",
    portal_address=IPv4Address("192.0.2.1"),
    portal_port=8080,
    responder_port=8511,
)
CLIENT = Device.parse("02:00:00:00:00:11", "192.0.2.11")


@pytest.fixture
def namespace() -> Iterator[Namespace]:
    created = Namespace.create("nft")
    try:
        yield created
    finally:
        created.delete()


@pytest.fixture
def enforcer(namespace: Namespace) -> Iterator[NftablesEnforcer]:
    with namespace.entered():
        enforcer = NftablesEnforcer(SPEC)
    try:
        yield enforcer
    finally:
        enforcer.close()


def host_has_table() -> bool:
    listing = subprocess.run(
        ["nft", "list", "tables", "inet"], capture_output=True, text=True, check=True
    )
    return f"table inet {TABLE}\n" in listing.stdout + "\n"


def test_child_installs_in_enforcer_namespace(
    namespace: Namespace, enforcer: NftablesEnforcer
) -> None:
    enforcer.install([Grant(CLIENT, 600)])

    assert f"table inet {TABLE}" in namespace.run(["nft", "list", "tables"])
    assert not host_has_table()
    assert list(enforcer.authorised()) == [CLIENT]


def test_child_error_names_nft_message(enforcer: NftablesEnforcer) -> None:
    enforcer.install([])
    # The kernel rejects a nat chain on the forward hook.
    buffer = (
        f"add chain inet {TABLE} broken "
        "{ type nat hook forward priority 0; policy accept; }\n"
    )

    with pytest.raises(EnforcementError) as raised:
        enforcer.apply_text_in_child(buffer, "adding a broken chain")

    message = str(raised.value)
    assert message.startswith("adding a broken chain failed: ")
    assert "Could not process rule: Operation not supported" in message
    assert "nft exit status 1" in message
    assert "/dev/stdin" not in message
    assert "^^^" not in message


def test_child_listing_of_missing_set_fails(enforcer: NftablesEnforcer) -> None:
    with pytest.raises(EnforcementError, match="No such file or directory"):
        enforcer.apply_text_in_child(f"list set inet {TABLE} none\n", "listing")


def test_child_returns_nft_output(enforcer: NftablesEnforcer) -> None:
    enforcer.install([Grant(CLIENT, 600)])

    output = enforcer.apply_text_in_child(
        f"list set inet {TABLE} allowed4\n", "listing"
    )

    assert "02:00:00:00:00:11 . 192.0.2.11" in output


def test_child_timeout_kills_nft(enforcer: NftablesEnforcer) -> None:
    enforcer.install([Grant(CLIENT, 600)])
    many = [Grant(device, 600) for device in fake_devices(20_000)]
    enforcer.child_timeout = 0.001

    with pytest.raises(EnforcementError, match="timed out after 0.001 s"):
        enforcer.install(many)

    enforcer.child_timeout = 30.0
    # The kernel applies a batch whole or not at all, whenever nft is killed.
    authorised = set(enforcer.authorised())
    assert authorised in ({CLIENT}, {grant.device for grant in many})


def test_failed_child_install_keeps_previous_table(
    enforcer: NftablesEnforcer,
) -> None:
    enforcer.install([Grant(CLIENT, 600)])
    # nft rejects an interface name longer than the kernel's 16 bytes.
    enforcer.spec = replace(SPEC, lan_interface="lan-name-too-long-0")
    other = Device.parse("02:00:00:00:00:12", "192.0.2.12")

    with pytest.raises(EnforcementError) as raised:
        enforcer.install([Grant(other, 600)])

    message = str(raised.value)
    assert message.startswith(f"installing table inet {TABLE} with 1 authorised")
    assert "String exceeds maximum length of 16" in message

    assert list(enforcer.authorised()) == [CLIENT]


def test_child_reads_buffer_written_in_slices(
    enforcer: NftablesEnforcer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Slices of 100 characters split element lines and addresses.
    monkeypatch.setattr(nftchild, "WRITE_CHUNK", 100)
    devices = fake_devices(50)

    enforcer.install([Grant(device, 600) for device in devices])

    assert sorted(enforcer.authorised(), key=str) == sorted(devices, key=str)

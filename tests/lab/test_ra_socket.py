"""Opening the router-advertisement socket on an interface that just came up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from netns import Namespace

from capport.ra import open_socket


@pytest.fixture
def namespace() -> Iterator[Namespace]:
    created = Namespace.create("ra")
    try:
        yield created
    finally:
        created.delete()


def test_socket_waits_for_tentative_link_local(namespace: Namespace) -> None:
    namespace.ip("link", "add", "lan0", "type", "veth", "peer", "name", "lan1")
    namespace.ip("link", "set", "lan1", "up")
    namespace.ip("link", "set", "lan0", "up")
    with namespace.entered():
        addresses = namespace.ip("-6", "addr", "show", "dev", "lan0")
        sock, source, _ = open_socket("lan0")
    sock.close()
    # The address was still in duplicate address detection when the socket
    # was opened, so the test covers the wait and not only a plain bind.
    assert "tentative" in addresses
    assert source.is_link_local

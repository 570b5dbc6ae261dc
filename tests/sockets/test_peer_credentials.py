"""The control socket peer's credentials, read from the kernel."""

from __future__ import annotations

import os
import socket

from capport.admin.peers import PeerCredentials, read_peer_credentials


def test_socketpair_peer_is_this_process() -> None:
    first, second = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with first, second:
        credentials = read_peer_credentials(first)
    assert credentials == PeerCredentials(os.getpid(), os.getuid(), os.getgid())


def test_closed_socket_has_no_credentials() -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.close()
    assert read_peer_credentials(sock) is None

"""`capport run`: the gateway daemon.

Start-up order matters: everything that can reject the configuration runs
before the first change to the host, and the firewall is reconciled with
the store before any listener accepts a client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator

import uvicorn
import uvloop
from starlette.types import ASGIApp

from capport.config import Config
from capport.control import bind_control_socket, create_control_app
from capport.enforce.nftables import NftablesEnforcer
from capport.gateway import Gateway
from capport.intercept.server import Responder
from capport.netlink import NetlinkNeighbours, check_host
from capport.portal.app import create_portal_app
from capport.store import open_store
from capport.tokens import TokenSigner

log = logging.getLogger("capport.daemon")


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the daemon."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _web_server(app: ASGIApp) -> _EmbeddedServer:
    config = uvicorn.Config(
        app,
        loop="none",
        http="httptools",
        lifespan="off",
        log_config=None,
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=3,
    )
    return _EmbeddedServer(config)


def _portal_socket(config: Config) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((str(config.portal.address), config.portal.port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def run(config: Config) -> None:
    """Run the gateway until SIGTERM or SIGINT."""
    check_host(config)
    uvloop.run(serve(config))


async def serve(config: Config) -> None:
    """Start every part of the gateway, wait for a stop signal, stop them."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    store = open_store(str(config.store.path), config.store.synchronous)
    await store.open()
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(store.close)
        secret = await store.secret()
        signer = TokenSigner(secret, config.session.token_lifetime)
        enforcer = NftablesEnforcer.from_config(config)
        neighbours = NetlinkNeighbours(config.gateway.interface)
        gateway = Gateway(store, enforcer, neighbours, config.session.duration)
        await gateway.start()

        responder = Responder(
            config.responder,
            config.portal.base_url(),
            signer,
            gateway.is_authorised_ip,
        )
        await responder.start(str(config.portal.address), config.responder.port)
        stack.push_async_callback(responder.stop)

        portal = _web_server(create_portal_app(gateway, signer, config, secret))
        control = _web_server(create_control_app(gateway))
        sockets = {
            portal: _portal_socket(config),
            control: bind_control_socket(config.control.socket),
        }
        serving = [
            asyncio.create_task(server.serve(sockets=[sock]))
            for server, sock in sockets.items()
        ]
        expiry = asyncio.create_task(gateway.run_expiry())
        log.info(
            "Gateway running on %s: portal %s, responder port %d, %d sessions.",
            config.gateway.interface,
            config.portal.base_url(),
            config.responder.port,
            len(gateway.sessions()),
        )
        await _wait(stop, [*serving, expiry])
        log.info("Stopping; authorised devices keep their access.")
        for server in sockets:
            server.should_exit = True
        expiry.cancel()
        await asyncio.gather(*serving, expiry, return_exceptions=True)
        config.control.socket.unlink(missing_ok=True)
    log.info("Gateway stopped.")


async def _wait(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    """Wait for a stop signal, or for a part of the gateway to fail."""
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    for task in done:
        if task is not stopper and task.exception() is not None:
            log.error("A gateway task failed: %r", task.exception())
            raise task.exception()  # type: ignore[misc]

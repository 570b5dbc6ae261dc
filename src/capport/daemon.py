"""`capport run`: the gateway daemon.

Start-up order matters: everything that can reject the configuration runs
before the first change to the host (the store file and its lock included),
and the firewall is reconciled with the store before any listener accepts a
client.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
from collections.abc import Coroutine
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

import uvloop
from starlette.types import ASGIApp

from capport import heap
from capport.accounting import configured_entitlement
from capport.acct.recorder import AccountingRecorder
from capport.admin.app import create_admin_app, create_socket_app
from capport.admin.context import AdminContext
from capport.admin.history import Sampler
from capport.admin.peers import PeerCredentialsProtocol
from capport.auth.radius.method import RadiusAuthenticator, build_radius
from capport.config import Config, load_config
from capport.control import bind_control_socket
from capport.enforce.nftables import NftablesEnforcer
from capport.enforce.ruleset import RulesetSpec
from capport.errors import CapportError, ConfigError
from capport.garden import WalledGarden
from capport.gateway import Gateway
from capport.intercept.server import Responder
from capport.lan import LanReader
from capport.listeners import (
    FILE_LIMIT_MARGIN,
    InstanceLock,
    bind_tcp,
    check_forwarding,
    check_listeners,
    listen_addresses,
    raise_file_limit,
)
from capport.logformat import ALWAYS_LOG, one_line
from capport.logs import configure_logging
from capport.metrics import LoginCounter
from capport.neighbour_events import NeighbourEvents
from capport.netlink import NetlinkNeighbours, check_host
from capport.portal.accesslog import AccessLogMiddleware
from capport.portal.app import create_portal_app
from capport.portal.guard import ConnectionGuard, guarded_protocol
from capport.portal.views import GRANT_METHOD
from capport.probes import ProbeTable, merge_probes
from capport.ra import RouterAdvertiser, settings_from_config
from capport.reload import merged, restart_keys
from capport.store import open_store
from capport.tlsinit import check_tls_files
from capport.tokens import TokenSigner
from capport.webserver import EmbeddedServer, web_server

log = logging.getLogger("capport.daemon")


def _web_server(
    app: ASGIApp,
    name: str,
    certificate: Path | None = None,
    key: Path | None = None,
    guard: ConnectionGuard | None = None,
    http: type[asyncio.Protocol] | str = "httptools",
) -> EmbeddedServer:
    protocol = guarded_protocol(guard) if guard is not None else http
    return web_server(app, name, http=protocol, certificate=certificate, key=key)


async def _start_responder(
    responder: Responder, addresses: list[str], port: int
) -> None:
    try:
        await responder.start(addresses, port)
    except OSError as error:
        raise ConfigError(
            f"responder.port: cannot listen on {', '.join(addresses)} port {port}: "
            f"{error.strerror}; "
            "stop the program using it (is another capport running?) or choose "
            "another port"
        ) from None


def check(config: Config) -> None:
    """Raise ConfigError for anything on the host that would stop the gateway."""
    check_tls_files(config)
    check_host(config)
    check_forwarding()
    InstanceLock(config.store.path).check_free()
    check_listeners(config)
    settings_from_config(config)
    if config.admin.enabled:
        bind_tcp(str(config.admin.address), config.admin.port, "admin.port").close()


def run(config: Config, config_path: Path | None = None) -> None:
    """Run the gateway until SIGTERM or SIGINT; SIGHUP reloads config_path."""
    # The checks bind and close every TCP listener, so a port in use stops
    # the start before the store file, its lock or the firewall is created.
    check(config)
    raise_file_limit(
        config.responder.max_connections
        + config.portal.max_connections
        + FILE_LIMIT_MARGIN
    )
    uvloop.run(serve(config, config_path))


async def serve(config: Config, config_path: Path | None = None) -> None:
    """Start every part of the gateway, wait for a stop signal, stop them."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    async with contextlib.AsyncExitStack() as stack:
        # Every listener is bound, and the RA socket opened, before the store
        # and the firewall change, so a port in use stops the start with
        # nothing on the host changed.
        addresses = listen_addresses(config)
        portal_sockets = [
            bind_tcp(a, config.portal.port, "portal.port") for a in addresses
        ]
        https_sockets = []
        if config.tls.enabled:
            https_sockets = [
                bind_tcp(a, config.tls.port, "tls.port") for a in addresses
            ]
        for sock in [*portal_sockets, *https_sockets]:
            stack.callback(sock.close)
        admin_socket = None
        if config.admin.enabled:
            admin_address = str(config.admin.address)
            admin_socket = bind_tcp(admin_address, config.admin.port, "admin.port")
            stack.callback(admin_socket.close)
        advertiser = _open_advertiser(config)
        if advertiser is not None:
            stack.callback(advertiser.close)
        lock = InstanceLock(config.store.path)
        lock.acquire()
        stack.callback(lock.release)
        store = open_store(str(config.store.path), config.store.synchronous)
        await store.open()
        stack.push_async_callback(store.close)
        secret = await store.secret()
        signer = TokenSigner(secret, config.session.token_lifetime)
        enforcer = NftablesEnforcer.from_config(config)
        stack.callback(enforcer.close)
        neighbours = NetlinkNeighbours(config.gateway.interface)
        stack.callback(neighbours.close)
        gateway = Gateway(
            store,
            enforcer,
            neighbours,
            config.session.duration,
            device_limit_policy=config.auth.device_limit_policy,
            defaults=configured_entitlement(config.session, GRANT_METHOD),
        )
        gateway.set_configured_macs(
            config.access.trusted_macs, config.access.blocked_macs
        )
        garden = WalledGarden(enforcer, config.walled_garden)
        await garden.resolve_once()
        responder = Responder(
            config.responder,
            config.portal_url(),
            signer,
            gateway.is_authorised_ip,
            ProbeTable(merge_probes(config.probes)),
            portal_url6=config.portal_url6(),
            has_session=gateway.has_session_ip,
            address_epoch=gateway.address_epoch,
        )
        await _start_responder(responder, addresses, config.responder.port)
        stack.push_async_callback(responder.stop)
        control_socket = bind_control_socket(config.control.socket)
        gateway.add_observer(LoginCounter())
        recorder = AccountingRecorder(
            store,
            config.store.retention,
            counters=enforcer.counters,
            usage=gateway.usage,
        )
        gateway.add_observer(recorder)
        stack.push_async_callback(recorder.close)
        await gateway.start()
        events = _watch_neighbours(gateway, neighbours.index)
        stack.callback(events.close)

        sampler = Sampler(gateway, store, config.admin.history_retention)
        lan = LanReader(config.gateway.interface)
        stack.callback(lan.close)
        admin = AdminContext(
            gateway,
            store,
            sampler,
            config.firewall.table,
            enforcer.exists,
            lambda: responder.stats,
            lan=lan.read,
        )
        radius: RadiusAuthenticator | None = None
        background = [
            asyncio.create_task(gateway.run_expiry()),
            asyncio.create_task(
                gateway.run_accounting(config.session.accounting_interval)
            ),
            asyncio.create_task(sampler.run()),
            asyncio.create_task(recorder.run()),
        ]
        if config.walled_garden.hosts:
            background.append(asyncio.create_task(garden.run()))
        if advertiser is not None:
            background.append(asyncio.create_task(advertiser.run()))
        if config.radius is not None:
            radius, accounting = build_radius(config, enforcer.usage)
            if accounting is not None:
                gateway.add_observer(accounting)
                background.append(asyncio.create_task(accounting.run()))
                stack.push_async_callback(accounting.close)

        portal_app = AccessLogMiddleware(
            create_portal_app(gateway, signer, config, secret, radius)
        )
        guard = ConnectionGuard(
            config.portal.max_connections,
            config.portal.max_connections_per_client,
            config.portal.request_timeout,
        )
        control_server = _web_server(
            create_socket_app(admin), "control API", http=PeerCredentialsProtocol
        )
        sockets = {
            _web_server(portal_app, "portal", guard=guard): portal_sockets,
            control_server: [control_socket],
        }
        if admin_socket is not None:
            admin_app = create_admin_app(
                admin,
                metrics_require_token=config.admin.metrics_require_token,
                origins=config.admin.origins,
            )
            sockets[_web_server(admin_app, "admin API")] = [admin_socket]
        if https_sockets:
            # The same application over HTTPS, for the portal and the
            # Captive Portal API; uvicorn loads the files and fails on a
            # bad certificate or key before any client connects.
            tls = config.tls
            https = _web_server(
                portal_app, "portal over HTTPS", tls.certificate, tls.key, guard=guard
            )
            sockets[https] = https_sockets
        serving = [
            asyncio.create_task(server.serve(sockets=listening))
            for server, listening in sockets.items()
        ]
        if config_path is not None:
            reloader = _Reloader(config, config_path, gateway, enforcer, signer)
            loop.add_signal_handler(signal.SIGHUP, reloader.schedule)
        heap.freeze_start_objects()
        log.info(
            "Gateway running on %s: portal %s, responder port %d, %d sessions.",
            config.gateway.interface,
            config.portal_url(),
            config.responder.port,
            len(gateway.sessions()),
        )
        await _wait(stop, [*serving, *background])
        log.info("Stopping; authorised devices keep their access.")
        for server in sockets:
            server.should_exit = True
        for task in background:
            task.cancel()
        await asyncio.gather(*serving, *background, return_exceptions=True)
        config.control.socket.unlink(missing_ok=True)
    log.info("Gateway stopped.")


def _open_advertiser(config: Config) -> RouterAdvertiser | None:
    """Open the sender of the Captive-Portal RA option, unless it is off."""
    settings = settings_from_config(config)
    if settings is None:
        return None
    advertiser = RouterAdvertiser(settings)
    try:
        advertiser.open()
    except OSError as error:
        raise ConfigError(
            f"provisioning.ra_captive_portal: cannot open a raw ICMPv6 socket "
            f"on {settings.interface}: {error.strerror}; {_advertiser_fix(error)} "
            "or set provisioning.ra_captive_portal = false"
        ) from None
    return advertiser


def _advertiser_fix(error: OSError) -> str:
    if error.errno == errno.EADDRNOTAVAIL:
        return (
            "its link-local address is still tentative (duplicate address "
            "detection has not finished or found a duplicate, see `ip -6 addr`)"
        )
    return "run as root (or with CAP_NET_RAW)"


def _watch_neighbours(gateway: Gateway, index: int) -> NeighbourEvents:
    """Authorise new IPv6 addresses of authorised MACs as the kernel resolves them."""
    tasks: set[asyncio.Task[object]] = set()

    def spawn(coroutine: Coroutine[Any, Any, object]) -> None:
        task: asyncio.Task[object] = asyncio.create_task(coroutine)
        tasks.add(task)
        task.add_done_callback(_finish_learning)
        task.add_done_callback(tasks.discard)

    def on_neighbour(mac: str, ip: IPv6Address) -> None:
        gateway.note_ipv6(mac, ip)
        # Most messages are state changes of addresses already authorised
        # or of captive devices, so they start no task.
        if gateway.would_learn(mac, ip):
            spawn(gateway.learn_ipv6(mac, ip))

    gateway.follow_neighbour_events()
    events = NeighbourEvents(
        index,
        on_neighbour=on_neighbour,
        on_overflow=lambda: spawn(gateway.learn_all_ipv6()),
    )
    events.start()
    # Entries the kernel resolved between the reconciliation and the start
    # of the subscription produced no message that was read.
    spawn(gateway.learn_all_ipv6())
    return events


def _finish_learning(task: asyncio.Task[object]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error("Authorising a new IPv6 address failed: %s", error)


async def _wait(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    """Wait for a stop signal, or for a part of the gateway to fail."""
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    for task in done:
        if task is not stopper and task.exception() is not None:
            log.error("A gateway task failed: %r", task.exception())
            raise task.exception()  # type: ignore[misc]


class _Reloader:
    """Applies the live keys of the configuration file on SIGHUP.

    An invalid file changes nothing; keys that need a restart are named in
    a warning and keep their running values.
    """

    def __init__(
        self,
        config: Config,
        path: Path,
        gateway: Gateway,
        enforcer: NftablesEnforcer,
        signer: TokenSigner,
    ) -> None:
        self._config = config
        self._path = path
        self._gateway = gateway
        self._enforcer = enforcer
        self._signer = signer
        self._running: asyncio.Task[None] | None = None
        # Set once a reload has begun to rebuild the firewall with new keys.
        self._rebuilding = False

    def schedule(self) -> None:
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._reload())

    def _set_configured_macs(self, config: Config) -> None:
        access = config.access
        self._gateway.set_configured_macs(access.trusted_macs, access.blocked_macs)

    async def _reload(self) -> None:
        log.info("Reloading the configuration from %s.", self._path)
        self._rebuilding = False
        try:
            await self._load_and_apply()
        except Exception as error:
            # Nothing awaits this task, so an error not caught below would
            # otherwise surface only when asyncio collects the task.
            log.error(
                "Reload failed; the running configuration is kept: %r",
                error,
                exc_info=True,
                extra=ALWAYS_LOG,
            )
            self._apply_settings(self._config)
            if self._rebuilding:
                await self._rebuild_running()

    async def _rebuild_running(self) -> None:
        """Rebuild the firewall with the running configuration's keys."""
        try:
            await self._gateway.start()
        except Exception as error:
            log.error(
                "Rebuilding the firewall with the running configuration failed: "
                "%r; restart capport to reconcile it with the store",
                error,
                exc_info=True,
                extra=ALWAYS_LOG,
            )

    async def _load_and_apply(self) -> None:
        try:
            new = load_config(self._path)
        except CapportError as error:
            log.error(
                "Reload failed; the running configuration is kept: %s",
                one_line(str(error)),
                extra=ALWAYS_LOG,
            )
            return
        applied = merged(self._config, new)
        running_spec = self._enforcer.spec
        self._enforcer.spec = RulesetSpec.from_config(applied)
        # start() loads the MAC lists again. Sessions already granted keep
        # the limits they were granted with.
        self._set_configured_macs(applied)
        self._rebuilding = True
        try:
            await self._gateway.start()
        except CapportError as error:
            self._enforcer.spec = running_spec
            self._set_configured_macs(self._config)
            log.error(
                "Reload failed; the running firewall is kept: %s",
                one_line(str(error)),
                extra=ALWAYS_LOG,
            )
            return

        self._apply_settings(applied)
        try:
            configure_logging(applied.log)
        except CapportError as error:
            # An access log file that cannot be opened leaves the old handlers.
            log.error(
                "Reload kept the previous log settings: %s", error, extra=ALWAYS_LOG
            )
            applied = applied.model_copy(update={"log": self._config.log})

        pending = restart_keys(self._config, new)
        if pending:
            log.warning(
                "Reloaded, but these keys only change on restart: %s.",
                ", ".join(pending),
            )
        self._config = applied
        log.info("Configuration reloaded.")

    def _apply_settings(self, config: Config) -> None:
        """Set the live settings of the gateway, the firewall and the signer.

        The ruleset in the kernel changes only when the gateway's start()
        rebuilds it.
        """
        self._enforcer.spec = RulesetSpec.from_config(config)
        self._set_configured_macs(config)
        self._gateway.set_session_duration(config.session.duration)
        self._gateway.set_device_limit_policy(config.auth.device_limit_policy)
        self._gateway.set_defaults(configured_entitlement(config.session, GRANT_METHOD))
        self._signer.lifetime = config.session.token_lifetime

"""The /metrics registry: event metrics plus the gateway's state at scrape time."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from capport.gateway import Gateway
from capport.intercept.server import ResponderStats
from capport.metrics import EVENT_METRICS, KNOWN_METHODS
from capport.pacing import AccountingPacer


class GatewayCollector(Collector):
    """Reads the gateway's sessions and the responder's counters at scrape time."""

    def __init__(
        self,
        gateway: Gateway,
        responder_stats: Callable[[], ResponderStats | None],
    ) -> None:
        self._gateway = gateway
        self._responder_stats = responder_stats

    def collect(self) -> Iterator[Metric]:
        yield self._active_sessions()
        pacer = self._gateway.accounting_pacer
        if pacer is not None:
            yield from _accounting_metrics(pacer)
        stats = self._responder_stats()
        if stats is not None:
            yield from _responder_metrics(stats)

    def _active_sessions(self) -> Metric:
        counts = collections.Counter(dict.fromkeys(KNOWN_METHODS, 0))
        counts.update(session.method for session in self._gateway.sessions())
        family = GaugeMetricFamily(
            "capport_active_sessions",
            "Sessions now active, by sign-in method.",
            labels=["method"],
        )
        for method, count in sorted(counts.items()):
            family.add_metric([method], count)
        return family


def _accounting_metrics(pacer: AccountingPacer) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "capport_accounting_interval_seconds",
        "Effective time between accounting passes: session.accounting_interval, "
        f"or {pacer.factor:g} times the CPU time of the last pass if that is longer.",
        value=pacer.interval,
    )
    if pacer.last_cpu_seconds is not None:
        yield GaugeMetricFamily(
            "capport_accounting_pass_cpu_seconds",
            "Process CPU time the last accounting pass used.",
            value=pacer.last_cpu_seconds,
        )


def _responder_metrics(stats: ResponderStats) -> Iterator[Metric]:
    responses = CounterMetricFamily(
        "capport_responder_responses",
        "Answers of the intercepting responder: captive is a 511 or a probe's "
        "redirect to the portal before login, probe_answer the expected answer "
        "to a probe after login.",
        labels=["kind"],
    )
    responses.add_metric(["captive"], stats.captive_responses)
    responses.add_metric(["probe_answer"], stats.redirects)
    yield responses
    connections = CounterMetricFamily(
        "capport_responder_connections",
        "Connections to the responder, accepted or closed at once over a limit.",
        labels=["outcome"],
    )
    connections.add_metric(["accepted"], stats.connections_accepted)
    connections.add_metric(["rejected"], stats.connections_rejected)
    yield connections
    yield GaugeMetricFamily(
        "capport_responder_open_connections",
        "Connections the responder has open now.",
        value=stats.open_connections,
    )


def build_registry(collector: Collector) -> CollectorRegistry:
    """Return a registry with the event metrics and collector."""
    registry = CollectorRegistry(auto_describe=True)
    for metric in EVENT_METRICS:
        registry.register(metric)
    registry.register(collector)
    return registry

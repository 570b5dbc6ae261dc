"""The responder benchmark's arithmetic: CPU time per request and its table."""

import math

from capport.bench.parsing import CpuKinds, WrkResult
from capport.bench.process import ticks_to_seconds
from capport.bench.responder import Run, _cost_table, _per_request


def wrk(requests: int) -> WrkResult:
    return WrkResult(requests, 5.0, requests / 5.0, {50.0: 0.0001, 99.0: 0.0003}, 0, {})


def run(server: str, per_request: tuple[float, float, float]) -> Run:
    return Run(server, "keep-alive", wrk(1000), 0.97, {}, per_request)


def test_per_request_divides_ticks_by_requests() -> None:
    user, system, interrupts = _per_request(CpuKinds(10, 30, 20), wrk(100_000))

    assert math.isclose(user, ticks_to_seconds(10) / 100_000 * 1e6)
    assert math.isclose(system, ticks_to_seconds(30) / 100_000 * 1e6)
    assert math.isclose(interrupts, ticks_to_seconds(20) / 100_000 * 1e6)


def test_per_request_without_requests_is_unknown() -> None:
    assert all(math.isnan(value) for value in _per_request(CpuKinds(1, 1, 1), wrk(0)))


def test_cost_table_shows_medians_per_server() -> None:
    runs = [
        run("capport", (0.9, 2.8, 1.7)),
        run("capport", (1.1, 3.0, 1.5)),
        run("capport", (1.0, 2.9, 1.6)),
        run("nginx", (1.0, 2.7, 1.7)),
    ]

    table = _cost_table(runs)

    assert "| capport | keep-alive | 1.00 | 2.90 | 1.60 | 5.50 |" in table
    assert "| nginx | keep-alive | 1.00 | 2.70 | 1.70 | 5.40 |" in table
    assert "new connection each" not in table

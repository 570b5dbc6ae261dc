import pytest

from capport.bench.idlecpu import (
    SAMPLE_SECONDS,
    Burst,
    CpuSample,
    find_bursts,
    measure_idle_share,
    pass_bursts,
    summarise,
)


class FakeDaemon:
    """A daemon that runs a pass of pass_cpu seconds every cycle seconds.

    Its clock moves only when the measurement sleeps, like a monotonic clock
    read between sleeps.
    """

    def __init__(self, pass_cpu: float, rest: float, first_pass_at: float) -> None:
        self.now = 0.0
        self.pass_cpu = pass_cpu
        self.rest = rest
        self.first_pass_at = first_pass_at

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def cpu(self) -> float:
        """Return CPU seconds used by now: passes at full speed, 1 % otherwise."""
        idle = 0.01 * self.now
        if self.now < self.first_pass_at:
            return idle
        cycle = self.pass_cpu + self.rest
        elapsed = self.now - self.first_pass_at
        done, into = divmod(elapsed, cycle)
        return idle + done * self.pass_cpu + min(into, self.pass_cpu)


def series(rates: list[float], step: float = 0.25) -> list[CpuSample]:
    samples = [CpuSample(0.0, 0.0)]
    for rate in rates:
        last = samples[-1]
        samples.append(CpuSample(last.at + step, last.cpu + rate * step))
    return samples


def test_idle_samples_have_no_burst() -> None:
    assert find_bursts(series([0.01] * 40)) == []


def test_burst_ends_after_merge_gap() -> None:
    samples = series([0.0] * 4 + [1.0] * 8 + [0.0] * 10)
    bursts = find_bursts(samples)
    assert len(bursts) == 1
    assert bursts[0].end_index == 12
    assert bursts[0].cpu_seconds == pytest.approx(2.0)


def test_running_burst_not_reported() -> None:
    samples = series([0.0] * 4 + [1.0] * 8 + [0.0] * 2)
    assert find_bursts(samples) == []


def test_short_pause_merges_into_one_burst() -> None:
    samples = series([0.0] * 4 + [1.0] * 4 + [0.0] * 2 + [1.0] * 4 + [0.0] * 10)
    bursts = find_bursts(samples)
    assert len(bursts) == 1
    assert bursts[0].cpu_seconds == pytest.approx(2.0)


def test_summary_spans_burst_ends() -> None:
    rates = [0.0] * 4 + [1.0] * 4 + [0.0] * 36 + [1.0] * 4 + [0.0] * 36
    samples = series(rates + [1.0] * 4 + [0.0] * 10)
    share = summarise(samples, find_bursts(samples))
    assert share.aligned
    assert share.passes == 2
    assert share.window_seconds == pytest.approx(20.0)
    assert share.cpu_seconds == pytest.approx(2.0)
    assert share.share == pytest.approx(0.1)


def test_summary_without_bursts_uses_all_samples() -> None:
    samples = series([0.02] * 40)
    share = summarise(samples, [])
    assert not share.aligned
    assert share.passes == 0
    assert share.window_seconds == pytest.approx(10.0)
    assert share.share == pytest.approx(0.02)


def test_measure_covers_two_cycles() -> None:
    daemon = FakeDaemon(pass_cpu=3.0, rest=75.0, first_pass_at=20.0)
    share = measure_idle_share(
        daemon.cpu,
        first_pass_timeout=60.0,
        window_for=lambda cpu: 2.5 * (25 * cpu + cpu),
        clock=daemon.clock,
        sleep=daemon.sleep,
    )
    assert share.aligned
    assert share.passes == 2
    assert share.window_seconds == pytest.approx(2 * 78.0, abs=2 * SAMPLE_SECONDS)
    expected = (2 * 3.0 + 0.01 * 156.0) / 156.0
    assert share.share == pytest.approx(expected, rel=0.02)
    assert share.pass_cpu_seconds == pytest.approx([3.0, 3.0], abs=0.05)


def test_measure_stops_at_window_limit() -> None:
    daemon = FakeDaemon(pass_cpu=3.0, rest=75.0, first_pass_at=20.0)
    share = measure_idle_share(
        daemon.cpu,
        first_pass_timeout=60.0,
        window_for=lambda cpu: 100.0,
        clock=daemon.clock,
        sleep=daemon.sleep,
    )
    assert share.aligned
    assert share.passes == 1
    assert daemon.now <= 20.0 + 3.0 + 100.0 + 1.0


def test_measure_without_pass_returns_plain_share() -> None:
    daemon = FakeDaemon(pass_cpu=3.0, rest=75.0, first_pass_at=1000.0)
    share = measure_idle_share(
        daemon.cpu,
        first_pass_timeout=30.0,
        window_for=lambda cpu: 100.0,
        clock=daemon.clock,
        sleep=daemon.sleep,
    )
    assert not share.aligned
    assert share.window_seconds == pytest.approx(30.0, abs=SAMPLE_SECONDS)
    assert share.share == pytest.approx(0.01)


def test_small_bursts_not_passes() -> None:
    bursts = [Burst(10, 3.0), Burst(50, 0.06), Burst(90, 2.8)]
    assert pass_bursts(bursts) == [Burst(10, 3.0), Burst(90, 2.8)]


def test_measure_skips_small_periodic_bursts() -> None:
    daemon = FakeDaemon(pass_cpu=4.0, rest=96.0, first_pass_at=20.0)
    cpu_of_passes = daemon.cpu

    def cpu_with_sampler() -> float:
        # A 0.1 s burst at full speed every 43 s, like the usage sampler.
        cycles, into = divmod(daemon.now, 43.0)
        return cpu_of_passes() + cycles * 0.1 + min(into, 0.1)

    share = measure_idle_share(
        cpu_with_sampler,
        first_pass_timeout=60.0,
        window_for=lambda cpu: 2.2 * (25 * cpu + cpu) + 5,
        clock=daemon.clock,
        sleep=daemon.sleep,
    )
    assert share.aligned
    assert share.passes == 2
    assert share.window_seconds == pytest.approx(200.0, abs=2 * SAMPLE_SECONDS)
    assert share.pass_cpu_seconds == pytest.approx([4.0, 4.0], abs=0.1)

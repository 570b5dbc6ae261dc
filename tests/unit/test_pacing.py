import pytest

from capport.pacing import CPU_FACTOR, AccountingPacer


class FakeCpuClock:
    def __init__(self) -> None:
        self.seconds = 100.0

    def __call__(self) -> float:
        return self.seconds


def run_pass(pacer: AccountingPacer, clock: FakeCpuClock, cpu_seconds: float):
    pacer.start_pass()
    clock.seconds += cpu_seconds
    return pacer.end_pass()


def test_cheap_pass_keeps_configured_interval() -> None:
    clock = FakeCpuClock()
    pacer = AccountingPacer(30.0, cpu_clock=clock)
    record = run_pass(pacer, clock, 0.05)
    assert record.interval == 30.0
    assert not record.stretched
    assert not record.changed
    assert pacer.interval == 30.0


def test_costly_pass_stretches_interval() -> None:
    clock = FakeCpuClock()
    pacer = AccountingPacer(30.0, cpu_clock=clock)
    record = run_pass(pacer, clock, 3.0)
    assert record.interval == pytest.approx(75.0)
    assert record.stretched
    assert record.changed
    assert pacer.interval == pytest.approx(75.0)


def test_stretch_reported_once() -> None:
    clock = FakeCpuClock()
    pacer = AccountingPacer(30.0, cpu_clock=clock)
    first = run_pass(pacer, clock, 3.0)
    second = run_pass(pacer, clock, 3.2)
    assert first.changed
    assert not second.changed
    assert second.interval == pytest.approx(80.0)


def test_cheaper_pass_restores_configured_interval() -> None:
    clock = FakeCpuClock()
    pacer = AccountingPacer(30.0, cpu_clock=clock)
    run_pass(pacer, clock, 3.0)
    record = run_pass(pacer, clock, 0.5)
    assert record.interval == 30.0
    assert not record.stretched
    assert record.changed


def test_pass_at_threshold_keeps_interval() -> None:
    clock = FakeCpuClock()
    pacer = AccountingPacer(CPU_FACTOR, cpu_clock=clock)
    record = run_pass(pacer, clock, 1.0)
    assert record.interval == CPU_FACTOR
    assert not record.stretched


@pytest.mark.parametrize("cpu_seconds", [0.001, 0.5, 1.2, 3.0, 10.0, 60.0])
def test_duty_cycle_under_four_percent(cpu_seconds: float) -> None:
    clock = FakeCpuClock()
    pacer = AccountingPacer(30.0, cpu_clock=clock)
    record = run_pass(pacer, clock, cpu_seconds)
    share = cpu_seconds / (cpu_seconds + record.interval)
    assert share < 0.04


def test_pass_cost_and_count_recorded() -> None:
    clock = FakeCpuClock()
    pacer = AccountingPacer(30.0, cpu_clock=clock)
    assert pacer.last_cpu_seconds is None
    assert pacer.passes == 0
    run_pass(pacer, clock, 1.5)
    run_pass(pacer, clock, 0.25)
    assert pacer.last_cpu_seconds == pytest.approx(0.25)
    assert pacer.passes == 2


def test_end_without_start_raises() -> None:
    pacer = AccountingPacer(30.0, cpu_clock=FakeCpuClock())
    with pytest.raises(RuntimeError, match="start_pass"):
        pacer.end_pass()

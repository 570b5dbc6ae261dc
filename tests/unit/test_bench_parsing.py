"""Reading wrk, iperf3, /proc, the daemon's log and py-spy's output."""

from __future__ import annotations

import json
import math

import pytest

from capport.bench.parsing import (
    CpuKinds,
    busy_shares,
    log_seconds_between,
    parse_cpu_kinds,
    parse_cpu_ticks,
    parse_cpu_times,
    parse_iperf3,
    parse_status_kilobytes,
    parse_wrk,
    thread_shares,
    top_profile_entries,
)

# Output of wrk 4.1.0 (Debian 12) against the laboratory's responder.
WRK_KEEP_ALIVE = """\
Running 4s test @ http://198.51.100.80/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   744.38us    2.31ms  35.93ms   93.65%
    Req/Sec   131.74k    41.04k  174.74k    65.00%
  Latency Distribution
     50%  166.00us
     75%  246.00us
     90%    1.90ms
     99%    9.70ms
  524240 requests in 4.02s, 399.46MB read
  Non-2xx or 3xx responses: 524240
Requests/sec: 130339.68
Transfer/sec:     99.32MB
"""

WRK_WITH_ERRORS = """\
Running 2s test @ http://198.51.100.80/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.32ms   10.24ms 118.70ms   89.35%
    Req/Sec     8.44k     7.09k   24.80k    56.41%
  Latency Distribution
     50%    1.02ms
     75%    5.30ms
     90%   16.34ms
     99%    1.15s
  33462 requests in 2.11s, 25.34MB read
  Socket errors: connect 3, read 7, write 0, timeout 12
  Non-2xx or 3xx responses: 33000
Requests/sec:  15858.77
Transfer/sec:      6.16MB
"""

WRK_NO_CONNECTION = """\
Running 2s test @ http://198.51.100.80/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.00us    0.00us   0.00us    -nan%
    Req/Sec     0.00      0.00     0.00      -nan%
  Latency Distribution
     50%    0.00us
     75%    0.00us
     90%    0.00us
     99%    0.00us
  0 requests in 2.00s, 0.00B read
  Socket errors: connect 32, read 0, write 0, timeout 0
Requests/sec:      0.00
Transfer/sec:       0.00B
"""


def test_wrk_rate_and_count() -> None:
    result = parse_wrk(WRK_KEEP_ALIVE)
    assert result.requests_per_second == 130339.68
    assert result.requests == 524240
    assert result.seconds == pytest.approx(4.02)


def test_wrk_latency_units() -> None:
    result = parse_wrk(WRK_KEEP_ALIVE)
    assert result.latency_seconds[50.0] == pytest.approx(166e-6)
    assert result.latency_seconds[90.0] == pytest.approx(1.9e-3)
    assert result.p99_seconds == pytest.approx(9.7e-3)


def test_wrk_latency_in_seconds() -> None:
    assert parse_wrk(WRK_WITH_ERRORS).p99_seconds == pytest.approx(1.15)


def test_wrk_non_2xx_count() -> None:
    assert parse_wrk(WRK_KEEP_ALIVE).non_2xx == 524240
    assert parse_wrk(WRK_WITH_ERRORS).non_2xx == 33000


def test_wrk_socket_errors() -> None:
    result = parse_wrk(WRK_WITH_ERRORS)
    assert result.socket_errors == {"connect": 3, "read": 7, "write": 0, "timeout": 12}
    assert result.errors == 22


def test_wrk_without_socket_errors_line() -> None:
    assert parse_wrk(WRK_KEEP_ALIVE).errors == 0


def test_wrk_run_without_connections_parses_as_zero() -> None:
    result = parse_wrk(WRK_NO_CONNECTION)
    assert result.requests == 0
    assert result.non_2xx == 0
    assert result.socket_errors["connect"] == 32


def test_wrk_error_output_rejected() -> None:
    with pytest.raises(ValueError, match="no request rate"):
        parse_wrk("unable to connect to 198.51.100.80:80 Connection refused\n")


def test_wrk_without_latency_option_rejected() -> None:
    text = "\n".join(
        line
        for line in WRK_KEEP_ALIVE.splitlines()
        if "%" not in line or "Stdev" in line
    )
    with pytest.raises(ValueError, match="--latency"):
        parse_wrk(text)


def _iperf_document(bits: float, retransmits: int = 5) -> str:
    return json.dumps(
        {
            "start": {},
            "end": {
                "sum_sent": {
                    "bits_per_second": bits * 1.01,
                    "retransmits": retransmits,
                },
                "sum_received": {"bits_per_second": bits, "seconds": 4.0},
            },
        }
    )


def test_iperf3_receiver_rate() -> None:
    result = parse_iperf3(_iperf_document(7.5e9))
    assert result.bits_per_second == 7.5e9
    assert result.gigabits_per_second == pytest.approx(7.5)
    assert result.seconds == 4.0
    assert result.retransmits == 5


def test_iperf3_error_report_rejected() -> None:
    text = json.dumps({"start": {}, "error": "unable to connect to server"})
    with pytest.raises(ValueError, match="unable to connect"):
        parse_iperf3(text)


def test_iperf3_plain_text_rejected() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        parse_iperf3("iperf3: error - unable to connect to server\n")


def test_iperf3_missing_summary_rejected() -> None:
    with pytest.raises(ValueError, match="no TCP summary"):
        parse_iperf3(json.dumps({"end": {}}))


PROC_STATUS = """\
Name:\tpython3
VmPeak:\t  412000 kB
VmHWM:\t  181234 kB
VmRSS:\t  150000 kB
Threads:\t4
"""


def test_status_fields() -> None:
    assert parse_status_kilobytes(PROC_STATUS, "VmRSS") == 150000
    assert parse_status_kilobytes(PROC_STATUS, "VmHWM") == 181234


def test_status_missing_field_rejected() -> None:
    with pytest.raises(ValueError, match="VmSwap"):
        parse_status_kilobytes(PROC_STATUS, "VmSwap")


def test_cpu_ticks_with_spaces_in_name() -> None:
    stat = "1234 (odd ) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4"
    assert parse_cpu_ticks(stat) == 300


PROC_STAT = """\
cpu  300 0 100 1000 0 0 0 0 0 0
cpu0 100 0 50 500 0 0 0 0 0 0
cpu1 200 0 50 490 10 0 0 0 0 0
intr 12345
"""


def test_cpu_times_per_cpu() -> None:
    times = parse_cpu_times(PROC_STAT)
    assert times == {0: (150, 650), 1: (250, 750)}


def test_busy_shares_between_readings() -> None:
    before = {0: (150, 650), 1: (250, 750)}
    after = {0: (250, 750), 1: (260, 850)}
    shares = busy_shares(before, after)
    assert shares[0] == pytest.approx(1.0)
    assert shares[1] == pytest.approx(0.1)


def test_busy_share_without_elapsed_time_is_nan() -> None:
    assert math.isnan(busy_shares({0: (5, 10)}, {0: (5, 10)})[0])


DAEMON_LOG = """\
2026-01-31 12:00:00,100 INFO capport.store: Store opened at /old.db.
2026-01-31 12:00:00,200 INFO capport.gateway: Reconciled the firewall with the store: 1.
2026-01-31 12:05:00,000 INFO capport.store: Store opened at /run/capport.db.
2026-01-31 12:05:01,000 INFO capport.enforce: Installed table inet capport.
2026-01-31 12:05:02,250 INFO capport.gateway: Reconciled the firewall with the store: 2.
"""


def test_log_seconds_from_last_start() -> None:
    seconds = log_seconds_between(DAEMON_LOG, "Store opened", "Reconciled the firewall")
    assert seconds == pytest.approx(2.25)


def test_log_seconds_missing_end_rejected() -> None:
    text = DAEMON_LOG.rsplit("\n", 2)[0]
    with pytest.raises(ValueError, match="Reconciled"):
        log_seconds_between(text, "Store opened", "Reconciled the firewall")


def test_log_seconds_missing_start_rejected() -> None:
    with pytest.raises(ValueError, match="Store opened"):
        log_seconds_between("", "Store opened", "Reconciled")


PY_SPY_RAW = """\
<module> (/usr/lib/python3.11/runpy.py:88);run (/work/.venv/lib/python3.11/site-packages/uvloop/__init__.py:105);data_received (/work/main/src/capport/intercept/connection.py:120) 30
<module> (/usr/lib/python3.11/runpy.py:88);run (/work/.venv/lib/python3.11/site-packages/uvloop/__init__.py:105) 60
<module> (/usr/lib/python3.11/runpy.py:88);run (/work/.venv/lib/python3.11/site-packages/uvloop/__init__.py:105);data_received (/work/main/src/capport/intercept/connection.py:131);_flush (/work/main/src/capport/intercept/connection.py:400) 10
"""  # noqa: E501


def test_profile_sample_count() -> None:
    samples, _ = top_profile_entries(PY_SPY_RAW)
    assert samples == 100


def test_profile_ranked_by_own_samples() -> None:
    _, entries = top_profile_entries(PY_SPY_RAW)
    assert [entry.function for entry in entries] == [
        "run (uvloop/__init__.py)",
        "data_received (capport/intercept/connection.py)",
        "_flush (capport/intercept/connection.py)",
    ]


def test_profile_shares_merge_line_numbers() -> None:
    _, entries = top_profile_entries(PY_SPY_RAW)
    received = entries[1]
    assert received.own_share == pytest.approx(0.30)
    assert received.total_share == pytest.approx(0.40)


def test_profile_recursion_counted_once() -> None:
    raw = "f (a.py:1);f (a.py:2);f (a.py:3) 4\n"
    _, entries = top_profile_entries(raw)
    assert entries[0].total_share == pytest.approx(1.0)


def test_profile_standard_library_path_shortened() -> None:
    raw = "select (/usr/lib/python3.11/selectors.py:468) 2\n"
    _, entries = top_profile_entries(raw)
    assert entries[0].function == "select (selectors.py)"


def test_profile_limit() -> None:
    raw = "".join(f"f{i} (a.py:1) {i + 1}\n" for i in range(20))
    _, entries = top_profile_entries(raw, limit=5)
    assert len(entries) == 5
    assert entries[0].function == "f19 (a.py)"


def test_empty_profile() -> None:
    assert top_profile_entries("") == (0, [])


PY_SPY_THREADS = """\
thread (11): MainThread;run (a.py:1);wait (threading.py:320) 30
thread (12): capport-neighbours_0;_worker (thread.py:83);decode (netlink.py:9) 60
thread (13): capport-store_0;_worker (thread.py:83) 10
"""


def test_thread_frames_not_ranked_as_functions() -> None:
    _, entries = top_profile_entries(PY_SPY_THREADS)
    names = [entry.function for entry in entries]
    assert names[0] == "decode (netlink.py)"
    assert not any(name.startswith("thread (") for name in names)


def test_thread_shares() -> None:
    assert thread_shares(PY_SPY_THREADS) == [
        ("capport-neighbours_0", 0.6),
        ("MainThread", 0.3),
        ("capport-store_0", 0.1),
    ]


def test_thread_shares_without_thread_frames() -> None:
    assert thread_shares(PY_SPY_RAW) == [("(all threads)", 1.0)]


def test_cpu_kinds_split_user_system_and_interrupts() -> None:
    kinds = parse_cpu_kinds(PROC_STAT)

    first = PROC_STAT.splitlines()[1].split()
    user, nice, system, _, _, irq, softirq = (int(v) for v in first[1:8])
    assert kinds[0] == CpuKinds(user + nice, system, irq + softirq)


def test_cpu_kinds_difference_is_per_kind() -> None:
    later = CpuKinds(15, 27, 9)

    assert later.minus(CpuKinds(10, 20, 4)) == CpuKinds(5, 7, 5)

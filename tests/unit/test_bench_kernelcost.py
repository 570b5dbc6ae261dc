"""Reading perf reports and /proc/net/snmp for netfilter's time per packet."""

from pathlib import Path

import pytest

from capport.bench.kernelcost import (
    HOOKS,
    RULES,
    cost_per_packet,
    parse_children_report,
    parse_forwarded,
    record_argv,
)

# The head and some rows of `perf report --stdio --children --sort sym -g
# none` for `perf record -a -g -e cpu-clock` during iperf3 through a
# namespace gateway (perf on Linux 6.18, Debian 12).
REPORT = """\
# To display the perf.data header info, please use --header/--header-only options.
#
#
# Total Lost Samples: 0
#
# Samples: 26K of event 'cpu-clock'
# Event count (approx.): 6508750000
#
# Children      Self  Symbol
# ........  ........  ................................................
#
    76.40%     0.27%  [k] do_syscall_64
     3.10%     0.14%  [k] nf_hook_slow
     1.54%     0.10%  [k] nft_do_chain_inet
     1.44%     0.61%  [k] nft_do_chain
     0.70%     0.60%  [.] __memset_avx512_unaligned_erms
"""

# The Ip lines of /proc/net/snmp in the same gateway namespace.
SNMP = """\
Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams \
InUnknownProtos InDiscards InDelivers OutRequests OutDiscards OutNoRoutes \
ReasmTimeout ReasmReqds ReasmOKs ReasmFails FragOKs FragFails FragCreates \
OutTransmits
Ip: 1 64 12343959 0 0 12343959 0 0 0 2 0 0 0 0 0 0 0 0 0 12343961
Icmp: InMsgs InErrors
Icmp: 0 0
"""


def test_report_event_count_read() -> None:
    sampled, _ = parse_children_report(REPORT, (HOOKS, RULES))

    assert sampled == 6_508_750_000


def test_report_children_shares_read() -> None:
    _, shares = parse_children_report(REPORT, (HOOKS, RULES))

    assert shares[HOOKS] == pytest.approx(0.031)
    assert shares[RULES] == pytest.approx(0.0144)


def test_report_missing_symbol_is_zero() -> None:
    _, shares = parse_children_report(REPORT, ("nf_conntrack_in",))

    assert shares == {"nf_conntrack_in": 0.0}


def test_report_without_event_count_rejected() -> None:
    with pytest.raises(ValueError, match="no event count"):
        parse_children_report("Error: no samples\n", (HOOKS,))


def test_forwarded_datagrams_read() -> None:
    assert parse_forwarded(SNMP) == 12_343_959


def test_snmp_without_ip_lines_rejected() -> None:
    with pytest.raises(ValueError, match="ForwDatagrams"):
        parse_forwarded("Icmp: InMsgs\nIcmp: 0\n")


def test_cost_divides_sampled_time_by_packets() -> None:
    cost = cost_per_packet(1_000_000, {HOOKS: 0.5, RULES: 0.1}, 1_000)

    assert cost.hooks_ns == pytest.approx(500.0)
    assert cost.rules_ns == pytest.approx(100.0)
    assert cost.packets == 1_000


def test_cost_without_packets_rejected() -> None:
    with pytest.raises(ValueError, match="forwarded 0 packets"):
        cost_per_packet(1_000, {HOOKS: 0.5, RULES: 0.1}, 0)


def test_record_wraps_command() -> None:
    argv = record_argv("perf", Path("/run/x.data"), ["iperf3", "--client", "h"])

    assert argv[:2] == ["perf", "record"]
    assert "--all-cpus" in argv
    assert argv[argv.index("--event") + 1] == "cpu-clock"
    assert argv[-4:] == ["--", "iperf3", "--client", "h"]

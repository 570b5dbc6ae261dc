"""Version lines of the load tools, as the report records them."""

from __future__ import annotations

from capport.bench.machine import version_line


def test_wrk_copyright_removed() -> None:
    output = (
        "wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer\nUsage: wrk\n"
    )
    assert version_line(output) == "wrk debian/4.1.0-3+b2 [epoll]"


def test_first_line_kept() -> None:
    output = "iperf 3.12 (cJSON 1.7.15)\nLinux up 6.1.0 #1 SMP\n"
    assert version_line(output) == "iperf 3.12 (cJSON 1.7.15)"


def test_empty_output() -> None:
    assert version_line("") == ""

"""Sentences that explain a profile from its numbers."""

from __future__ import annotations

from capport.bench.causes import describe_cpu_profile, first_capport_entry
from capport.bench.figures import Profile, ProfileEntry

LOOP = ProfileEntry("Runner.run (asyncio/runners.py)", 0.6, 1.0)
FLUSH = ProfileEntry(
    "InterceptConnection._flush (capport/intercept/connection.py)", 0.15, 0.2
)
WORKER = ProfileEntry("_worker (concurrent/futures/thread.py)", 0.3, 0.5)


def _profile(*entries: ProfileEntry) -> Profile:
    return Profile("t", "py-spy record", 100, entries)


def test_cpu_bound_process() -> None:
    text = describe_cpu_profile(_profile(LOOP, FLUSH), 0.97, "the daemon")
    assert "the daemon used 97% of one core" in text
    assert "CPU-bound" in text


def test_process_below_its_core_is_waiting() -> None:
    text = describe_cpu_profile(_profile(LOOP, FLUSH), 0.5, "the daemon")
    assert "did not use its whole core" in text
    assert "CPU-bound" not in text


def test_unmeasured_cpu_share_says_nothing_about_cpu() -> None:
    text = describe_cpu_profile(_profile(LOOP), None, "the worker")
    assert "core" not in text


def test_event_loop_frame_explained() -> None:
    text = describe_cpu_profile(_profile(LOOP, FLUSH), 0.97, "the daemon")
    assert "`Runner.run (asyncio/runners.py)` (60%)" in text
    assert "event loop's C code" in text


def test_waiting_thread_frame_explained() -> None:
    text = describe_cpu_profile(_profile(WORKER, FLUSH), 0.6, "the daemon")
    assert "waiting for its next task" in text


def test_first_capport_function_named() -> None:
    text = describe_cpu_profile(_profile(LOOP, FLUSH), 0.97, "the daemon")
    assert "`InterceptConnection._flush (capport/intercept/connection.py)`" in text
    assert "15% own, 20% with its callees" in text


def test_first_capport_entry_absent() -> None:
    assert first_capport_entry((LOOP, WORKER)) is None


def test_empty_profile_still_describes_cpu() -> None:
    text = describe_cpu_profile(_profile(), 0.4, "the daemon")
    assert text.startswith("While the profile was taken")


def test_busiest_thread_named() -> None:
    threads = (("capport-neighbours_0", 0.8), ("MainThread", 0.2))
    profile = Profile("t", "py-spy record", 100, (LOOP,), threads=threads)
    text = describe_cpu_profile(profile, 0.4, "the daemon")
    assert "Thread capport-neighbours_0 has the most samples (80%)." in text

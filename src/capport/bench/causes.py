"""Sentences that state what a profile shows, from its numbers. No I/O.

The report must not carry conclusions written before the run, so a missed
target is explained only from what was measured in it: how much of its
core the process used, and where its samples fell.
"""

from __future__ import annotations

from capport.bench.figures import Profile, ProfileEntry

# At or above this share of one core the process is taken as CPU-bound.
CPU_BOUND_SHARE = 0.9

# Frames whose own samples are time inside C code that Python called: the
# event loop's polling and socket calls.
_LOOP_FRAMES = ("Runner.run (", "run_forever (", "run_until_complete (", "_run_once (")
# Frames in which a thread waits for work or for another thread. py-spy
# drops idle samples, but it cannot always tell such a wait from work.
_WAIT_FRAMES = (
    "_worker (concurrent/futures/thread.py)",
    "Condition.wait (threading.py)",
    "Event.wait (threading.py)",
)


def describe_cpu_profile(
    profile: Profile, cpu_share: float | None, process: str
) -> str:
    """Return a paragraph saying whether process was CPU-bound and where time went.

    cpu_share is the share of one core the process used while the profile
    was taken, or None when it was not measured.
    """
    sentences = [] if cpu_share is None else _cpu_sentences(cpu_share, process)
    if len(profile.threads) > 1:
        name, share = profile.threads[0]
        sentences.append(f"Thread {name} has the most samples ({share:.0%}).")
    top = profile.entries[0] if profile.entries else None
    if top is not None:
        sentences.append(
            f"The largest own share is {_name(top)} ({top.own_share:.0%})."
        )
        if any(marker in top.function for marker in _LOOP_FRAMES):
            sentences.append(
                "py-spy sees only Python frames, so that share is time spent "
                "in the event loop's C code and in system calls (reading and "
                "writing sockets), not in Python."
            )
        elif top.function in _WAIT_FRAMES:
            sentences.append(
                "That frame is a thread waiting for its next task or for "
                "another thread, so part of its share is waiting, not work."
            )
    own = first_capport_entry(profile.entries)
    if own is not None:
        sentences.append(
            f"The capport function with the largest own share is {_name(own)}: "
            f"{own.own_share:.0%} own, {own.total_share:.0%} with its callees."
        )
    return " ".join(sentences)


def _cpu_sentences(cpu_share: float, process: str) -> list[str]:
    used = f"While the profile was taken, {process} used {cpu_share:.0%} of one core."
    if cpu_share >= CPU_BOUND_SHARE:
        return [
            used,
            "It is CPU-bound, so a higher figure needs less work per request "
            "in the functions at the top of this table.",
        ]
    return [
        used,
        "It did not use its whole core, so the limit lies in waiting (a lock, "
        "another thread, the kernel) rather than in its own computation.",
    ]


def first_capport_entry(entries: tuple[ProfileEntry, ...]) -> ProfileEntry | None:
    """Return the entry with the largest own share among capport's functions."""
    for entry in entries:
        if "(capport/" in entry.function:
            return entry
    return None


def _name(entry: ProfileEntry) -> str:
    return f"`{entry.function}`"

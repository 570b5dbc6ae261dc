"""Trusted and blocked MACs: the file's lists with runtime overrides."""

import pytest

from capport.maclists import BLOCKED, NEITHER, TRUSTED, MacLists, override_for

M1 = "02:00:00:00:00:01"
M2 = "02:00:00:00:00:02"


def test_file_lists_apply_without_overrides() -> None:
    lists = MacLists.build([M1], [M2], {})

    assert lists.trusted == {M1}
    assert lists.blocked == {M2}


def test_mac_in_both_lists_is_blocked() -> None:
    lists = MacLists.build([M1], [M1], {})

    assert lists.policy(M1) == BLOCKED
    assert lists.trusted == set()


@pytest.mark.parametrize(
    ("override", "trusted", "blocked"),
    [(NEITHER, set(), set()), (BLOCKED, set(), {M1}), (TRUSTED, {M1}, set())],
)
def test_override_replaces_file_entry(
    override: str, trusted: set[str], blocked: set[str]
) -> None:
    lists = MacLists.build([M1], [], {M1: override})

    assert lists.trusted == trusted
    assert lists.blocked == blocked


@pytest.mark.parametrize(
    ("command", "before", "expected"),
    [
        ("trust", NEITHER, TRUSTED),
        ("trust", BLOCKED, TRUSTED),
        ("block", TRUSTED, BLOCKED),
        ("untrust", TRUSTED, NEITHER),
        ("untrust", NEITHER, None),
        ("untrust", BLOCKED, None),
        ("unblock", BLOCKED, NEITHER),
        ("unblock", TRUSTED, None),
    ],
)
def test_override_for_command(command: str, before: str, expected: str | None) -> None:
    lists = MacLists.build([], [], {M1: before})

    assert override_for(lists, M1, command) == expected


def test_unknown_command_rejected() -> None:
    with pytest.raises(ValueError, match="unknown MAC list command 'ban'"):
        override_for(MacLists.build([], [], {}), M1, "ban")

"""The layout of the test suite itself."""

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_module_names_are_unique() -> None:
    # In pytest's default import mode, test modules outside packages are
    # imported by base name, so two files of one name stop the collection.
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []

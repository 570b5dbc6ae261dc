"""Fixtures that build the namespace laboratory. They need root.

Each laboratory a test run builds is named cpt{PID}{letter}{n}, with the PID
of the pytest process, so that concurrent runs never collide and a later run
can recognise and remove what a killed run left behind.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import freeradius
import pytest

from capport.lab import Lab, down, up
from capport.lab.system import NETNS_DIR, netns_argv
from capport.lab.topology import STATE_ROOT

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "lab"

_TEST_NAME = re.compile(r"^(cpt(\d+)[a-z]\d*)(?:-(?:gw|c1|c2|up))?$")
_counter = itertools.count()


def missing_requirement() -> str | None:
    """Return why laboratory tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "the laboratory needs root to create network namespaces"
    for tool in ("ip", "curl", "sysctl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed; scripts/install installs it"
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "lab_config(**kwargs): keyword arguments for capport.lab.up, used by "
        "the fresh_lab fixture (session_duration, extra_config, start_gateway)",
    )


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    reason = missing_requirement()
    if reason is None:
        return
    for item in items:
        if item.get_closest_marker("lab") is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


def _require_lab() -> None:
    reason = missing_requirement()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def new_prefix() -> Callable[[str], str]:
    """Return a function that makes a laboratory prefix unique to this run."""

    def make(letter: str) -> str:
        return f"cpt{os.getpid()}{letter}{next(_counter)}"

    return make


@pytest.fixture(scope="session", autouse=True)
def _remove_stale_labs() -> None:
    """Remove laboratories left by test runs whose pytest process is gone."""
    if missing_requirement() is not None:
        return
    names: list[str] = []
    for directory in (NETNS_DIR, STATE_ROOT):
        if directory.is_dir():
            names += os.listdir(directory)
    stale = set()
    for name in names:
        match = _TEST_NAME.match(name)
        if match and not _pid_alive(int(match.group(2))):
            stale.add(match.group(1))
    for prefix in sorted(stale):
        down(prefix)


def _pid_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _keep_logs(lab: Lab) -> None:
    """Copy the laboratory's logs to test-artifacts/ before it is removed."""
    target = ARTIFACTS / lab.prefix
    for path in (lab.log_path, lab.origin_log_path, lab.config_path):
        if path.exists():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target / path.name)


def _built(prefix: str, **options: object) -> Iterator[Lab]:
    # up() removes a half-built laboratory itself, Ctrl-C included; once it
    # returns, the finally clause removes it whatever the tests do.
    built = up(prefix, **options)  # type: ignore[arg-type]
    try:
        yield built
    finally:
        _keep_logs(built)
        down(prefix)


@pytest.fixture(scope="session")
def lab(new_prefix: Callable[[str], str]) -> Iterator[Lab]:
    """A laboratory with the gateway running, shared by the whole session."""
    _require_lab()
    yield from _built(new_prefix("s"))


@pytest.fixture
def fresh_lab(
    request: pytest.FixtureRequest, new_prefix: Callable[[str], str]
) -> Iterator[Lab]:
    """A laboratory of this test's own, for tests that stop or kill the gateway.

    Mark the test with @pytest.mark.lab_config(...) to pass keyword arguments
    to capport.lab.up, such as session_duration=60.
    """
    _require_lab()
    marker = request.node.get_closest_marker("lab_config")
    options = dict(marker.kwargs) if marker is not None else {}
    yield from _built(new_prefix("f"), **options)


# FreeRADIUS listens on the standard ports of the gateway namespace's own
# loopback, which nothing else in that fresh namespace uses.
RADIUS_PORTS = (1812, 1813)


@pytest.fixture(scope="module")
def radius_lab(
    new_prefix: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Lab, freeradius.FreeRadius]]:
    """A laboratory whose gateway logs users in with a FreeRADIUS beside it.

    The server runs in the gateway's namespace on 127.0.0.1, so RADIUS
    traffic never leaves that namespace. Accounting interims come every
    second so that tests see them quickly.
    """
    _require_lab()
    if freeradius.find_binary() is None:
        pytest.skip("FreeRADIUS is not installed; scripts/install installs it")
    host = "127.0.0.1"
    radius = {
        "servers": [
            {
                "address": host,
                "auth_port": RADIUS_PORTS[0],
                "acct_port": RADIUS_PORTS[1],
                "secret": freeradius.TEST_SECRET,
            }
        ],
        "nas_identifier": "capport-lab",
        "timeout": "2s",
        "retries": 1,
        "interim_interval": "1s",
    }
    extra = {"auth": {"methods": ["click-through", "radius"]}, "radius": radius}
    options = {"extra_config": extra, "start_gateway": False}
    for built in _built(new_prefix("r"), **options):
        gateway_namespace = netns_argv(built.namespace("gw"), [])
        server = freeradius.start(
            tmp_path_factory.mktemp("freeradius"),
            host=host,
            prefix_argv=gateway_namespace,
            ports=RADIUS_PORTS,
        )
        try:
            built.start_gateway()
            yield built, server
        finally:
            server.stop()

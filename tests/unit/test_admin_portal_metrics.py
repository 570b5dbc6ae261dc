"""Sign-ins on the portal as the admin API's metrics count them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry
from test_portal_signin import CODE, PASSWORD, Portal, make_config, open_portal, post

from capport.metrics import LOGIN_FAILURES


@pytest.fixture
def portal() -> Iterator[Portal]:
    yield from open_portal(make_config())


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(LOGIN_FAILURES)
    return registry


def failures(registry: CollectorRegistry, method: str) -> float:
    value = registry.get_sample_value(
        "capport_login_failures_total", {"method": method}
    )
    return value or 0.0


def test_wrong_password_counts_user_failure(
    portal: Portal, registry: CollectorRegistry
) -> None:
    before = failures(registry, "user")
    post(portal, "/login", username="alice", password="wrong")
    assert failures(registry, "user") == before + 1


def test_unknown_voucher_counts_voucher_failure(
    portal: Portal, registry: CollectorRegistry
) -> None:
    before = failures(registry, "voucher")
    post(portal, "/voucher", code=CODE)
    assert failures(registry, "voucher") == before + 1


def test_right_password_counts_no_failure(
    portal: Portal, registry: CollectorRegistry
) -> None:
    before = failures(registry, "user")
    post(portal, "/login", username="alice", password=PASSWORD)
    assert failures(registry, "user") == before

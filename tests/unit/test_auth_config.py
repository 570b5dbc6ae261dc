"""The [auth] table of the configuration and how a reload treats it."""

from __future__ import annotations

from typing import Any

import pytest

from capport.config import Config, parse_config
from capport.errors import ConfigError
from capport.reload import merged, restart_keys


def config_with(**auth: Any) -> Config:
    return parse_config(
        {
            "gateway": {"interface": "lan0"},
            "portal": {"address": "192.0.2.1"},
            "auth": auth,
        }
    )


def test_defaults_offer_click_through_only() -> None:
    auth = config_with().auth
    assert auth.methods == ("click-through",)
    assert auth.details == "off"
    assert auth.device_limit_policy == "reject"
    assert auth.max_failures == 5
    assert auth.failure_window == 60.0


def test_methods_keep_their_order() -> None:
    methods = ["user", "voucher", "click-through"]
    assert config_with(methods=methods).auth.methods == tuple(methods)


@pytest.mark.parametrize(
    ("methods", "message"),
    [
        ([], "non-empty list"),
        (["user", "user"], "only once"),
        (["ldap"], "auth.methods.0"),
        ("user", "non-empty list"),
    ],
)
def test_invalid_methods_are_rejected(methods: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_with(methods=methods)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("details", "sometimes"),
        ("device_limit_policy", "end-newest"),
        ("user_max_devices", 0),
        ("max_failures", 0),
        ("failure_window", "0s"),
    ],
)
def test_invalid_values_name_their_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"auth.{key}"):
        config_with(**{key: value})


def test_policy_changes_on_reload() -> None:
    old = config_with()
    new = config_with(device_limit_policy="end-oldest", methods=["voucher"])
    applied = merged(old, new)
    assert applied.auth.device_limit_policy == "end-oldest"
    assert applied.auth.methods == ("click-through",)
    assert restart_keys(old, new) == ["auth.methods"]

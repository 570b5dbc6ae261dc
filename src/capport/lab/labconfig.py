"""The gateway configuration the laboratory generates, written as TOML.

The standard library reads TOML but does not write it, and the configuration
is a table of small tables, so a short writer for that shape is enough.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from capport.config import parse_config

ConfigDocument = dict[str, Any]


def gateway_document(
    *,
    interface: str,
    portal_address: str,
    state_dir: Path,
    session_duration: float,
    extra_config: Mapping[str, Any] | None = None,
    tls: bool = False,
) -> ConfigDocument:
    """Return the laboratory gateway's configuration, extra_config merged over it.

    Values in extra_config replace generated ones key by key, so a test can
    change one setting of a table and keep the rest. With tls, the portal
    and the Captive Portal API are served over HTTPS as portal.lab, with
    files that capport.tlsinit creates in state_dir/tls.
    """
    document: ConfigDocument = {
        "gateway": {"interface": interface},
        "portal": {
            "address": portal_address,
            "port": 80,
            "title": "capport laboratory",
        },
        "responder": {"port": 8511},
        "session": {"duration": session_duration},
        "store": {"path": str(state_dir / "capport.db")},
        "control": {"socket": str(state_dir / "control.sock")},
        "log": {"level": "info"},
    }
    if tls:
        document["tls"] = {
            "certificate": str(state_dir / "tls" / "portal.pem"),
            "key": str(state_dir / "tls" / "portal-key.pem"),
            "hostname": "portal.lab",
            "port": 443,
        }
        document["api"] = {"venue_info_url": "http://origin.lab/x/venue"}
    return merge(document, extra_config or {})


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> ConfigDocument:
    """Return base with override merged in, tables recursively."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = merge(current, value)
        else:
            merged[key] = value
    return merged


def write_config(document: ConfigDocument, path: Path) -> None:
    """Validate document as a capport configuration and write it to path.

    Raises ConfigError naming the key when the document is not a valid
    configuration, before anything is written.
    """
    parse_config(document, source="the generated laboratory configuration")
    path.write_text(render_toml(document), encoding="utf-8")


def render_toml(document: Mapping[str, Any]) -> str:
    """Render a document of scalars, lists and nested tables as TOML."""
    lines: list[str] = []
    _render_table(document, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _render_table(
    table: Mapping[str, Any], path: list[str], lines: list[str], array: bool = False
) -> None:
    scalars = {
        k: v for k, v in table.items() if not (isinstance(v, Mapping) or _is_array(v))
    }
    tables = {k: v for k, v in table.items() if isinstance(v, Mapping)}
    arrays = {k: v for k, v in table.items() if _is_array(v)}
    name = ".".join(_key(part) for part in path)
    if array:
        lines.append("")
        lines.append(f"[[{name}]]")
    elif path and (scalars or not (tables or arrays)):
        lines.append("")
        lines.append(f"[{name}]")
    for key, value in scalars.items():
        lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in tables.items():
        _render_table(value, [*path, key], lines)
    for key, items in arrays.items():
        for item in items:
            _render_table(item, [*path, key], lines, array=True)


def _is_array(value: Any) -> bool:
    # A non-empty list of tables is written as an array of tables, [[name]].
    return (
        isinstance(value, list | tuple)
        and bool(value)
        and all(isinstance(item, Mapping) for item in value)
    )


def _key(key: str) -> str:
    if key and all(char.isascii() and (char.isalnum() or char in "_-") for char in key):
        return key
    return json.dumps(key)


def _value(value: Any) -> str:
    # bool is tested before int because bool is a subclass of int.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value!r} to the configuration")
        return repr(value)
    if isinstance(value, str | Path):
        # A JSON string with ASCII escapes is a valid TOML basic string once
        # DEL, which JSON leaves as it is and TOML forbids, is escaped too.
        return json.dumps(str(value)).replace("\x7f", "\\u007f")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise ValueError(
        f"cannot write {value!r} of type {type(value).__name__} to the "
        "configuration: use a string, number, boolean, list or table"
    )

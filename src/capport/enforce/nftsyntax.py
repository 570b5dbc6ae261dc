"""The table's install transaction in the syntax `nft -f` reads.

capport.enforce.ruleset builds its commands as libnftables JSON. For the
install, which carries every authorised device, this module writes the
same commands as one text buffer instead. libnftables parses the text
without building a JSON tree first: `nft -f` loaded 200,000 elements with
140 MB at peak from text and with 315 MB from the same JSON (nftables
1.0.6). A buffer is one transaction, as a JSON document is.

The table's declarations, rules and the few commands of trusted MACs,
the walled garden and limit objects are converted from their JSON form by
render_command, so the ruleset is defined once. The elements of the
authorised and download sets, two per device, are written straight from
the grants, because building them as dicts first would double the peak
memory the text form saves.

Every value written comes from typed fields (addresses, MACs, integers,
fixed names). nft resolves a word it does not recognise as an address as
a host name, so a free-form string must never reach a buffer.

nft's text parser takes a table name only as a bare word, so a table
named like an nft keyword (such as "counter") cannot be written here. The
start's checks reject such a firewall.table before anything is installed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from capport.enforce import limits, ruleset
from capport.enforce.base import Grant, timeout_seconds
from capport.enforce.ruleset import OptionalRules, RulesetSpec

# Expressions whose right-hand side is a string to quote: interface names
# may contain characters that nft's parser reads as syntax.
_QUOTED_KEYS = frozenset({"iifname", "oifname"})

# Devices whose elements are written and joined at a time.
ELEMENT_CHUNK = 1000


def install_buffer(
    spec: RulesetSpec,
    grants: Iterable[Grant],
    contents: Iterable[dict[str, Any]],
    optional: frozenset[str] = OptionalRules.ALL,
) -> str:
    """Write the transaction that replaces the table and loads grants.

    It applies the same commands as ruleset.install_document(spec, grants,
    contents, optional), in the same order. The last grant of a device wins.
    """
    latest = list({grant.device: grant for grant in grants}.values())
    lines = [render_command(c) for c in ruleset.table_commands(spec, optional)]
    lines += _element_commands(spec.table, latest)
    lines += [render_command(c) for c in limits.limit_commands(spec.table, latest)]
    lines += [render_command(c) for c in contents]
    # An empty last line gives the final newline without a second copy of
    # the buffer (8 MB for 100,000 devices).
    lines.append("")
    return "\n".join(lines)


def _element_commands(table: str, grants: list[Grant]) -> Iterator[str]:
    """Write one `add element` per authorised and per download set.

    Elements are joined ELEMENT_CHUNK devices at a time, so the strings of
    single elements (two per device) are freed chunk by chunk instead of
    all existing until one join per set.
    """
    authorised: dict[str, list[str]] = {ruleset.ALLOWED4: [], ruleset.ALLOWED6: []}
    downloads: dict[str, list[str]] = {limits.down_set(4): [], limits.down_set(6): []}
    for version, name in ((4, ruleset.ALLOWED4), (6, ruleset.ALLOWED6)):
        of_version = [grant for grant in grants if grant.device.ip.version == version]
        for start in range(0, len(of_version), ELEMENT_CHUNK):
            keys, addresses = _element_chunk(of_version[start : start + ELEMENT_CHUNK])
            authorised[name].append(keys)
            downloads[limits.down_set(version)].append(addresses)
    for sets in (authorised, downloads):
        for name, chunks in sets.items():
            if chunks:
                yield f"add element inet {table} {name} {{ {', '.join(chunks)} }}"


def _element_chunk(grants: list[Grant]) -> tuple[str, str]:
    """Write the elements of grants in the authorised and in the download set."""
    keys = []
    addresses = []
    for grant in grants:
        device = grant.device
        timeout = f" timeout {timeout_seconds(grant.timeout)}s"
        ip = str(device.ip)
        keys.append(f"{device.mac} . {ip}{timeout}")
        addresses.append(ip + timeout)
    return ", ".join(keys), ", ".join(addresses)


# Converting JSON commands


def render_command(command: dict[str, Any]) -> str:
    """Write one libnftables JSON command, such as {"add": {"rule": ...}}, as text.

    Raises ValueError for a command or expression this module does not
    know, so a new form in the ruleset fails loudly instead of changing
    meaning.
    """
    ((verb, body),) = command.items()
    ((kind, spec),) = body.items()
    if kind == "table":
        return f"{verb} table {spec['family']} {spec['name']}"
    target = f"{spec['family']} {spec['table']}"
    if kind in ("set", "map") and verb == "add":
        return f"add {kind} {target} {spec['name']} {{ {_set_body(kind, spec)} }}"
    if kind == "set" and verb == "flush":
        return f"flush set {target} {spec['name']}"
    if kind == "chain" and verb == "add" and "hook" not in spec:
        return f"add chain {target} {spec['name']}"
    if kind == "chain" and verb == "add":
        return f"add chain {target} {spec['name']} {{ {_chain_body(spec)} }}"
    if kind == "rule" and verb == "add":
        rule = " ".join(_statement(expression) for expression in spec["expr"])
        return f"add rule {target} {spec['chain']} {rule}"
    if kind == "element" and verb in ("add", "delete"):
        elements = ", ".join(_element(element) for element in spec["elem"])
        return f"{verb} element {target} {spec['name']} {{ {elements} }}"
    if kind == "quota" and verb == "add":
        return f"add quota {target} {spec['name']} {{ {_quota_body(spec)} }}"
    if kind == "limit" and verb == "add":
        return f"add limit {target} {spec['name']} {{ {_limit_body(spec)} }}"
    raise ValueError(f"cannot write the nftables command {command!r} as text")


def _set_body(kind: str, spec: dict[str, Any]) -> str:
    key = spec["type"]
    key_text = " . ".join(key) if isinstance(key, list) else key
    if kind == "map":
        key_text += f" : {spec['map']}"
    parts = [f"type {key_text};"]
    if spec.get("flags"):
        parts.append(f"flags {', '.join(spec['flags'])};")
    for statement in spec.get("stmt", []):
        if statement != {"counter": None}:
            raise ValueError(f"cannot write the set statement {statement!r} as text")
        parts.append("counter;")
    return " ".join(parts)


def _chain_body(spec: dict[str, Any]) -> str:
    return (
        f"type {spec['type']} hook {spec['hook']} priority {int(spec['prio'])}; "
        f"policy {spec['policy']};"
    )


def _quota_body(spec: dict[str, Any]) -> str:
    over = "over " if spec.get("inv") else ""
    return f"{over}{int(spec['bytes'])} bytes used {int(spec.get('used', 0))} bytes"


def _limit_body(spec: dict[str, Any]) -> str:
    if (spec.get("rate_unit"), spec.get("burst_unit")) != ("bytes", "bytes"):
        raise ValueError(f"cannot write the limit {spec!r} as text")
    over = "over " if spec.get("inv") else ""
    return (
        f"rate {over}{int(spec['rate'])} bytes/{spec['per']} "
        f"burst {int(spec['burst'])} bytes"
    )


def _element(element: Any) -> str:
    if isinstance(element, list):
        key, data = element
        return f'{_element(key)} : "{data}"'
    if isinstance(element, dict) and "elem" in element:
        details = element["elem"]
        text = _value(details["val"])
        if "timeout" in details:
            text += f" timeout {int(details['timeout'])}s"
        return text
    return _value(element)


def _statement(expression: dict[str, Any]) -> str:
    ((kind, body),) = expression.items()
    if kind == "match":
        return _match(body)
    if kind in ("accept", "drop") and body is None:
        return kind
    if kind in ("jump", "goto") and set(body) == {"target"}:
        return f"{kind} {body['target']}"
    if kind == "redirect":
        return f"redirect to :{int(body['port'])}"
    if kind == "reject":
        reason = f" {body['expr']}" if "expr" in body else ""
        return f"reject with {body['type']}{reason}"
    if kind in ("quota", "limit") and set(body) == {"map"}:
        lookup = body["map"]
        return f"{kind} name {_value(lookup['key'])} map {lookup['data']}"
    raise ValueError(f"cannot write the nftables statement {expression!r} as text")


def _match(body: dict[str, Any]) -> str:
    left, right, op = body["left"], body["right"], body["op"]
    if op not in ("==", "!=", "in", "!"):
        raise ValueError(f"cannot write the match operator {op!r} as text")
    if isinstance(left, dict) and left.get("meta", {}).get("key") in _QUOTED_KEYS:
        right_text = _quoted(right)
    elif isinstance(right, list):
        # A list of flags, such as ct state established,related.
        right_text = ",".join(str(flag) for flag in right)
    else:
        right_text = _value(right)
    # "!" tests that none of the flags is set: ct state ! established,related.
    operator = {"!=": "!= ", "!": "! "}.get(op, "")
    return f"{_value(left)} {operator}{right_text}"


def _value(value: Any) -> str:
    """Write an expression that stands for a value: a field, a constant or a set."""
    if isinstance(value, bool):
        raise ValueError(f"cannot write the value {value!r} as text")
    if isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, dict) and len(value) == 1:
        ((kind, body),) = value.items()
        if kind == "payload":
            return f"{body['protocol']} {body['field']}"
        if kind == "meta":
            return f"meta {body['key']}"
        if kind == "ct":
            return f"ct {body['key']}"
        if kind == "fib":
            return f"fib {' . '.join(body['flags'])} {body['result']}"
        if kind == "concat":
            return " . ".join(_value(part) for part in body)
        if kind == "set":
            return "{ " + ", ".join(_value(item) for item in body) + " }"
        if kind == "prefix":
            return f"{body['addr']}/{int(body['len'])}"
    raise ValueError(f"cannot write the value {value!r} as text")


def _quoted(value: Any) -> str:
    text = str(value)
    if '"' in text or "\\" in text:
        raise ValueError(f"cannot quote {text!r} for nft")
    return f'"{text}"'

"""The Enforcer that drives the kernel's nftables through libnftables.

Every change is one transaction through libnftables (the pip-nftables
module, over ctypes), so the kernel applies it whole or not at all and no
`nft` process is started per change. Grants and revocations are JSON
documents. The install, which carries every authorised device, uses nft's
text syntax (see nftsyntax) and runs in a child `nft -f -` (see nftchild),
so the 115-140 MB that libnftables takes to parse it for 100,000 sessions
is returned when the child exits. For 200,000 elements `nft -f` took
140 MB to apply the text and 315 MB to apply the same JSON. The counters
and timeouts that accounting and reconcile read are dumped from the kernel
over nfnetlink (see nfdump), which is read-only and three times faster
than a libnftables listing. The contexts and the dump socket bind their
netlink sockets when they are created, and the child runs in the
namespace that was current then, so the enforcer works in the network
namespace of the thread that created it.
"""

from __future__ import annotations

import ctypes
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import nftables

from capport.config import Config
from capport.enforce import (
    limits,
    listing,
    lists,
    nfdump,
    nftchild,
    nftsyntax,
    ruleset,
)
from capport.enforce.base import DeviceUsage, Grant, IPNetwork
from capport.enforce.conntrack import ConnectionTracker
from capport.enforce.listing import ElementState
from capport.enforce.ruleset import OptionalRules, RulesetSpec
from capport.errors import ConfigError, EnforcementError
from capport.metrics import NFTABLES_TRANSACTION_SECONDS
from capport.models import Device, IPAddress

log = logging.getLogger("capport.enforce")

LIBRARY = "libnftables.so.1"

# libnftables prefixes each error with its input location, which for JSON
# input is always "internal:0:0-0" and for `nft -f -` is "/dev/stdin:LINE:COLUMNS".
_LOCATION = re.compile(r"^(?:internal|/dev/stdin):\d+:\d+-\d+:\s*")
_ERROR_PREFIX = re.compile(r"^(netlink: )?Error: ")
_MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class Counters:
    """Packets and bytes the forward chain accepted from one device."""

    packets: int
    bytes: int


class NftablesEnforcer:
    """Keeps the gateway's table and its sets of authorised devices."""

    def __init__(self, spec: RulesetSpec) -> None:
        self.spec = spec
        self._nft = _open_context()
        self._text = _open_context(json_output=False)
        self._child = nftchild.NftRunner(_error_text)
        self._dumper = nfdump.NfDumper(spec.table)
        self._lock = threading.Lock()
        self._conntrack = ConnectionTracker()
        # The contents of the MAC and walled-garden sets, loaded again into
        # every new table that install() builds.
        self._trusted: list[str] = []
        self._blocked: list[str] = []
        self._garden_networks: list[IPNetwork] = []
        self._garden_addresses: dict[IPAddress, float] = {}
        self._installed = False
        # The quota and limit objects each device has in the kernel, kept in
        # step by every change, so grants and revocations remove only those.
        # None until install() or a listing of the table has set it.
        self._objects: dict[Device, frozenset[str]] | None = None
        # The OptionalRules groups in the kernel's direction chains, or None
        # when unknown (no install() by this enforcer). A change that needs
        # a group then writes every group: a rule whose set is empty matches
        # nothing, so an extra group costs time but changes no verdict.
        # NOTE: this assumes no other process replaces the table while the
        # enforcer runs. A table installed by another enforcer may lack a
        # group this one counts as present, until this one installs again.
        self._optional: frozenset[str] | None = None

    @classmethod
    def from_config(cls, config: Config) -> NftablesEnforcer:
        return cls(RulesetSpec.from_config(config))

    @property
    def _table(self) -> str:
        return f"table inet {self.spec.table}"

    # The Enforcer interface

    def install(self, grants: list[Grant]) -> None:
        """Replace the table in one transaction, authorising exactly grants."""
        contents = lists.mac_list_commands(
            self.spec.table, self._trusted, self._blocked
        ) + lists.garden_commands(
            self.spec.table, self._garden_networks, self._garden_addresses
        )
        optional = _needed_rules(grants) | self._mac_list_rules(
            self._trusted, self._blocked
        )
        buffer = nftsyntax.install_buffer(self.spec, grants, contents, optional)
        self.apply_text_in_child(
            buffer, f"installing {self._table} with {len(grants)} authorised devices"
        )
        del buffer
        self._installed = True
        self._optional = optional
        self._objects = {}
        self._record_objects(grants)
        log.info(
            "Installed %s on %s with %d authorised devices.",
            self._table,
            self.spec.lan_interface,
            len(grants),
        )

    def grant(self, grants: list[Grant]) -> None:
        """Authorise devices, replacing the timeout of any already present.

        A device already present starts its counters again from zero. The
        first grant with a limit adds the limit rules to the direction chains
        in the same transaction.
        """
        if not grants:
            return
        document = ruleset.grant_document(self.spec.table, grants, self._object_index())
        optional = self._with_rules(_needed_rules(grants))
        if optional is not None:
            chains = ruleset.direction_chain_commands(self.spec.table, optional)
            document["nftables"][:0] = chains
        self.apply(
            document,
            f"authorising {_describe([g.device for g in grants])} in {self._table}",
        )
        self._record_objects(grants)
        if optional is not None:
            self._optional = optional

    def revoke(self, devices: list[Device]) -> None:
        """Remove devices from the sets, then delete their conntrack entries.

        The set change is applied first, so no new connection of a device
        can start between the two steps. A failure to delete conntrack
        entries is logged and not raised, because the set change has been
        applied and cannot be undone. The device's open connections then
        continue until they end by themselves.
        """
        if not devices:
            return
        self.apply(
            ruleset.revoke_document(self.spec.table, devices, self._object_index()),
            f"revoking {_describe(devices)} in {self._table}",
        )
        objects = self._object_index()
        for device in devices:
            objects.pop(device, None)
        try:
            deleted = self._conntrack.delete_entries(d.ip for d in devices)
        except EnforcementError as error:
            log.error(
                "Revoked %s, but their open connections may continue: %s",
                _describe(devices),
                error,
            )
            return
        log.debug("Deleted %d conntrack entries of %s.", deleted, _describe(devices))

    def authorised(self) -> dict[Device, float]:
        """Return the authorised devices with their remaining whole seconds."""
        return {device: state.remaining for device, state in self.elements().items()}

    def usage(self) -> Mapping[Device, DeviceUsage]:
        """Return every authorised device's counters.

        The four sets and the quota objects are dumped one after the other,
        each over nfnetlink (see nfdump).
        """
        action = f"reading the counters of {self._table}"
        authorised = [ruleset.ALLOWED4, ruleset.ALLOWED6]
        downloads = [limits.down_set(4), limits.down_set(6)]
        try:
            sent = self._byte_counters(authorised)
            received = self._byte_counters(downloads)
            quotas = self._dumper.quotas_used() if self._may_have_quotas() else {}
            return listing.DeviceUsageMap(sent, received, quotas)
        except (nfdump.DumpError, OSError, ValueError) as error:
            raise EnforcementError(f"{action} failed: {error}") from error

    def _byte_counters(self, set_names: list[str]) -> dict[bytes, int]:
        counters = self._dumper.byte_counters(set_names[0])
        for name in set_names[1:]:
            counters.update(self._dumper.byte_counters(name))
        return counters

    def _may_have_quotas(self) -> bool:
        """Tell whether the object index shows quota objects, or is not filled yet.

        Until install() or a listing has filled the index, the table a
        previous run left may have any.
        """
        if self._objects is None:
            return True
        return any(
            prefix.startswith("quota-")
            for prefixes in self._objects.values()
            for prefix in prefixes
        )

    def set_mac_lists(self, trusted: Iterable[str], blocked: Iterable[str]) -> None:
        """Replace the trusted and blocked MAC addresses in one transaction.

        Before install() the lists are only kept, and install() loads them.
        The transaction also adds the MAC list rules to the direction chains
        when a list gains its first MAC, and removes them when both are empty.
        """
        trusted, blocked = sorted(set(trusted)), sorted(set(blocked))
        if not self._installed:
            self._trusted, self._blocked = trusted, blocked
            return
        commands = lists.mac_list_commands(self.spec.table, trusted, blocked)
        needed = self._mac_list_rules(trusted, blocked)
        if self._optional is None:
            optional = self._with_rules(needed)
        else:
            # Empty lists take their rules off the path again.
            target = (self._optional - {OptionalRules.MAC_LISTS}) | needed
            optional = None if target == self._optional else target
        if optional is not None:
            commands[:0] = ruleset.direction_chain_commands(self.spec.table, optional)
        self.apply(
            {"nftables": commands},
            f"setting {len(trusted)} trusted and {len(blocked)} blocked MACs "
            f"in {self._table}",
        )
        self._trusted, self._blocked = trusted, blocked
        if optional is not None:
            self._optional = optional

    def set_garden(
        self, networks: Iterable[IPNetwork], addresses: dict[IPAddress, float]
    ) -> None:
        """Replace the walled garden's networks and resolved addresses.

        Before install() they are only kept, and install() loads them.
        """
        networks = list(networks)
        if not self._installed:
            self._garden_networks, self._garden_addresses = networks, dict(addresses)
            return
        commands = lists.garden_commands(self.spec.table, networks, addresses)
        self.apply(
            {"nftables": commands},
            f"setting the walled garden of {self._table} to {len(networks)} "
            f"networks and {len(addresses)} addresses",
        )
        self._garden_networks, self._garden_addresses = networks, dict(addresses)

    def uninstall(self) -> None:
        """Delete the table; succeed when it does not exist."""
        self.apply(
            ruleset.uninstall_document(self.spec.table), f"deleting {self._table}"
        )
        self._installed = False
        self._objects = None
        self._optional = None
        log.info("Deleted %s.", self._table)

    def _with_rules(self, needed: frozenset[str]) -> frozenset[str] | None:
        """Return the rule groups to write so that needed are in the chains.

        None means the chains already have them. While the chains' contents
        are unknown, every group is written.
        """
        if not needed:
            return None
        if self._optional is None:
            return OptionalRules.ALL
        if needed <= self._optional:
            return None
        return self._optional | needed

    @staticmethod
    def _mac_list_rules(trusted: list[str], blocked: list[str]) -> frozenset[str]:
        if trusted or blocked:
            return frozenset({OptionalRules.MAC_LISTS})
        return frozenset()

    def _object_index(self) -> dict[Device, frozenset[str]]:
        """Return the objects each device has, listing the table the first time."""
        if self._objects is None:
            try:
                self._objects = limits.parse_objects(self._list_table_terse())
            except EnforcementError:
                # No table yet: a grant or revoke then fails on its own.
                self._objects = {}
        return self._objects

    def _list_table_terse(self) -> Any:
        """List the table without set elements, which costs little however many."""
        document = ruleset.list_table_document(self.spec.table)
        with self._lock:
            self._nft.set_terse_output(True)
            try:
                return _run(
                    self._nft, document, f"listing the objects of {self._table}"
                )
            finally:
                self._nft.set_terse_output(False)

    def _record_objects(self, grants: list[Grant]) -> None:
        objects = self._object_index()
        for grant in grants:
            prefixes = limits.object_prefixes(grant.limits)
            if prefixes:
                objects[grant.device] = prefixes
            else:
                objects.pop(grant.device, None)

    # Reading the kernel's state

    def counters(self) -> dict[Device, Counters]:
        """Return the packets and bytes each authorised device has sent."""
        return {
            device: Counters(state.packets, state.bytes)
            for device, state in self.elements().items()
        }

    def elements(self) -> dict[Device, ElementState]:
        """Return every element of both authorised sets, dumped over nfnetlink."""
        action = f"listing the authorised devices of {self._table}"
        states: dict[Device, ElementState] = {}
        try:
            for name in (ruleset.ALLOWED4, ruleset.ALLOWED6):
                elements = self._dumper.set_elements(name)
                states.update(listing.authorised_states(elements))
        except (nfdump.DumpError, OSError, ValueError) as error:
            raise EnforcementError(f"{action} failed: {error}") from error
        return states

    def exists(self) -> bool:
        """Tell whether the table is in the kernel, by listing its small trusted set.

        libnftables 1.0.6 fetches every set element for `list tables`, which
        took 2 s and 390 MB with 100,000 sessions; a `list set` fetches only
        that set's elements.
        """
        command = f"list set {ruleset.FAMILY} {self.spec.table} {lists.TRUSTED}"
        with self._lock:
            status, _, error = self._text.cmd(command)
        if status == 0:
            return True
        if "No such file or directory" in error:
            return False
        raise EnforcementError(
            f"checking whether {self._table} exists failed: {_error_text(error)}"
        )

    # Running documents

    def apply(self, document: ruleset.Document, action: str) -> Any:
        """Run one JSON document as one transaction and return its output.

        action names what is being done, for the error message.
        """
        with self._lock, NFTABLES_TRANSACTION_SECONDS.time():
            return _run(self._nft, document, action)

    def apply_text_in_child(self, buffer: str, action: str) -> str:
        """Run a text buffer as one transaction in a child `nft -f -`.

        The memory libnftables takes to parse the buffer never enters this
        process. Returns nft's output.
        """
        with self._lock, NFTABLES_TRANSACTION_SECONDS.time():
            return self._child.run(buffer, action)

    @property
    def child_timeout(self) -> float:
        """Seconds a child `nft` may run before it is killed."""
        return self._child.timeout

    @child_timeout.setter
    def child_timeout(self, seconds: float) -> None:
        self._child.timeout = seconds

    def close(self) -> None:
        self._conntrack.close()
        self._child.close()
        self._dumper.close()


def _needed_rules(grants: list[Grant]) -> frozenset[str]:
    """Return the rule groups that grants need: LIMITS when any has a limit."""
    if any(limits.object_prefixes(grant.limits) for grant in grants):
        return frozenset({OptionalRules.LIMITS})
    return frozenset()


def check_ruleset(spec: RulesetSpec) -> None:
    """Have the kernel check the ruleset for spec without applying it.

    Raises EnforcementError when libnftables is missing, the process lacks
    CAP_NET_ADMIN or the kernel rejects a rule.
    """
    nft = _open_context(json_output=False)
    _set_dry_run(nft, True)
    _check_table_name(nft, spec.table)
    buffer = nftsyntax.install_buffer(spec, [], [])
    _run_text(nft, buffer, f"checking table inet {spec.table}")


def _check_table_name(nft: nftables.Nftables, table: str) -> None:
    """Raise ConfigError if nft's text syntax cannot name a table table.

    The text parser takes a table name only as a bare word, and nft 1.0.6
    accepts no quotes there, so a keyword such as "counter" cannot be used.
    """
    status, _, error = nft.cmd(f"add table inet {table}")
    # Other failures, such as a missing CAP_NET_ADMIN, are left to the
    # check of the whole ruleset, which names them.
    if status != 0 and "syntax error" in error:
        raise ConfigError(
            f"firewall.table {table!r} is invalid: nft reads it as a keyword "
            f"({_error_text(error)}); choose another name, such as "
            f"capport_{table}"
        )


def _open_context(json_output: bool = True) -> nftables.Nftables:
    try:
        nft = nftables.Nftables(sofile=LIBRARY)
    except OSError as error:
        raise EnforcementError(
            f"cannot load {LIBRARY}: {error}; install Debian's libnftables1"
        ) from error
    nft.set_json_output(json_output)
    return nft


def _set_dry_run(nft: nftables.Nftables, enabled: bool) -> None:
    # pip-nftables 1.0.2 has no dry-run switch, so set it on its context
    # directly. In a dry run the kernel still checks every command (it
    # rejects a nat chain on the forward hook, for one), and nothing is
    # applied.
    library = ctypes.CDLL(LIBRARY)
    library.nft_ctx_set_dry_run.argtypes = [ctypes.c_void_p, ctypes.c_bool]
    library.nft_ctx_set_dry_run.restype = None
    library.nft_ctx_set_dry_run(nft._Nftables__ctx, enabled)


def _run(nft: nftables.Nftables, document: ruleset.Document, action: str) -> Any:
    try:
        status, output, error = nft.json_cmd(document)
    except ValueError as parse_error:
        raise EnforcementError(
            f"{action} failed: libnftables returned invalid JSON: {parse_error}"
        ) from parse_error
    if status != 0:
        raise EnforcementError(f"{action} failed: {_error_text(error)}")
    return output


def _run_text(nft: nftables.Nftables, buffer: str, action: str) -> str:
    """Run a buffer in nft's text syntax as one transaction; return its output."""
    status, output, error = nft.cmd(buffer)
    if status != 0:
        raise EnforcementError(f"{action} failed: {_error_text(error, buffer)}")
    return str(output)


def _error_text(stderr: str, text_input: str = "") -> str:
    """Keep libnftables' messages, without the echo of the input.

    libnftables repeats the input line it blames, JSON or text, and marks
    the faulty part with carets on the next line.
    """
    echoed = set(text_input.splitlines()) if text_input else set()
    messages = []
    for line in stderr.splitlines():
        if line in echoed:
            continue
        line = _LOCATION.sub("", line.strip())
        if not line or line.startswith(("{", "[")) or set(line) <= {"^", "~", " "}:
            continue
        messages.append(_ERROR_PREFIX.sub("", line))
    # One failing command per element repeats the same message.
    text = "; ".join(dict.fromkeys(messages)) or "no error message"
    if len(text) > _MAX_ERROR_CHARS:
        text = text[:_MAX_ERROR_CHARS] + "..."
    return text


def _describe(devices: list[Device]) -> str:
    if len(devices) <= 3:
        return ", ".join(str(device) for device in devices)
    return f"{len(devices)} devices"

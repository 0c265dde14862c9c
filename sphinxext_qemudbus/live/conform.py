"""Live conformance: compare what a running process exports on a D-Bus bus with the registry.

``qemu-dbus conform --address ADDRESS --dest NAME`` introspects the objects of one bus peer (QEMU,
say, as ``org.qemu`` on a VM's private bus) over a real connection, parses every reply with the
checker's own safe parser (a peer's reply is untrusted input like any file), and compares each
``org.qemu.*`` interface it finds with the registry, both seen as the peer's platform builds them:

* errors (``L0``): a registered member the object lacks, or has with another kind, signature,
  property type or access; a property value sent with another type than registered (read with
  ``Properties.GetAll``, unless ``--no-values``); an object that cannot be introspected;
* warnings (``L1``): what the object exports beyond the registry (a member, an ``org.qemu.*``
  interface), an interface exported at a path its registered object path does not match, a NoReply
  or EmitsChangedSignal annotation that says otherwise than the registry, a peer that neither owns
  nor queues for the bus name the registry gives an interface it exports (the name its callers
  look for: QEMU finds vmstate helpers in the queue of ``org.qemu.VMState1``), and properties
  GetAll does not return.

The comparison is against the registry's view of one QEMU release (``--qemu-version``): what the
registry dates later is not expected, and a peer that exports it anyway gets a warning (L107).

Registered-side findings are located in the registry file, live-side ones at ``DEST:PATH:LINE``,
the line of the peer's introspection XML.  The comparison (`compare_object`) is pure; only
`introspect_objects` and `read_bus_facts` talk to the bus, through `wire` (jeepney's low-level
parts, the ``live`` extra), imported when needed.  Every call waits at most ``--timeout`` and never
past the run's deadline; the walk is bounded in objects and in bytes kept.  The messages
themselves (a display listener's peer-to-peer socket, a monitored bus) are checked by `traffic`,
from `listen` and `monitor`.
"""

from __future__ import annotations

import functools
import math
import sys
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..diagnostics.diagnostic import Diagnostic, Location
from ..diagnostics.frozen import frozen, record
from ..diagnostics.rules import diagnostic
from ..model.introspection import (
    Direction,
    Interface,
    Member,
    Method,
    Node,
    Property,
    direction_signature,
    interface_for_platform,
    platforms_of,
)
from ..model.names import RESERVED_PREFIX, is_under_prefix, object_path_error, path_pattern_regex
from ..model.parser import parse_bytes
from ..model.registry import Entry, Registry
from ..model.releases import (
    Release,
    feature_release,
    newest,
    parse_release,
    previous_release,
    release_text,
    since_on,
)

if TYPE_CHECKING:
    from .wire import Budget, Wire

INTROSPECTABLE = "org.freedesktop.DBus.Introspectable"
PROPERTIES = "org.freedesktop.DBus.Properties"
#: Introspecting stops after this many objects: a peer must not keep the tool busy forever.
MAX_OBJECTS = 10_000
#: ... or after keeping this many bytes of object paths and introspection replies.
MAX_BYTES = 16 << 20
#: An introspection reply larger than this is not parsed: it is a finding of its own.  QEMU's
#: largest (a console with its keyboard, mouse and touch interfaces) is about 10 KiB; what a reply
#: costs (parsing, comparing, the findings) grows with its size, about a second a MiB.
MAX_REPLY_BYTES = 256 << 10
#: Findings shown for one object; past this, one line per kind says how many more there were.
MAX_FINDINGS_PER_OBJECT = 100
#: Calls in a row a peer may leave unanswered before it is taken to hang.
MAX_SILENT = 3
DEFAULT_TIMEOUT = 5.0
#: The whole run's wall-clock budget, beyond the time asked for with --listen and --monitor.
DEFAULT_DEADLINE = 120.0


# --- what was found on the bus ----------------------------------------------------------------


@frozen
class LiveObject:
    """One introspected object: its parsed reply (None when there is none) and what went wrong."""

    path: str
    node: Node | None
    diagnostics: tuple[Diagnostic, ...] = ()


@record(frozen=True)
class BusFacts:
    """What the bus told besides introspection: the peer's unique name, the owners queued for the
    bus names the registry gives, and the type of every property value the peer sent.  What the bus
    would not say is left out, and then not checked."""

    peer: str | None = None
    queued: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: (object path, interface) → property → the signature of the value GetAll returned, or why
    #: GetAll returned nothing.
    values: Mapping[tuple[str, str], Mapping[str, str] | str] = field(default_factory=dict)
    #: Interfaces whose properties were not read because the run's deadline had passed.
    unread: int = 0

    def holds(self, name: str) -> bool | None:
        """Whether the peer owns or queues for ``name``; None when the bus did not tell."""
        if self.peer is None or name not in self.queued:
            return None
        return self.peer in self.queued[name]


def live_location(dest: str, path: str, line: int = 0) -> Location:
    """``DEST:PATH`` and the line in that object's introspection XML."""
    return Location(f"{dest}:{path}", line)


def parse_reply(dest: str, path: str, xml: str) -> LiveObject:
    """Parse an Introspect reply with the checker's parser; its errors are the object's findings."""
    parsed = parse_bytes(xml.encode("utf-8", "surrogatepass"), str(live_location(dest, path)))
    return LiveObject(path, None if parsed.errors else parsed.node, parsed.diagnostics)


# --- the comparison ---------------------------------------------------------------------------------


def current_platform() -> str:
    return "windows" if sys.platform == "win32" else "unix"


@functools.lru_cache(maxsize=8)
def release_view(registry: Registry, release: Release | None, platform: str | None = None) -> Registry:
    """The registry as QEMU ``release`` exported it (None: the registry's own release), on
    ``platform`` (None: on each)."""
    return registry if release is None else registry.at_release(release, platform)


# --- which release the peer runs ----------------------------------------------------------------


@record(frozen=True)
class ReleaseMatch:
    """The QEMU releases a peer can be, from what it exports: at least ``oldest`` (it has what
    that release added), at most ``newest`` (it lacks what the release after added).  ``checked``
    is the release to compare it with: ``newest`` when the range is not empty, else the release
    with the fewest differences, and then ``conflict`` says which two facts disagree."""

    oldest: Release
    newest: Release
    checked: Release
    conflict: str | None = None

    @property
    def matched(self) -> bool:
        return self.conflict is None

    @property
    def range_text(self) -> str:
        """``QEMU 9.2 to 10.0`` (or ``QEMU 10.0`` when one release fits)."""
        if self.oldest == self.newest:
            return f"QEMU {release_text(self.oldest)}"
        return f"QEMU {release_text(self.oldest)} to {release_text(self.newest)}"


def detect_release(newest_registry: Registry, objects: Sequence[LiveObject], platform: str) -> ReleaseMatch | None:
    """Which QEMU releases the peer can be, judged from the registered interfaces it exports on
    ``platform`` (the registry dates every interface, member and platform variant): each one it
    has is evidence that it is at least as new as that item's date, each member an exported
    interface lacks (one added after the interface) that it is older than that member's date.  An interface the peer does not
    export says nothing (what QEMU exports depends on its command line).  None when the peer
    exports nothing the registry dates; the range never goes past the registry's own release."""
    has: dict[str, Release] = {}
    lacks: dict[str, Release] = {}
    for live in objects:
        for found in live.node.interfaces if live.node is not None else ():
            if found.name not in newest_registry:
                continue
            registered = newest_registry.interface(found.name)
            if platform not in platforms_of(registered.conditions):
                continue
            registered = interface_for_platform(registered, platform)
            interface_date = _dated(since_on(registered, platform))
            if interface_date is None:
                continue
            has[found.name] = interface_date
            exported = {member.name for member in interface_for_platform(found, platform).members}
            for member in registered.members:
                date = _dated(newest([since_on(member, platform), release_text(interface_date)]))
                name = f"{found.name}.{member.name}"
                if date is None:
                    continue
                if member.name in exported:
                    has[name] = date
                elif date > interface_date:
                    # A member that came with its interface and is missing says the peer is
                    # broken (L001), not older: an older QEMU would not export the interface.
                    lacks[name] = date
    if not has:
        return None
    ceiling = _dated(newest_registry.release)
    oldest = max(has.values())
    latest = min([previous_release(date) for date in lacks.values()] + ([ceiling] if ceiling else []), default=None)
    if latest is None:
        latest = oldest
    if oldest <= latest:
        return ReleaseMatch(oldest, latest, latest)
    # No release has all of it: the closest is the one with the fewest differences (the newest of
    # those, as for a range), each difference a finding of the comparison that follows.
    candidates = {*has.values(), *lacks.values(), *(previous_release(d) for d in lacks.values())}
    candidates = {c for c in candidates if ceiling is None or c <= ceiling}

    def differences(release: Release) -> int:
        return sum(date > release for date in has.values()) + sum(date <= release for date in lacks.values())

    checked = min(sorted(candidates, reverse=True), key=differences)
    newer = max(has, key=lambda name: has[name])
    older = min(lacks, key=lambda name: lacks[name])
    conflict = (
        f"it exports {newer}, which the registry dates to {release_text(has[newer])}, but lacks {older}, "
        f"dated {release_text(lacks[older])}"
    )
    return ReleaseMatch(oldest, latest, checked, conflict)


def _dated(text: str | None) -> Release | None:
    parsed = parse_release(text) if text else None
    return feature_release(parsed) if parsed is not None else None


def compare_object(
    newest: Registry,
    dest: str,
    live: LiveObject,
    platform: str,
    facts: BusFacts | None = None,
    release: Release | None = None,
) -> list[Diagnostic]:
    """Every conformance finding for one introspected object, against the registry's view of
    ``release`` (None: the newest); with ``facts``, also whether the peer holds the bus name the
    registry gives each interface it exports, and the types of the property values it sent.  What
    the peer exports beyond that view but the newest registry has is a warning (L107): the peer
    is newer than the release it is checked against."""
    registry = release_view(newest, release, platform)
    findings = list(live.diagnostics)
    if live.node is None:
        return findings
    queues_told: set[str] = set()  # a name's queue is told once per object, not per interface
    for found in live.node.interfaces:
        name = found.name
        if name.startswith("org.freedesktop.DBus."):
            continue  # the standard interfaces every GDBus object has
        where = live_location(dest, live.path, found.location.line)
        if name not in registry and name in newest:
            message = f"{live.path} exports {name}, which the registry dates to {newest.interface(name).since}, {_after(release)}"
            findings.append(diagnostic("L107", where, message))
            continue
        if name not in registry:
            if is_under_prefix(name, RESERVED_PREFIX):
                message = f"{live.path} exports {name}, which is not in the registry"
                findings.append(diagnostic("L102", where, message))
            continue
        entry = registry.entry(name)
        if platform not in platforms_of(entry.interface.conditions):
            message = f"{live.path} exports {name}, which the registry has only for other platforms than {platform}"
            findings.append(diagnostic("L102", where, message))
            continue
        pattern = entry.metadata.object_path
        if pattern is not None and not path_pattern_regex(pattern).match(live.path):
            message = f"{name} is exported at {live.path}; the registry places it at {pattern}"
            findings.append(diagnostic("L103", where, message))
        bus_name = entry.metadata.bus_name
        holds = facts.holds(bus_name) if facts is not None and bus_name is not None else None
        if holds is False:
            message = (
                f"{dest} exports {name} at {live.path} but neither owns nor queues for {bus_name}, "
                "the bus name the registry gives it"
            )
            findings.append(diagnostic("L105", where, message))
        elif holds and facts is not None and bus_name in qemu_names(newest) and bus_name not in queues_told:
            queues_told.add(bus_name)
            findings += _queue_findings(dest, bus_name, facts, where)
        values = facts.values.get((live.path, name)) if facts is not None else None
        later = newest.interface(name) if release is not None else None
        findings += compare_interface(entry, found, dest, live.path, platform, values, later, release)
    return findings


@functools.lru_cache(maxsize=8)
def qemu_names(registry: Registry) -> frozenset[str]:
    """The bus names only QEMU holds: those of interfaces that QEMU alone implements (one QEMU per
    bus).  Callers reach whoever is their primary owner, and a connection queued behind it takes
    the name over when it leaves; other names are shared on purpose (dbus-vmstate calls every
    helper queued for org.qemu.VMState1)."""
    return frozenset(
        entry.metadata.bus_name
        for entry in registry
        if entry.metadata.bus_name is not None and entry.metadata.implementers == ("qemu",)
    )


def _queue_findings(dest: str, name: str, facts: BusFacts, where: Location) -> list[Diagnostic]:
    owners = facts.queued[name]
    if owners[0] != facts.peer:
        message = f"{dest} only queues for {name}, which only QEMU holds: its owner {owners[0]} gets every call made to {name}"
        return [diagnostic("L105", where, message)]
    if len(owners) > 1:
        others = owners[1:]
        who = " and ".join((", ".join(others[:-1]), others[-1])) if len(others) > 1 else others[0]
        verb = "queue" if len(others) > 1 else "queues"
        message = (
            f"{who} {verb} for {name} behind {dest}, a name only QEMU holds: the first takes it over when {dest} leaves"
        )
        return [diagnostic("L105", where, message)]
    return []


def _after(release: Release | None) -> str:
    return f"after QEMU {release_text(release)}" if release is not None else "after this registry"


def compare_interface(
    entry: Entry,
    found: Interface,
    dest: str,
    path: str,
    platform: str,
    values: Mapping[str, str] | str | None = None,
    newest: Interface | None = None,
    release: Release | None = None,
) -> list[Diagnostic]:
    """The registered interface against the one found at ``path``, both projected on ``platform``;
    ``values`` are the signatures of the property values GetAll returned (or why it did not).  A
    member the registered interface lacks but ``newest`` (the same interface in the newest
    registry) has came after ``release``: a warning of its own."""
    registered = interface_for_platform(entry.interface, platform)
    live = interface_for_platform(found, platform)
    name = registered.name
    live_members = {member.name: member for member in live.members}
    findings: list[Diagnostic] = []
    here = f"{path} ({platform})"
    for member in registered.members:
        other = live_members.pop(member.name, None)
        if other is None:
            message = f"{member.kind} {name}.{member.name} is missing from {here}"
            findings.append(diagnostic("L001", member.location, message))
        elif other.kind != member.kind:
            message = f"{name}.{member.name} is a {member.kind} in the registry but a {other.kind} on {here}"
            findings.append(diagnostic("L002", member.location, message))
        else:
            findings += _compare_member(name, member, other, here, live_location(dest, path, other.location.line))
    later = {member.name: member for member in newest.members} if newest is not None else {}
    for extra in live_members.values():
        where = live_location(dest, path, extra.location.line)
        if extra.name in later:
            since = later[extra.name].since or newest.since if newest is not None else None
            message = (
                f"{path} has {extra.kind} {name}.{extra.name}, which the registry dates to {since}, {_after(release)}"
            )
            findings.append(diagnostic("L107", where, message))
            continue
        message = f"{path} has {extra.kind} {name}.{extra.name}, which the registry does not list"
        findings.append(diagnostic("L101", where, message))
    if values is not None:
        where = live_location(dest, path, found.location.line)
        findings += _compare_values(registered, live, values, where, path)
    return findings


def _compare_values(
    registered: Interface, live: Interface, values: Mapping[str, str] | str, where: Location, path: str
) -> Iterator[Diagnostic]:
    """The types of the values GetAll returned against the registry's property types, for the
    readable properties the object declares (one it lacks is already an L001)."""
    name = registered.name
    if isinstance(values, str):
        yield diagnostic("L106", where, f"cannot read the properties of {name} at {path}: {values}")
        return
    declared = {member.name for member in live.properties}
    for member in registered.properties:
        if not member.access.readable or member.name not in declared:
            continue
        sent = values.get(member.name)
        if sent is None:
            yield diagnostic("L106", where, f"GetAll({name}) at {path} leaves out readable property {member.name}")
        elif sent != member.type:
            message = f"property {name}.{member.name} is sent as {sent!r} at {path}; the registry says {member.type!r}"
            yield diagnostic("L006", member.location, message)


def _compare_member(interface: str, member: Member, other: Member, here: str, there: Location) -> Iterator[Diagnostic]:
    full = f"{interface}.{member.name}"
    if isinstance(member, Property):
        assert isinstance(other, Property)
        if other.type != member.type:
            message = f"property {full} has type {other.type!r} on {here}; the registry says {member.type!r}"
            yield diagnostic("L004", member.location, message)
        if other.access is not member.access:
            message = f"property {full} is {other.access.value} on {here}; the registry says {member.access.value}"
            yield diagnostic("L005", member.location, message)
        if other.emits_changed is not member.emits_changed:
            message = (
                f"property {full} announces EmitsChangedSignal={other.emits_changed.value} on {here}; "
                f"the registry says {member.emits_changed.value}"
            )
            yield diagnostic("L104", there, message)
        return
    assert not isinstance(other, Property)  # same kind: compare_interface reports L002 otherwise
    directions = (Direction.IN, Direction.OUT) if isinstance(member, Method) else (Direction.OUT,)
    for direction in directions:
        registered, live = direction_signature(member, direction), direction_signature(other, direction)
        if registered != live:
            what = (
                {Direction.IN: "takes", Direction.OUT: "returns"}[direction]
                if isinstance(member, Method)
                else "carries"
            )
            message = f"{member.kind} {full} {what} ({live}) on {here}; the registry says ({registered})"
            yield diagnostic("L003", member.location, message)
    if isinstance(member, Method) and isinstance(other, Method) and other.no_reply != member.no_reply:
        said = "is" if other.no_reply else "is not"
        message = f"method {full} {said} marked Method.NoReply on {here}, unlike the registry"
        yield diagnostic("L104", there, message)


# --- the bus ------------------------------------------------------------------------------------


def jeepney_missing(command: str) -> str:
    """What to do when jeepney is not installed: install it into the interpreter qemu-dbus runs
    on, which works from a checkout, a wheel or (once released) an index alike."""
    return f"{command} needs jeepney: {sys.executable} -m pip install 'jeepney>=0.8'"


class LiveError(Exception):
    """The bus cannot be used at all (no jeepney, no connection): a usage or I/O error."""


def connect(address: str, timeout: float, deadline: float, budget: Budget | None = None) -> Wire:
    """A connection to the bus at ``address`` (a D-Bus address, or SESSION / SYSTEM), set up in
    at most ``timeout`` seconds: a bus that accepts the connection and then says nothing (not even
    to ``Hello``) does not hold the tool.  What it receives counts in the run's ``budget``."""
    try:
        from .wire import AddressError, WireError, connect_bus
    except ImportError as error:
        raise LiveError(jeepney_missing("qemu-dbus conform")) from error
    try:
        return connect_bus(address, min(time.monotonic() + timeout, deadline), budget)
    except AddressError as error:
        raise LiveError(f"cannot connect to {address}: {error}") from error
    except TimeoutError as error:
        detail = f" ({error})" if str(error) else ""
        raise LiveError(f"cannot connect to {address}: no answer within {timeout:g} s{detail}") from error
    except WireError as error:
        raise LiveError(f"cannot connect to {address}: {error}") from error


class LiveBus:
    """A connection, the timeout of every call on it and the deadline of the whole run.  A peer
    that left ``MAX_SILENT`` calls in a row unanswered is taken to hang: later calls to it fail at
    once instead of each waiting out the timeout (a hung peer with thousands of objects would
    otherwise hold the tool for hours)."""

    def __init__(self, connection: Wire, timeout: float, deadline: float = math.inf) -> None:
        self.connection = connection
        self.timeout = timeout
        self.deadline = deadline
        self._silent: dict[str, int] = {}  # destination → calls in a row without a reply

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def call(
        self, message: Any, returns: str | None = None, max_bytes: int | None = None
    ) -> tuple[tuple[Any, ...], str | None]:
        """(the reply's body, None), or ((), what went wrong): no reply, an error reply, a broken
        connection, a peer that stopped answering, the run's deadline, a reply whose signature is
        not ``returns`` or whose body is larger than ``max_bytes`` (its body is then never
        decoded)."""
        from jeepney import HeaderFields

        from .wire import WireError, error_text

        fields = message.header.fields
        member, destination = fields.get(HeaderFields.member), str(fields.get(HeaderFields.destination))
        if self.expired:
            return (), f"{member} not sent: the run's deadline has passed"
        if self._silent.get(destination, 0) >= MAX_SILENT:
            return (), f"{member} not sent: {destination} left the last {MAX_SILENT} calls unanswered"
        try:
            received = self.connection.call(message, min(time.monotonic() + self.timeout, self.deadline))
        except TimeoutError as error:
            detail = f" ({error})" if str(error) else ""
            if time.monotonic() >= self.deadline:
                return (), f"no reply to {member} before the run's deadline{detail}"
            self._silent[destination] = self._silent.get(destination, 0) + 1
            return (), f"no reply to {member} within {self.timeout:g} s{detail}"
        except WireError as error:
            return (), f"{member} failed: {error}"
        received.close()
        reply = received.message
        self._silent[destination] = 0
        if (error_name := error_text(reply)) is not None:
            return (), f"{member} failed with {error_name}"
        if returns is not None and reply.signature != returns:
            return (), f"{member} replied with ({reply.signature}), not ({returns})"
        if max_bytes is not None and reply.body_length > max_bytes:
            return (), f"the reply to {member} is {reply.body_length} bytes, over the limit of {max_bytes}"
        return reply.body, None


def owner_of(bus: LiveBus, dest: str) -> tuple[str | None, str | None]:
    """(the unique name of the peer that owns ``dest``, None), or (None, why not): a name nobody
    owns is a usage error, not a finding about a peer."""
    from jeepney.bus_messages import message_bus

    body, problem = bus.call(message_bus.GetNameOwner(dest), returns="s")
    if problem is None and len(body) == 1 and isinstance(body[0], str):
        return body[0], None
    if problem is not None and "NameHasNoOwner" in problem:
        return None, f"no peer owns {dest} on this bus"
    return None, problem or "GetNameOwner replied with something other than a name"


@dataclass
class Walk:
    """The objects introspected, and what was left unchecked (a deadline or a bound was reached)."""

    objects: list[LiveObject]
    unchecked: list[Diagnostic]


def introspect_objects(
    bus: LiveBus,
    dest: str,
    roots: Sequence[str],
    recursive: bool,
    max_objects: int = MAX_OBJECTS,
    max_bytes: int = MAX_BYTES,
) -> Walk:
    """Introspect ``roots`` (and, with ``recursive``, every object below them), breadth first,
    until the run's deadline, ``max_objects`` objects, or ``max_bytes`` of paths and replies kept
    (a peer can name long paths and send long replies: the count alone does not bound memory)."""
    pending = deque(roots)
    seen: set[str] = set()
    found: list[LiveObject] = []
    kept = sum(len(path) for path in roots)
    stop: str | None = None
    while pending:
        path = pending.popleft()
        if path in seen:
            continue
        if len(found) == max_objects:
            stop = f"stopped after {max_objects} objects"
        elif kept > max_bytes:
            stop = f"stopped after keeping {kept} bytes of object paths and introspection data"
        elif bus.expired:
            stop = "stopped at the run's deadline (--deadline)"
        if stop is not None:
            pending.appendleft(path)
            break
        seen.add(path)
        live, size = _introspect(bus, dest, path)
        kept += size
        if recursive and live.node is not None:
            children, problems = _children(dest, path, live.node)
            pending += children
            kept += sum(len(child) for child in children)
            live = LiveObject(path, live.node, live.diagnostics + problems)
        found.append(live)
    unchecked: list[Diagnostic] = []
    if stop is not None:
        left = len(set(pending) - seen)
        message = f"{stop}; {left} object(s) known but not introspected, starting with {pending[0]}"
        message += "; name the objects to check with --object" if "deadline" not in stop else ""
        unchecked.append(diagnostic("L017", live_location(dest, pending[0]), message))
    return Walk(found, unchecked)


def _children(dest: str, path: str, node: Node) -> tuple[list[str], tuple[Diagnostic, ...]]:
    """The paths of the child nodes an object lists, and the names that are not one path element."""
    children: list[str] = []
    problems: list[Diagnostic] = []
    for child in node.nodes:
        name = child.name or ""
        full = f"{path.rstrip('/')}/{name}"
        if "/" in name or object_path_error(full):
            message = f"child node {name!r} of {path} is not one path element; not followed"
            problems.append(diagnostic("L010", live_location(dest, path, child.location.line), message))
        else:
            children.append(full)
    return children, tuple(problems)


def _introspect(bus: LiveBus, dest: str, path: str) -> tuple[LiveObject, int]:
    """The object at ``path``, and how many bytes of reply it keeps."""
    from jeepney import DBusAddress, new_method_call

    call = new_method_call(DBusAddress(path, bus_name=dest, interface=INTROSPECTABLE), "Introspect")
    body, problem = bus.call(call, returns="s", max_bytes=MAX_REPLY_BYTES)
    if problem is not None:
        message = f"cannot introspect {path}: {problem}"
        return LiveObject(path, None, (diagnostic("L010", live_location(dest, path), message),)), len(message)
    return parse_reply(dest, path, body[0]), len(body[0])


def read_bus_facts(
    bus: LiveBus,
    dest: str,
    registry: Registry,
    objects: Sequence[LiveObject],
    platform: str,
    read_values: bool = True,
) -> BusFacts:
    """Ask the bus driver who ``dest`` is and who holds the bus name the registry gives each
    registered interface found, and (with ``read_values``) ask the peer for the values of their
    readable properties.  Whatever the bus will not say (a policy that denies the call, a name
    nobody holds) is left out."""
    found = [
        (live.path, interface.name)
        for live in objects
        if live.node is not None
        for interface in live.node.interfaces
        if interface.name in registry
    ]
    names = [registry.metadata(name).bus_name for _, name in found]
    peer = dest if dest.startswith(":") else _driver_call(bus, "GetNameOwner", dest)
    queued: dict[str, tuple[str, ...]] = {}
    for name in sorted({name for name in names if name is not None}):
        owners = _driver_call(bus, "ListQueuedOwners", name)
        if isinstance(owners, list):
            queued[name] = tuple(owners)
        elif owners is None and _driver_call(bus, "NameHasOwner", name) is False:
            queued[name] = ()  # nobody holds it: then the peer does not either
    values: dict[tuple[str, str], Mapping[str, str] | str] = {}
    unread = 0
    for path, name in found if read_values else ():
        registered = interface_for_platform(registry.interface(name), platform)
        if not any(p.access.readable for p in registered.properties):
            continue
        if bus.expired:
            unread += 1  # reported once, as what the deadline left unchecked
        else:
            values[(path, name)] = _property_types(bus, dest, path, name)
    return BusFacts(peer if isinstance(peer, str) else None, queued, values, unread)


def _property_types(bus: LiveBus, dest: str, path: str, interface: str) -> dict[str, str] | str:
    """Property → the signature of its value, as GetAll returns them; or what went wrong."""
    from jeepney import DBusAddress, new_method_call

    call = new_method_call(DBusAddress(path, bus_name=dest, interface=PROPERTIES), "GetAll", "s", (interface,))
    body, problem = bus.call(call, returns="a{sv}")
    if problem is not None:
        return problem
    # jeepney reads a variant as (signature, value).
    return {str(key): str(value[0]) for key, value in body[0].items() if isinstance(value, tuple) and value}


#: What the bus-driver methods the tool calls return.
_DRIVER_RETURNS = {"GetNameOwner": "s", "ListQueuedOwners": "as", "NameHasOwner": "b"}


def _driver_call(bus: LiveBus, method: str, argument: str) -> Any:
    """The one value a bus-driver method returns, or None when it fails in any way."""
    from jeepney.bus_messages import message_bus

    body, problem = bus.call(getattr(message_bus, method)(argument), returns=_DRIVER_RETURNS[method])
    return body[0] if problem is None else None


def capped(findings: list[Diagnostic], where: Location, limit: int = MAX_FINDINGS_PER_OBJECT) -> list[Diagnostic]:
    """The first ``limit`` findings about one object, and one line for each kind (code) of those
    cut, with its severity, saying how many there were: a peer's reply of a few hundred KiB can
    hold a hundred thousand unregistered members."""
    if len(findings) <= limit:
        return findings
    cut: dict[str, int] = {}
    for finding in findings[limit:]:
        cut[finding.code] = cut.get(finding.code, 0) + 1
    summary = [
        diagnostic(
            code, where, f"{count} more {code} finding(s) on {where.path} not shown (at most {limit} per object)"
        )
        for code, count in cut.items()
    ]
    return findings[:limit] + summary

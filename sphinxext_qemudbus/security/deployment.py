"""Deployments: which peers run on one VM's private bus, in which role, under which user.

The registry says what each *role* implements and calls; a deployment names the actual peers (QEMU,
two migration helpers, a viewer, ...), the interfaces each one implements, the well-known names each
one owns and the user each one runs as.  The policy generator and the trust notes read both.

A deployment is a small TOML file::

    [deployment]
    name = "lockdown"                      # shown in generated files and docs
    description = "..."                    # optional

    [bus]
    user = { name = "qemu-bus", uid = 64500 }    # the user the dbus-daemon runs as

    [[peer]]                               # one table per peer
    id = "net"                             # [a-z][a-z0-9-]*, unique
    label = "the network helper"           # optional: how prose names it (default: the id)
    role = "helper"                        # qemu, helper, client or manager
    description = "..."                    # optional
    user = { name = "qemu-net", uid = 64502 }    # its own user in the many-uids scenario
    implements = ["org.qemu.VMState1"]     # registry interfaces it serves (bus or peer-to-peer)
    owns = ["org.qemu.VMState1", "vm.helper.net"]  # well-known names it requests
    calls = ["..."]                        # optional: limit what it calls (default: all its role calls)

Strings hold printable text (a ``description`` may also break lines): a control character would
make the generated XML ill-formed, a format character (a bidi override) make it read otherwise.
Users need a name and number of their own, neither ``root`` nor 0.  The file is read by the
bounded TOML reader (`model.tomlfile`), and every problem is reported with its line.

A name that several peers own is *shared* (they queue for it, as every ``org.qemu.VMState1`` helper
does); a name only one peer owns is *exclusive*.  Callers reach a peer through its exclusive names
when it has any, so a peer that merely queues for a shared name is never reachable through it.

The scenarios of QEMU's ``docs/interop/dbus.rst`` map the peers onto users:

``single-uid``
    every peer and the bus run as QEMU's user;
``two-uids``
    QEMU runs as its user, the bus and every other peer as the bus user;
``many-uids``
    every peer runs as its own user, the bus as the bus user.

Each user's primary group has the user's name and the same number (``gid == uid``), as the test
matrix sets them up.  This module never imports Sphinx.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import field
from importlib import resources
from typing import Any

from ..diagnostics.diagnostic import Location
from ..diagnostics.frozen import record
from ..diagnostics.output import printable
from ..model.files import FileRefused, read_file
from ..model.metadata import ROLES
from ..model.names import bus_name_error
from ..model.registry import Registry, closest
from ..model.tomlfile import TomlError, parse_toml

SCENARIOS = ("single-uid", "two-uids", "many-uids")
SCENARIO_TITLES: Mapping[str, str] = {
    "single-uid": "Everything under one user",
    "two-uids": "Two users: QEMU; the bus and the helpers",
    "many-uids": "Many users: QEMU, the bus and every helper apart",
}
SCENARIO_DESCRIPTIONS: Mapping[str, str] = {
    "single-uid": "QEMU, the bus daemon and every peer run under QEMU's user.  The daemon cannot tell the "
    "peers apart, so the policy isolates nothing: it only keeps mistakes (a peer owning a name it should "
    "not) from going unnoticed.  Convenient for development.",
    "two-uids": "QEMU runs under its own user; the bus daemon and every other peer share the bus user.  "
    "QEMU is protected from the others and they from QEMU, but the peers that share the bus user are not "
    "isolated from each other, nor from the daemon itself.",
    "many-uids": "QEMU, the bus daemon and every peer each run under their own user: the policy "
    "separates every pair of peers, so a compromised helper can reach only what the registry says its "
    "role calls.",
}
BUILTIN_DEPLOYMENTS = ("default", "lockdown")
MAX_UID = 2**32 - 2  # (uid_t) -1 means "no change" to the kernel
_ID = re.compile(r"[a-z][a-z0-9-]*\Z")
_USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}\Z")
_RESERVED_PREFIX = "org.freedesktop.DBus"


@record(frozen=True)
class User:
    """A Unix user.  Its primary group has the same name and number."""

    name: str
    uid: int

    @property
    def gid(self) -> int:
        return self.uid

    def __str__(self) -> str:
        return f"{self.name} ({self.uid})"


@record(frozen=True)
class Peer:
    """One process on the bus."""

    id: str
    label: str
    role: str
    description: str
    user: User
    implements: tuple[str, ...]
    owns: tuple[str, ...]
    calls: tuple[str, ...] | None  # None: everything its role calls
    location: Location


@record(frozen=True)
class Deployment:
    """The peers of one VM's bus.  Build it with `load_deployment`, `parse_deployment` or
    `builtin_deployment`; check it against a registry with `check_deployment`.

    Lookups by peer id and by name, and who runs as which user in each scenario, are indexed once
    when it is made: the policy generator asks them for every message, and a deployment of a
    few thousand peers must cost a few thousand steps, not millions."""

    name: str
    description: str
    bus_user: User
    peers: tuple[Peer, ...]
    location: Location
    _by_id: dict[str, Peer] = field(init=False, repr=False, compare=False)
    _owners: dict[str, tuple[Peer, ...]] = field(init=False, repr=False, compare=False)
    _by_user: dict[str, dict[User, tuple[Peer, ...]]] = field(init=False, repr=False, compare=False)
    _qemu: Peer | None = field(init=False, repr=False, compare=False)
    _implementers: dict[str, tuple[Peer, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id: dict[str, Peer] = {}
        owners: dict[str, list[Peer]] = {}
        implementers: dict[str, list[Peer]] = {}
        for peer in self.peers:
            by_id.setdefault(peer.id, peer)
            for name in peer.owns:
                owners.setdefault(name, []).append(peer)
            for name in peer.implements:
                implementers.setdefault(name, []).append(peer)
        object.__setattr__(self, "_by_id", by_id)
        object.__setattr__(self, "_owners", {name: tuple(peers) for name, peers in owners.items()})
        object.__setattr__(self, "_implementers", {name: tuple(peers) for name, peers in implementers.items()})
        object.__setattr__(self, "_by_user", {})  # filled per scenario on first use
        object.__setattr__(self, "_qemu", next((peer for peer in self.peers if peer.role == "qemu"), None))

    def peer(self, peer_id: str) -> Peer:
        return self._by_id[peer_id]

    @property
    def qemu(self) -> Peer:
        """The QEMU peer (`check_deployment` makes sure there is exactly one)."""
        if self._qemu is None:
            raise LookupError("the deployment has no peer with role 'qemu'")
        return self._qemu

    def user_of(self, peer_id: str, scenario: str) -> User:
        """The user ``peer_id`` runs as in ``scenario``."""
        peer = self.peer(peer_id)
        if scenario == "single-uid":
            return self.qemu.user
        if scenario == "two-uids":
            return peer.user if peer.role == "qemu" else self.bus_user
        if scenario == "many-uids":
            return peer.user
        raise ValueError(f"unknown scenario {scenario!r}")

    def bus_user_in(self, scenario: str) -> User:
        """The user the bus daemon runs as in ``scenario``."""
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}")
        return self.qemu.user if scenario == "single-uid" else self.bus_user

    def _peers_by_user(self, scenario: str) -> dict[User, tuple[Peer, ...]]:
        """User → the peers running as it in ``scenario``: the bus user first, then in peer order."""
        table = self._by_user.get(scenario)
        if table is None:
            grouped: dict[User, list[Peer]] = {self.bus_user_in(scenario): []}
            for peer in self.peers:
                grouped.setdefault(self.user_of(peer.id, scenario), []).append(peer)
            table = {user: tuple(peers) for user, peers in grouped.items()}
            self._by_user[scenario] = table
        return table

    def users(self, scenario: str) -> tuple[User, ...]:
        """Every distinct user of ``scenario``: the bus user first, then the peers' in peer order."""
        seen: dict[str, User] = {}
        for user in self._peers_by_user(scenario):
            seen.setdefault(user.name, user)
        return tuple(seen.values())

    def peers_of(self, user: User, scenario: str) -> tuple[Peer, ...]:
        return self._peers_by_user(scenario).get(user, ())

    def owners(self, name: str) -> tuple[Peer, ...]:
        return self._owners.get(name, ())

    def implementers_of(self, interface: str) -> tuple[Peer, ...]:
        """The peers that implement ``interface``, in peer order."""
        return self._implementers.get(interface, ())

    def is_shared(self, name: str) -> bool:
        """Whether several peers own (queue for) ``name``."""
        return len(self.owners(name)) > 1

    def names(self) -> tuple[str, ...]:
        """Every well-known name some peer owns, in first-mention order."""
        return tuple(self._owners)

    def addresses(self, peer_id: str) -> tuple[str, ...]:
        """The well-known names through which callers reach ``peer_id``: its exclusive names when
        it has any, else its shared ones; empty when it owns none (callers use its unique name)."""
        owns = self.peer(peer_id).owns
        exclusive = tuple(name for name in owns if not self.is_shared(name))
        return exclusive or owns


# --- errors --------------------------------------------------------------------------------------


@record(frozen=True)
class DeploymentProblem:
    """Something wrong in a deployment file, with where it is."""

    location: Location
    message: str

    def format(self) -> str:
        return f"{self.location}: error: {self.message}"


class DeploymentError(Exception):
    """A deployment file that cannot be used; ``problems`` says why, each with its location."""

    def __init__(self, problems: Sequence[DeploymentProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(problem.format() for problem in self.problems))


class _Locator:
    """Finds the line of a table or key in the TOML text, so that errors about values (which
    tomllib does not locate) still point at a line.  The tables are found in one pass, the keys
    of each block on first use: a deployment of thousands of peers is located in linear time."""

    def __init__(self, text: str, path: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.starts: dict[str, list[int]] = {}  # header (stripped line start) → its lines
        tables = [n for n, line in enumerate(self.lines) if line.lstrip().startswith("[")]
        self.ends = dict(zip(tables, [*tables[1:], len(self.lines)]))
        for n in tables:
            header = self.lines[n].strip()
            for known in ("[[peer]]", "[deployment]", "[bus]"):
                if header.startswith(known):
                    self.starts.setdefault(known, []).append(n)
        self.keys: dict[int, dict[str, int]] = {}

    def _block(self, header: str, index: int) -> tuple[int, int] | None:
        starts = self.starts.get(header, [])
        if index >= len(starts):
            return None
        return starts[index], self.ends[starts[index]]

    def at(self, header: str, index: int = 0, key: str | None = None) -> Location:
        block = self._block(header, index)
        if block is None:
            return Location(self.path)
        start, end = block
        if key is not None:
            keys = self.keys.get(start)
            if keys is None:
                keys = {}
                for n in range(start + 1, end):
                    found = _KEY.match(self.lines[n])
                    if found:
                        keys.setdefault(found.group(1), n)
                self.keys[start] = keys
            if key in keys:
                return Location(self.path, keys[key] + 1)
        return Location(self.path, start + 1)


_KEY = re.compile(r"\s*([A-Za-z0-9_-]+)\s*=")


# --- loading -------------------------------------------------------------------------------------

_DEPLOYMENT_KEYS = frozenset({"name", "description"})
_BUS_KEYS = frozenset({"user"})
_USER_KEYS = frozenset({"name", "uid"})
_PEER_KEYS = frozenset({"id", "label", "role", "description", "user", "implements", "owns", "calls"})
_TOP_KEYS = frozenset({"deployment", "bus", "peer"})


def load_deployment(path: str) -> Deployment:
    """Read and parse a deployment file.  Raises `DeploymentError` (never a traceback-worthy
    exception) for unreadable files, TOML syntax errors and malformed values."""
    try:
        data = read_file(path)
    except FileRefused as refused:
        raise DeploymentError([DeploymentProblem(Location(path), refused.message)]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DeploymentError([DeploymentProblem(Location(path), f"not UTF-8: {error.reason}")]) from None
    return parse_deployment(text, path)


@functools.cache
def builtin_deployment(name: str) -> Deployment:
    """One of the deployments shipped in the package (`BUILTIN_DEPLOYMENTS`); parsed once (a
    `Deployment` is immutable), since the documentation asks for it for every member."""
    if name not in BUILTIN_DEPLOYMENTS:
        raise KeyError(name)
    resource = resources.files(__package__).joinpath("deployments").joinpath(f"{name}.toml")
    return parse_deployment(resource.read_text(encoding="utf-8"), f"<built-in deployment {name}>")


def builtin_deployment_path(name: str) -> str:
    """The file of a built-in deployment (for ``literalinclude`` and dependency tracking)."""
    return str(resources.files(__package__).joinpath("deployments").joinpath(f"{name}.toml"))


def resolve_deployment(spec: str | None) -> Deployment:
    """A deployment named on a command line: a built-in name, or a path to a ``.toml`` file
    (anything with a ``/`` or ending in ``.toml``).  None means the built-in default."""
    if spec is None:
        return builtin_deployment("default")
    if "/" in spec or spec.endswith(".toml"):
        return load_deployment(spec)
    if spec in BUILTIN_DEPLOYMENTS:
        return builtin_deployment(spec)
    close = closest(spec, BUILTIN_DEPLOYMENTS)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    message = (
        f"no built-in deployment {spec!r}{hint} (built-ins: {', '.join(BUILTIN_DEPLOYMENTS)}; "
        "or give the path of a .toml file)"
    )
    raise DeploymentError([DeploymentProblem(Location(spec), message)])


def parse_deployment(text: str, path: str = "<deployment>") -> Deployment:
    """Parse the TOML text of a deployment; ``path`` names it in errors."""
    try:
        document = parse_toml(text, path)
    except TomlError as error:
        raise DeploymentError([DeploymentProblem(error.location, error.message)]) from None
    return _Reader(_Locator(text, path), path).deployment(document)


class _Reader:
    """Turns the decoded TOML document into a `Deployment`, collecting every problem."""

    def __init__(self, locator: _Locator, path: str) -> None:
        self.locator = locator
        self.path = path
        self.problems: list[DeploymentProblem] = []

    def problem(self, location: Location, message: str) -> None:
        self.problems.append(DeploymentProblem(location, message))

    def unknown_keys(
        self,
        table: Mapping[str, Any],
        allowed: frozenset[str],
        where: str,
        location: Location,
        header: str | None = None,
        index: int = 0,
    ) -> None:
        for key in sorted(set(table) - allowed):
            at = self.locator.at(header, index, key) if header else location
            self.problem(at, f"unknown key {key!r} in {where} (known: {', '.join(sorted(allowed))})")

    def string(
        self, table: Mapping[str, Any], key: str, location: Location, *, required: bool = True, prose: bool = False
    ) -> str:
        """The string at ``key``: one line of printable text, or with ``prose`` (a description)
        several lines and tabs too."""
        value = table.get(key)
        if value is None:
            if required:
                self.problem(location, f"missing {key!r}")
            return ""
        if not isinstance(value, str):
            self.problem(location, f"{key!r} must be a string, not {type(value).__name__}")
            return ""
        return value if self.printable(value, key, location, prose) else ""

    def printable(self, value: str, key: str, location: Location, prose: bool = False) -> bool:
        """Whether ``value`` holds only printable characters (and, in ``prose``, line breaks and
        tabs); else one problem naming the first other one.  Control characters cannot be
        written in the XML of a configuration at all, and format characters (a bidi override)
        make the text read otherwise than it is, in the configuration, the docs and a terminal."""
        allowed = "\n\t" if prose else ""
        bad = next((c for c in value if not c.isprintable() and c not in allowed), None)
        if bad is None:
            return True
        self.problem(
            location,
            f"{key!r} holds the character {printable(bad)} (U+{ord(bad):04X}): control and format characters "
            f"are not allowed{'' if prose else ', nor line breaks'}",
        )
        return False

    def strings(self, table: Mapping[str, Any], key: str, location: Location) -> tuple[str, ...] | None:
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.problem(location, f"{key!r} must be a list of strings")
            return ()
        if not all(self.printable(item, key, location) for item in value):
            return ()
        if len(set(value)) != len(value):
            counts = Counter(value)
            duplicate = next(item for item in value if counts[item] > 1)
            self.problem(location, f"{key!r} lists {duplicate!r} twice")
        return tuple(dict.fromkeys(value))

    def user(self, table: Mapping[str, Any], location: Location) -> User:
        value = table.get("user")
        if not isinstance(value, dict):
            self.problem(location, "missing 'user = { name = \"...\", uid = N }'")
            return User("", -1)
        self.unknown_keys(value, _USER_KEYS, "user", location)
        name = self.string(value, "name", location)
        if name and not _USER_NAME.match(name):
            self.problem(
                location, f"user name {name!r} is not a portable Unix user name ([a-z_][a-z0-9_-]*, at most 32)"
            )
        elif name == "root":
            # The policies name users by uid, but people read the names: the header would tell
            # an administrator to start the bus daemon, or a peer, as root.
            self.problem(
                location, "user name 'root' is uid 0 on every system: give each peer and the bus a user of its own"
            )
            name = ""
        uid = value.get("uid")
        if not isinstance(uid, int) or isinstance(uid, bool):
            self.problem(location, "user 'uid' must be an integer")
            return User(name, -1)
        if uid == 0:
            self.problem(location, "uid 0 is root: a peer running as root is not confined by anything on the host")
        elif not 0 < uid <= MAX_UID:
            self.problem(location, f"uid {uid} is out of range (1 to {MAX_UID})")
        return User(name, uid)

    def deployment(self, document: Mapping[str, Any]) -> Deployment:
        top = Location(self.path, 1)
        self.unknown_keys(document, _TOP_KEYS, "the file", top)
        head = document.get("deployment", {})
        head_location = self.locator.at("[deployment]")
        if not isinstance(head, dict):
            self.problem(head_location, "[deployment] must be a table")
            head = {}
        self.unknown_keys(head, _DEPLOYMENT_KEYS, "[deployment]", head_location, "[deployment]")
        name = self.string(head, "name", self.locator.at("[deployment]", key="name"))
        description = self.string(
            head, "description", self.locator.at("[deployment]", key="description"), required=False, prose=True
        )

        bus = document.get("bus")
        bus_location = self.locator.at("[bus]")
        if not isinstance(bus, dict):
            self.problem(bus_location if bus is not None else top, "missing [bus] table with the bus daemon's user")
            bus = {}
        self.unknown_keys(bus, _BUS_KEYS, "[bus]", bus_location, "[bus]")
        bus_user = self.user(bus, self.locator.at("[bus]", key="user"))

        raw_peers = document.get("peer", [])
        if not isinstance(raw_peers, list) or not raw_peers:
            self.problem(top, "no [[peer]] tables: a deployment lists at least QEMU")
            raw_peers = []
        peers = [self.peer(raw, index) for index, raw in enumerate(raw_peers)]
        self.consistency(bus_user, peers)
        if self.problems:
            raise DeploymentError(self.problems)
        return Deployment(name, description, bus_user, tuple(peers), Location(self.path, 1))

    def peer(self, raw: Any, index: int) -> Peer:
        location = self.locator.at("[[peer]]", index)

        def at(key: str) -> Location:
            return self.locator.at("[[peer]]", index, key)

        if not isinstance(raw, dict):
            self.problem(location, "[[peer]] must be a table")
            raw = {}
        self.unknown_keys(raw, _PEER_KEYS, "[[peer]]", location, "[[peer]]", index)
        peer_id = self.string(raw, "id", at("id") if "id" in raw else location)
        if peer_id and not _ID.match(peer_id):
            self.problem(at("id"), f"peer id {peer_id!r} must match [a-z][a-z0-9-]*")
        role = self.string(raw, "role", at("role") if "role" in raw else location)
        if role and role not in ROLES:
            self.problem(at("role"), f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        implements = self.strings(raw, "implements", at("implements"))
        if implements is None:
            self.problem(location, "missing 'implements' (write implements = [] for a peer that serves nothing)")
            implements = ()
        owns = self.strings(raw, "owns", at("owns")) or ()
        for name in owns:
            problem = bus_name_error(name)
            if name.startswith(":"):
                problem = "a unique name cannot be owned: give a well-known name"
            elif name == _RESERVED_PREFIX or name.startswith(_RESERVED_PREFIX + "."):
                problem = f"{_RESERVED_PREFIX} names belong to the bus daemon"
            if problem:
                self.problem(at("owns"), f"owned name {name!r}: {problem}")
        return Peer(
            id=peer_id,
            label=self.string(raw, "label", at("label"), required=False) or peer_id,
            role=role,
            description=self.string(raw, "description", at("description"), required=False, prose=True),
            user=self.user(raw, at("user") if "user" in raw else location),
            implements=implements,
            owns=owns,
            calls=self.strings(raw, "calls", at("calls")),
            location=location,
        )

    def consistency(self, bus_user: User, peers: Sequence[Peer]) -> None:
        """Unique ids and users, exactly one QEMU: what every scenario mapping relies on."""

        def at(index: int, key: str) -> Location:
            return self.locator.at("[[peer]]", index, key)

        seen_ids: set[str] = set()
        for index, peer in enumerate(peers):
            if peer.id and peer.id in seen_ids:
                self.problem(at(index, "id"), f"peer id {peer.id!r} is used twice")
            seen_ids.add(peer.id)
        qemus = [index for index, peer in enumerate(peers) if peer.role == "qemu"]
        if peers and len(qemus) != 1:
            where = at(qemus[1], "role") if len(qemus) > 1 else Location(self.path, 1)
            self.problem(where, f"a deployment has exactly one peer with role 'qemu' (found {len(qemus)})")
        # many-uids gives every peer and the bus their own user: names and numbers must not repeat.
        owners: list[tuple[str, User, Location]] = [("the bus", bus_user, self.locator.at("[bus]", key="user"))]
        owners += [(f"peer {peer.id!r}", peer.user, at(index, "user")) for index, peer in enumerate(peers)]
        by_name: dict[str, str] = {}
        by_uid: dict[int, str] = {}
        for who, user, location in owners:
            if user.name and user.name in by_name:
                self.problem(
                    location,
                    f"user {user.name!r} of {who} is already the user of {by_name[user.name]}: every peer and the bus need their own user (many-uids)",
                )
            elif user.uid >= 0 and user.uid in by_uid:
                self.problem(
                    location,
                    f"uid {user.uid} of {who} is already the uid of {by_uid[user.uid]}: every peer and the bus need their own user (many-uids)",
                )
            by_name.setdefault(user.name, who)
            by_uid.setdefault(user.uid, who)


# --- checking against the registry ---------------------------------------------------------------


def check_deployment(deployment: Deployment, registry: Registry) -> tuple[DeploymentProblem, ...]:
    """Problems between a deployment and the registry: unknown interfaces, a peer implementing or
    calling what its role does not, an implementer that does not own the name callers look for."""
    problems: list[DeploymentProblem] = []
    reached: dict[str, list[str]] = {}  # registry bus name → the interfaces callers look for there
    for entry in registry:
        metadata = entry.metadata
        if not (metadata.implementers and metadata.callers and metadata.connection):
            location = entry.interface.location
            message = f"interface {entry.interface.name} has no valid registry metadata (run qemu-dbus check)"
            problems.append(DeploymentProblem(location, message))
        if metadata.bus_name and len(metadata.implementers) == 1:
            reached.setdefault(metadata.bus_name, []).append(entry.interface.name)
    for peer in deployment.peers:
        # A registry bus name belongs to the implementers of what callers look for there: QEMU
        # calls every connection queued for org.qemu.VMState1 (dbus-vmstate walks the queue), and
        # whoever holds org.qemu, or queues to take it over, gets what clients send QEMU.
        implemented = set(peer.implements)
        for name in peer.owns:
            interfaces = reached.get(name, ())
            if interfaces and implemented.isdisjoint(interfaces):
                others = f" (and {len(interfaces) - 1} more)" if len(interfaces) > 1 else ""
                message = (
                    f"peer {peer.id!r} owns {name}, the bus name at which callers find {interfaces[0]}{others}, "
                    "which it does not implement: callers would take it for an implementer (a queued owner "
                    "takes the name over when the owner leaves; QEMU calls every owner queued for a shared name)"
                )
                problems.append(DeploymentProblem(peer.location, message))

        for name in peer.implements:
            if name not in registry:
                problems.append(
                    DeploymentProblem(
                        peer.location, f"peer {peer.id!r} implements {name}, which is not in the registry"
                    )
                )
                continue
            metadata = registry.metadata(name)
            if peer.role not in metadata.implementers:
                implementers = ", ".join(metadata.implementers)
                message = f"peer {peer.id!r} (role {peer.role}) implements {name}, but the registry says only {implementers} implement it"
                problems.append(DeploymentProblem(peer.location, message))
            elif metadata.bus_name and len(metadata.implementers) == 1 and metadata.bus_name not in peer.owns:
                message = f"peer {peer.id!r} implements {name}, which callers find at {metadata.bus_name}, but does not own that name"
                problems.append(DeploymentProblem(peer.location, message))
        for name in peer.calls or ():
            if name not in registry:
                problems.append(
                    DeploymentProblem(peer.location, f"peer {peer.id!r} calls {name}, which is not in the registry")
                )
            elif peer.role not in registry.metadata(name).callers:
                callers = ", ".join(registry.metadata(name).callers)
                message = (
                    f"peer {peer.id!r} (role {peer.role}) calls {name}, but the registry says only {callers} call it"
                )
                problems.append(DeploymentProblem(peer.location, message))
    return tuple(problems)

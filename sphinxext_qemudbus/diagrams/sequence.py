"""Sequences: the order of calls of an interface family, from a short description that names
registry members, checked against the registry.

The description, one item per line (``#`` starts a comment)::

    participant client client the display client
    participant qemu qemu QEMU
    client -> qemu: org.qemu.Display1.VM.ConsoleIDs
    client -> qemu: org.qemu.Display1.Console.RegisterListener with one end of a socket pair
    note client, qemu: the D-Bus handshake on the other end; QEMU is the server
    qemu -> client: org.qemu.Display1.Listener.Scanout

``participant ID ROLE [label]`` declares a lane (ROLE is a registry role, or ``bus`` for the bus
daemon); ``FROM -> TO: NAME [remark]`` is a message: NAME is a registry method, signal or property
(a property arrow reads it), or a standard ``org.freedesktop.DBus`` member, by its full name or its
last elements when they are unique (``Console.RegisterListener``, as ``qemu-dbus registry show``
takes names); ``note FROM[, TO]: text`` spans the lanes from FROM to TO.

Every name is checked: a member the registry does not have (R605), a message in a direction the
registry's roles do not allow (R606: a call from a role that does not call the interface, a
signal from one that does not implement it), a participant nobody declared (R607), a line of no
known form (R608), a participant declared twice or with an unknown role (R609).  Each problem is a
`Diagnostic` at its line, with the closest names when a name is unknown; the sequence is still
drawn, without the faulty message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ..diagnostics.diagnostic import Diagnostic, Location
from ..diagnostics.frozen import record
from ..diagnostics.rules import diagnostic
from ..model.introspection import Member, Method, Property, Signal
from ..model.metadata import ROLES
from ..model.registry import NameIndex, Registry, closest
from .lanes import Arrow, Diagram, Lane, LegendEntry, Note, Row, Span, Table

BUS_ROLE = "bus"
DRIVER = "org.freedesktop.DBus"
#: Standard members a sequence may name besides the registry's: (kind, sent to the bus daemon).
STANDARD: dict[str, tuple[str, bool]] = {
    f"{DRIVER}.Hello": ("method", True),
    f"{DRIVER}.RequestName": ("method", True),
    f"{DRIVER}.ReleaseName": ("method", True),
    f"{DRIVER}.ListQueuedOwners": ("method", True),
    f"{DRIVER}.GetNameOwner": ("method", True),
    f"{DRIVER}.GetConnectionUnixUser": ("method", True),
    f"{DRIVER}.GetConnectionCredentials": ("method", True),
    f"{DRIVER}.AddMatch": ("method", True),
    f"{DRIVER}.NameOwnerChanged": ("signal", True),
    f"{DRIVER}.Properties.Get": ("method", False),
    f"{DRIVER}.Properties.GetAll": ("method", False),
    f"{DRIVER}.Properties.Set": ("method", False),
    f"{DRIVER}.Properties.PropertiesChanged": ("signal", False),
    f"{DRIVER}.Introspectable.Introspect": ("method", False),
    f"{DRIVER}.ObjectManager.GetManagedObjects": ("method", False),
    f"{DRIVER}.ObjectManager.InterfacesAdded": ("signal", False),
    f"{DRIVER}.ObjectManager.InterfacesRemoved": ("signal", False),
}

_PARTICIPANT = re.compile(r"participant\s+(\S+)\s+(\S+)(?:\s+(.*\S))?\s*\Z")
_MESSAGE = re.compile(r"(\S+?)\s*->\s*(\S+?)\s*:\s*(\S+)(?:\s+(.*\S))?\s*\Z")
_NOTE = re.compile(r"note\s+([^:]+?)\s*:\s*(.*\S)\s*\Z")
_LEGEND = {
    "bus": "solid: a message over the VM's bus",
    "p2p": "dashed: over a peer-to-peer connection",
    "management": "open head: a management interface",
}


@record(frozen=True)
class Participant:
    id: str
    role: str
    label: str


def _registry_member(registry: Registry, name: str) -> tuple[str, Member] | None:
    """The registry member of full name ``name``, with its interface."""
    interface, _, member = name.rpartition(".")
    if not interface or interface not in registry:
        return None
    for candidate in registry.interface(interface).members:
        if candidate.name == member:
            return interface, candidate
    return None


def member_names(registry: Registry) -> NameIndex:
    """What a message may name: a registry member or a standard member, by its full name or its
    last elements (``Console.RegisterListener``, ``ListQueuedOwners``), as the CLI takes names."""
    members = (name for name, kind in registry.objects().items() if kind != "interface")
    return NameIndex((*members, *STANDARD), "member")


def _short(interface: str, member: str) -> str:
    """``Console.RegisterListener``: the name after the versioned family (``org.qemu.Display1``)."""
    parts = interface.split(".")
    for index, part in enumerate(parts[1:], start=1):
        if part[-1:].isdigit():
            rest = parts[index + 1 :] or [part]
            return ".".join([*rest, member])
    return f"{interface}.{member}"


class _Reader:
    def __init__(self, registry: Registry, path: str, first_line: int) -> None:
        self.registry = registry
        self.path = path
        self.first_line = first_line
        self.diagnostics: list[Diagnostic] = []
        self.participants: dict[str, Participant] = {}
        self.rows: list[Row] = []
        self.table: list[tuple[tuple[Span, ...], ...]] = []
        self.members = member_names(registry)

    def report(self, code: str, index: int, message: str) -> None:
        self.diagnostics.append(diagnostic(code, Location(self.path, self.first_line + index), message))

    def line(self, index: int, raw: str) -> None:
        text = raw.strip()
        if not text or text.startswith("#"):
            return
        if text.startswith("participant ") or text == "participant":
            self.participant(index, text)
        elif text.startswith("note ") and ":" in text and "->" not in text.split(":", 1)[0]:
            self.note(index, text)
        elif (match := _MESSAGE.match(text)) is not None:
            self.message(index, *match.groups())
        else:
            self.report("R608", index, f"not a participant, message or note: {text!r}")

    def participant(self, index: int, text: str) -> None:
        match = _PARTICIPANT.match(text)
        if match is None:
            self.report("R608", index, "a participant line reads 'participant ID ROLE [label]'")
            return
        pid, role, label = match.groups()
        if pid in self.participants:
            self.report("R609", index, f"participant {pid!r} is declared twice")
            return
        if role not in (*ROLES, BUS_ROLE):
            roles = (*ROLES, BUS_ROLE)
            self.report(
                "R609",
                index,
                f"participant {pid!r} has the unknown role {role!r}{_did_you_mean(role, roles)} (roles: {', '.join(roles)})",
            )
            return
        self.participants[pid] = Participant(pid, role, label or pid)

    def known(self, index: int, *ids: str) -> bool:
        missing = [pid for pid in ids if pid not in self.participants]
        for pid in missing:
            self.report(
                "R607",
                index,
                f"no participant {pid!r}{_did_you_mean(pid, self.participants)} "
                f"(or declare it with 'participant {pid} ROLE label')",
            )
        return not missing

    def note(self, index: int, text: str) -> None:
        match = _NOTE.match(text)
        if match is None:
            self.report("R608", index, "a note reads 'note FROM[, TO]: text'")
            return
        ids = [part for part in re.split(r"[\s,]+", match.group(1)) if part]
        if not ids or len(ids) > 2:
            self.report("R608", index, "a note spans one participant or two: 'note FROM[, TO]: text'")
            return
        if self.known(index, *ids):
            self.rows.append(Note(ids[0], ids[-1], match.group(2)))
            self.table.append(((Span(str(len(self.table) + 1)),), (Span(", ".join(ids)),), (), (Span(match.group(2)),)))

    def message(self, index: int, source: str, target: str, name: str, remark: str | None) -> None:
        if not self.known(index, source, target):
            return
        if source == target:
            self.report("R608", index, f"a message goes from one participant to another, not from {source!r} to itself")
            return
        sender, receiver = self.participants[source], self.participants[target]
        named = self.members.lookup(name)
        if named.found is None:
            if named.ambiguous:
                self.report("R605", index, named.problem() or "")
            else:
                hint = f"; did you mean {' or '.join(named.suggestions)}?" if named.suggestions else ""
                self.report("R605", index, f"{name} is not a method, signal or property of a registry interface{hint}")
            return
        name = named.found
        found = _registry_member(self.registry, name)
        if found is None:
            self.standard(index, sender, receiver, name, remark)
            return
        interface, member = found
        metadata = self.registry.metadata(interface)
        if isinstance(member, Signal):
            allowed = sender.role in metadata.implementers and receiver.role in metadata.callers
            verb = "emits"
        else:
            allowed = sender.role in metadata.callers and receiver.role in metadata.implementers
            verb = "reads" if isinstance(member, Property) else "calls"
        if allowed and len(metadata.implementers) > 1 and sender.role == receiver.role:
            allowed = False  # each side calls the other side's implementation (see trust.interface_links)
        if not allowed:
            self.report(
                "R606",
                index,
                f"{sender.label} ({sender.role}) cannot send {name} to {receiver.label} ({receiver.role}): "
                f"the registry gives implementers {', '.join(metadata.implementers)} and callers {', '.join(metadata.callers)}",
            )
            return
        kind = "signal" if isinstance(member, Signal) else "property" if isinstance(member, Property) else "method"
        prefix = {"signal": "signal ", "property": "get ", "method": ""}[kind]
        suffix = "()" if isinstance(member, Method) else ""
        label = [Span(prefix), Span(_short(interface, member.name) + suffix, name, kind)]
        if remark:
            label.append(Span(f" {remark}"))
        title = f"{sender.label} {verb} {name}" + (f" {remark}" if remark else "")
        self.add(
            Arrow(
                source,
                target,
                tuple(span for span in label if span.text),
                peer_to_peer=metadata.peer_to_peer,
                management=metadata.kind == "management",
                title=title,
            ),
            sender,
            receiver,
            (Span(name, name, kind), *((Span(f" {remark}"),) if remark else ())),
        )

    def standard(self, index: int, sender: Participant, receiver: Participant, name: str, remark: str | None) -> None:
        kind, to_daemon = STANDARD[name]
        if not to_daemon:
            ok = BUS_ROLE not in (sender.role, receiver.role)
        elif kind == "method":
            ok = receiver.role == BUS_ROLE and sender.role != BUS_ROLE
        else:
            ok = sender.role == BUS_ROLE and receiver.role != BUS_ROLE
        if not ok:
            where = (
                "to the bus daemon (a participant of role bus)" if to_daemon else "between peers, not to the bus daemon"
            )
            self.report("R606", index, f"{name} goes {where}")
            return
        text = name.removeprefix(DRIVER + ".")
        label = [Span(f"{'signal ' if kind == 'signal' else ''}{text}{'()' if kind == 'method' else ''}")]
        if remark:
            label.append(Span(f" {remark}"))
        verb = "emits" if kind == "signal" else "calls"
        title = f"{sender.label} {verb} {name}" + (f" {remark}" if remark else "")
        self.add(
            Arrow(sender.id, receiver.id, tuple(label), title=title),
            sender,
            receiver,
            (Span(name + (f" {remark}" if remark else "")),),
        )

    def add(self, arrow: Arrow, sender: Participant, receiver: Participant, message: tuple[Span, ...]) -> None:
        self.rows.append(arrow)
        number = str(len(self.table) + 1)
        self.table.append(((Span(number),), (Span(sender.label),), (Span(receiver.label),), message))


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    close = closest(name, known)
    return f"; did you mean {' or '.join(repr(one) for one in close)}?" if close else ""


def parse_sequence(
    lines: Sequence[str], registry: Registry, title: str, path: str = "<sequence>", first_line: int = 1
) -> tuple[Diagram, list[Diagnostic]]:
    """The sequence ``lines`` describe, and the problems found (located at ``path``, the first
    line being ``first_line``).  Linear in the number of lines."""
    reader = _Reader(registry, path, first_line)
    for index, raw in enumerate(lines):
        reader.line(index, raw)
    arrows = [row for row in reader.rows if isinstance(row, Arrow)]
    legend = [LegendEntry("bus", _LEGEND["bus"])]
    if any(arrow.peer_to_peer for arrow in arrows):
        legend.append(LegendEntry("p2p", _LEGEND["p2p"]))
    if any(arrow.management for arrow in arrows):
        legend.append(LegendEntry("management", _LEGEND["management"]))
    participants = list(reader.participants.values())
    who = ", ".join(f"{p.label} ({p.role})" for p in participants)
    summary = f"The order of messages between {who}, from top to bottom." if participants else "An empty sequence."
    diagram = Diagram(
        title=title,
        summary=summary,
        lanes=tuple(Lane(p.id, p.label, daemon=p.role == BUS_ROLE) for p in participants),
        frames=(),
        rows=tuple(reader.rows),
        legend=tuple(legend),
        table=Table(("#", "From", "To", "Message"), tuple(reader.table)),
    )
    return diagram, reader.diagnostics

"""What the probe calls, on which object, in which order: read from the registry and the peer.

A *target* is a method (or a writable property) of a registry interface that QEMU implements and
another role calls on the bus (``org.qemu.Registry.Implementers`` holds ``qemu``,
``Callers`` another role, ``Connection`` is ``bus``), in the registry's view of the release the
peer runs, on the first object the peer exports it at.  The order is the one a real client
needs, as the registry describes it:

1. the methods that hand QEMU a connection (an ``h`` argument: listener and chardev
   registrations), so that what QEMU then waits for from its peers is reached early;
2. a session's registration: the argument-less ``Register`` of an interface that also has
   ``Unregister`` (the clipboard: "QEMU answers every call other than Register from any other
   sender with the error ... Unregistered caller");
3. every other method, in the registry's order, each made by a registered peer where its
   interface has such a registration (`Target.needs_registration`);
4. writable properties, then the ``Unregister`` methods, last.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence

from ...diagnostics.frozen import record
from ...model.introspection import Direction, Interface, Method, Property, interface_for_platform
from ...model.metadata import interface_metadata, validation_note
from ...model.registry import Registry
from ..conform import LiveObject

REGISTER, UNREGISTER = "Register", "Unregister"


@record(frozen=True)
class Target:
    """One member to probe on one object."""

    path: str
    interface: Interface
    member: Method | Property

    @property
    def name(self) -> str:
        return f"{self.interface.name}.{self.member.name}"

    @property
    def signature(self) -> tuple[str, ...]:
        if isinstance(self.member, Property):
            return (self.member.type,)
        return tuple(arg.type for arg in self.member.args if arg.direction is Direction.IN)

    @property
    def arg_names(self) -> tuple[str, ...]:
        if isinstance(self.member, Property):
            return ("value",)
        ins = [arg for arg in self.member.args if arg.direction is Direction.IN]
        return tuple(arg.name or f"arg{index}" for index, arg in enumerate(ins))

    @property
    def out_signature(self) -> str:
        if isinstance(self.member, Property):
            return ""
        return "".join(arg.type for arg in self.member.args if arg.direction is Direction.OUT)

    def texts(self, index: int) -> list[str]:
        """The registry's words about in-arg ``index``: its validation note and ``@arg`` text."""
        if isinstance(self.member, Property):
            note = validation_note(self.member)
            body = self.member.doc.raw_body if self.member.doc else ""
            return [t for t in (note, body) if t]
        arg = [a for a in self.member.args if a.direction is Direction.IN][index]
        texts = [validation_note(arg) or ""]
        doc = self.member.doc
        param = doc.param(arg.name) if doc is not None and arg.name else None
        if param is not None:
            texts.append(param.text)
        return [t for t in texts if t]

    @property
    def needs_registration(self) -> bool:
        """Whether only a registered peer may make this call: its interface has a session
        registration, and this is neither that ``Register`` nor ``Unregister``."""
        return session_registration(self.interface) is not None and self.member.name not in (REGISTER, UNREGISTER)

    @property
    def hands_over_connection(self) -> bool:
        return isinstance(self.member, Method) and "h" in self.signature

    def documented_errors(self) -> frozenset[str]:
        """The error names the registry gives for this member's interface: in the docs of the
        interface and its members, and in their validation notes (a member's doc may say "the
        same errors as" another's)."""
        import re

        texts = [d.raw_body for d in (self.interface.doc, *(m.doc for m in self.interface.members)) if d is not None]
        for member in self.interface.members:
            items = [member] if isinstance(member, Property) else list(member.args)
            texts += [note for item in items if (note := validation_note(item))]
        return frozenset(
            re.findall(r"\b((?:[A-Za-z_][A-Za-z0-9_]*\.)+Error\.[A-Za-z_][A-Za-z0-9_]*)\b", " ".join(texts))
        )


def session_registration(interface: Interface) -> Method | None:
    """The argument-less ``Register`` of an interface that also has ``Unregister``."""
    methods = {m.name: m for m in interface.members if isinstance(m, Method)}
    register = methods.get(REGISTER)
    if register is None or UNREGISTER not in methods or register.args:
        return None
    return register


def called_by_peers(registry: Registry, name: str) -> bool:
    """Whether peers other than QEMU call QEMU's implementation of interface ``name`` on a bus."""
    metadata = interface_metadata(registry.interface(name))
    others = [role for role in metadata.callers if role != "qemu"]
    return "qemu" in metadata.implementers and bool(others) and metadata.connection == "bus"


def plan_targets(
    registry: Registry, objects: Sequence[LiveObject], platform: str, patterns: Sequence[str] = ()
) -> list[Target]:
    """The targets the peer exports, as they are on ``platform``, in the order to probe them;
    ``patterns`` (shell patterns on ``interface.Member``) keep a subset."""
    found: list[Target] = []
    done: set[str] = set()
    for live in sorted(objects, key=lambda o: o.path):
        if live.node is None:
            continue
        for exported in live.node.interfaces:
            name = exported.name
            if name in done or name not in registry or not called_by_peers(registry, name):
                continue
            done.add(name)
            interface = interface_for_platform(registry.interface(name), platform)
            found += [Target(live.path, interface, m) for m in _members(interface)]
    if patterns:
        found = [t for t in found if any(fnmatch.fnmatchcase(t.name, p) for p in patterns)]
    return sorted(found, key=_order)


def _members(interface: Interface) -> Iterable[Method | Property]:
    for member in interface.members:
        if isinstance(member, Method) or (isinstance(member, Property) and member.access.writable):
            yield member


def _order(target: Target) -> int:
    if target.hands_over_connection:
        return 0
    if target.member.name == REGISTER and session_registration(target.interface) is not None:
        return 1
    if isinstance(target.member, Property):
        return 3
    if target.member.name == UNREGISTER and session_registration(target.interface) is not None:
        return 4
    return 2

"""The immutable model of D-Bus introspection data.

Every object carries its source `Location`.  Platform variants (``<?if …?>`` processing instructions)
are kept, never merged: each member, arg, property or interface records the `Condition` branch it sits
in, and `for_platform` projects a tree onto one platform.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Protocol, TypeVar, Union

from ..diagnostics.diagnostic import Location
from ..diagnostics.frozen import frozen

DEPRECATED = "org.freedesktop.DBus.Deprecated"
NO_REPLY = "org.freedesktop.DBus.Method.NoReply"
EMITS_CHANGED_SIGNAL = "org.freedesktop.DBus.Property.EmitsChangedSignal"
GDBUS_SINCE = "org.gtk.GDBus.Since"
GDBUS_DOCSTRING = "org.gtk.GDBus.DocString"
GDBUS_DOCSTRING_SHORT = "org.gtk.GDBus.DocString.Short"


class Direction(enum.Enum):
    IN = "in"
    OUT = "out"


class Access(enum.Enum):
    READ = "read"
    WRITE = "write"
    READWRITE = "readwrite"

    @property
    def readable(self) -> bool:
        return self is not Access.WRITE

    @property
    def writable(self) -> bool:
        return self is not Access.READ


class EmitsChanged(enum.Enum):
    """``org.freedesktop.DBus.Property.EmitsChangedSignal``, strongest first."""

    TRUE = "true"
    INVALIDATES = "invalidates"
    CONST = "const"
    FALSE = "false"

    @property
    def explanation(self) -> str:
        return _EMITS_EXPLANATION[self]


_EMITS_EXPLANATION = {
    EmitsChanged.TRUE: "PropertiesChanged is emitted with the new value when it changes",
    EmitsChanged.INVALIDATES: "PropertiesChanged is emitted without the value when it changes; re-read it",
    EmitsChanged.CONST: "the value never changes for the lifetime of the object",
    EmitsChanged.FALSE: "no signal is emitted when it changes; poll it",
}


# --- platform variants ----------------------------------------------------------------------

#: The platforms QEMU builds its D-Bus XML for, with the variables its xml-preprocess sees.
PLATFORMS: Mapping[str, Mapping[str, str]] = {
    "unix": {"HOST_OS": "linux"},
    "windows": {"HOST_OS": "windows"},
}
PLATFORM_LABELS: Mapping[str, str] = {"unix": "Unix", "windows": "Windows"}
KNOWN_VARIABLES = frozenset(name for variables in PLATFORMS.values() for name in variables)
ALL_PLATFORMS = frozenset(PLATFORMS)

_COMPARISON = re.compile(r"""\s*\$\((env|var|sys)\.(\w+)\)\s*(==|!=)\s*"?([^"\s]*)"?\s*\Z""")


@frozen
class Condition:
    """One test of a ``<?if?>``/``<?elseif?>``/``<?ifdef?>`` block, possibly negated (inside a later
    branch).  ``kind`` is ``if`` (a comparison) or ``ifdef``/``ifndef`` (a variable name)."""

    kind: str
    expression: str
    negated: bool
    location: Location

    def holds(self, variables: Mapping[str, str]) -> bool | None:
        """Whether the test passes for ``variables``; None when the expression is not understood."""
        if self.kind in ("ifdef", "ifndef"):
            # Only a variable the platform builds set can be tested; any other one depends on a
            # build configuration we do not know.
            variable = self.expression.strip()
            if variable not in KNOWN_VARIABLES:
                return None
            result = (variable in variables) == (self.kind == "ifdef")
        else:
            match = _COMPARISON.match(self.expression)
            if match is None:
                return None
            _, variable, operator, value = match.groups()
            if variable not in variables:
                return None
            result = (variables[variable] == value) == (operator == "==")
        return result != self.negated

    @property
    def understood(self) -> bool:
        if self.kind in ("ifdef", "ifndef"):
            return self.expression.strip() in KNOWN_VARIABLES
        match = _COMPARISON.match(self.expression)
        return match is not None and match.group(2) in KNOWN_VARIABLES

    def __str__(self) -> str:
        text = self.expression if self.kind == "if" else f"{self.kind} {self.expression}"
        return f"not ({text})" if self.negated else text


Conditions = tuple[Condition, ...]


def platforms_of(conditions: Conditions) -> frozenset[str]:
    """The platforms on which an item guarded by ``conditions`` exists.  An expression that is not
    understood does not narrow the set (the item is kept, and its condition shown)."""
    if not conditions:
        return ALL_PLATFORMS
    return _platforms_of(conditions)


@functools.lru_cache(maxsize=1024)
def _platforms_of(conditions: Conditions) -> frozenset[str]:
    return frozenset(
        platform
        for platform, variables in PLATFORMS.items()
        if all(condition.holds(variables) is not False for condition in conditions)
    )


def platform_label(platforms: frozenset[str]) -> str:
    """``Unix``, ``Windows`` or ``Unix, Windows``; empty for all platforms."""
    if platforms == ALL_PLATFORMS:
        return ""
    return ", ".join(PLATFORM_LABELS[p] for p in sorted(platforms)) or "no platform"


# --- documentation --------------------------------------------------------------------------


@frozen
class DocParam:
    """An ``@name: text`` line of a doc comment.  ``text`` joins its continuation lines with
    single spaces; ``pieces`` holds, for each of its lines, the offset in ``text`` where that
    line's text starts and the line and column of that start in the file, so that a place in
    the text (a reference) has its exact position."""

    name: str
    text: str
    location: Location
    pieces: tuple[tuple[int, int, int], ...] = ()


@frozen
class DocComment:
    """A gtk-doc style comment: symbol line, ``@arg:`` lines, reST body, ``Since:``/``Deprecated:``.

    ``body_line`` is the file line of the first body line, so renderers can point warnings at the
    XML.  The body is kept as the comment's own lines (``Since:``/``Deprecated:`` paragraphs
    blanked, so line numbers stay true) and dedented only when `body` is asked for: the checker
    never needs it dedented, nor split into lines.  ``symbol`` is empty for a docstring from
    ``org.gtk.GDBus.DocString``.
    """

    symbol: str
    short: str
    symbol_line: int
    params: tuple[DocParam, ...]
    raw_body: str
    body_line: int
    since: str | None
    deprecated: str | None
    location: Location
    short_column: int = 0  # where ``short`` starts on its line; 0: not known

    kind = "doc comment"

    def param(self, name: str) -> DocParam | None:
        for param in self.params:
            if param.name == name:
                return param
        return None

    @property
    def body(self) -> str:
        """The reStructuredText body, dedented, without trailing blank lines."""
        lines = self.raw_body.split("\n")
        indents = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
        cut = min(indents, default=0)
        body = [line[cut:].rstrip() if line.strip() else "" for line in lines]
        while body and not body[-1]:
            body.pop()
        return "\n".join(body)

    @property
    def is_empty(self) -> bool:
        return not self.short.strip() and not self.raw_body.strip()


# --- the introspection tree -----------------------------------------------------------------


@frozen
class Annotation:
    name: str
    value: str
    location: Location
    conditions: Conditions = ()

    kind = "annotation"


@frozen
class Arg:
    name: str | None
    type: str
    direction: Direction
    annotations: tuple[Annotation, ...]
    location: Location
    conditions: Conditions = ()

    kind = "arg"

    def annotation(self, name: str) -> str | None:
        return _annotation(self.annotations, name)


@frozen
class Method:
    name: str
    args: tuple[Arg, ...]
    annotations: tuple[Annotation, ...]
    doc: DocComment | None
    location: Location
    conditions: Conditions = ()

    kind = "method"

    def annotation(self, name: str) -> str | None:
        return _annotation(self.annotations, name)

    @property
    def in_args(self) -> tuple[Arg, ...]:
        return tuple(a for a in self.args if a.direction is Direction.IN)

    @property
    def out_args(self) -> tuple[Arg, ...]:
        return tuple(a for a in self.args if a.direction is Direction.OUT)

    @property
    def no_reply(self) -> bool:
        return self.annotation(NO_REPLY) == "true"

    @property
    def deprecated(self) -> bool:
        return _deprecated(self.annotations, self.doc)

    @property
    def since(self) -> str | None:
        return _since(self.annotations, self.doc)


@frozen
class Signal:
    name: str
    args: tuple[Arg, ...]
    annotations: tuple[Annotation, ...]
    doc: DocComment | None
    location: Location
    conditions: Conditions = ()

    kind = "signal"

    def annotation(self, name: str) -> str | None:
        return _annotation(self.annotations, name)

    @property
    def deprecated(self) -> bool:
        return _deprecated(self.annotations, self.doc)

    @property
    def since(self) -> str | None:
        return _since(self.annotations, self.doc)


@frozen
class Property:
    name: str
    type: str
    access: Access
    emits_changed: EmitsChanged
    annotations: tuple[Annotation, ...]
    doc: DocComment | None
    location: Location
    conditions: Conditions = ()

    kind = "property"

    def annotation(self, name: str) -> str | None:
        return _annotation(self.annotations, name)

    @property
    def deprecated(self) -> bool:
        return _deprecated(self.annotations, self.doc)

    @property
    def since(self) -> str | None:
        return _since(self.annotations, self.doc)


Member = Union[Method, Signal, Property]


@frozen
class Interface:
    name: str
    members: tuple[Member, ...]
    annotations: tuple[Annotation, ...]
    doc: DocComment | None
    location: Location
    conditions: Conditions = ()

    kind = "interface"

    def annotation(self, name: str) -> str | None:
        return _annotation(self.annotations, name)

    @property
    def methods(self) -> tuple[Method, ...]:
        return tuple(m for m in self.members if isinstance(m, Method))

    @property
    def signals(self) -> tuple[Signal, ...]:
        return tuple(m for m in self.members if isinstance(m, Signal))

    @property
    def properties(self) -> tuple[Property, ...]:
        return tuple(m for m in self.members if isinstance(m, Property))

    @property
    def deprecated(self) -> bool:
        return _deprecated(self.annotations, self.doc)

    @property
    def since(self) -> str | None:
        return self.annotation("org.qemu.Registry.Since") or _since(self.annotations, self.doc)


@frozen
class Node:
    name: str | None
    interfaces: tuple[Interface, ...]
    nodes: tuple[Node, ...]
    location: Location
    conditions: Conditions = ()

    kind = "node"

    def walk_interfaces(self, inherited: Conditions = ()) -> Iterator[Interface]:
        """Every interface of this node and its children.  An interface inside a child node that
        sits in an ``<?if?>`` branch inherits that branch's conditions."""
        for interface in self.interfaces:
            yield replace(interface, conditions=inherited + interface.conditions) if inherited else interface
        for child in self.nodes:
            yield from child.walk_interfaces(inherited + child.conditions)


def _annotation(annotations: tuple[Annotation, ...], name: str) -> str | None:
    for annotation in annotations:
        if annotation.name == name:
            return annotation.value
    return None


def _deprecated(annotations: tuple[Annotation, ...], doc: DocComment | None) -> bool:
    return _annotation(annotations, DEPRECATED) == "true" or bool(doc and doc.deprecated is not None)


def _since(annotations: tuple[Annotation, ...], doc: DocComment | None) -> str | None:
    return (doc.since if doc else None) or _annotation(annotations, GDBUS_SINCE)


# --- platform projection --------------------------------------------------------------------


class _Conditional(Protocol):
    @property
    def conditions(self) -> Conditions: ...


_T = TypeVar("_T", bound=_Conditional)


def on_platform(items: Iterable[_T], platform: str) -> tuple[_T, ...]:
    return tuple(item for item in items if platform in platforms_of(item.conditions))


def effective_emits(annotations: Iterable[Annotation], default: EmitsChanged) -> EmitsChanged:
    """EmitsChangedSignal from ``annotations``, else ``default`` (an invalid value reads as the
    default; the checker reports it)."""
    value = _annotation(tuple(annotations), EMITS_CHANGED_SIGNAL)
    return _EMITS_BY_VALUE.get(value or "", default)


_EMITS_BY_VALUE = {e.value: e for e in EmitsChanged}


def member_for_platform(member: Member, platform: str, default_emits: EmitsChanged = EmitsChanged.TRUE) -> Member:
    annotations = on_platform(member.annotations, platform)
    if isinstance(member, Property):
        return replace(member, annotations=annotations, emits_changed=effective_emits(annotations, default_emits))
    return replace(member, args=on_platform(member.args, platform), annotations=annotations)


def interface_for_platform(interface: Interface, platform: str) -> Interface:
    """The interface as QEMU's xml-preprocess would emit it when building for ``platform``."""
    annotations = on_platform(interface.annotations, platform)
    default = effective_emits(annotations, EmitsChanged.TRUE)
    return replace(
        interface,
        members=tuple(member_for_platform(m, platform, default) for m in on_platform(interface.members, platform)),
        annotations=annotations,
    )


def direction_signature(member: Method | Signal, direction: Direction) -> str:
    """The concatenated types of the member's args in ``direction``: what a message body carries."""
    return "".join(arg.type for arg in member.args if arg.direction is direction)


def signature_variants(member: Method | Signal) -> list[tuple[frozenset[str], tuple[Arg, ...]]]:
    """The member's distinct arg lists, each with the set of platforms it exists on.  A member
    without variant args yields one entry covering every platform the member exists on."""
    member_platforms = platforms_of(member.conditions)
    if not any(arg.conditions for arg in member.args):
        return [(member_platforms, member.args)]
    variants: dict[tuple[Arg, ...], set[str]] = {}
    for platform in sorted(member_platforms):
        args = on_platform(member.args, platform)
        variants.setdefault(args, set()).add(platform)
    return [(frozenset(platforms), args) for args, platforms in variants.items()]

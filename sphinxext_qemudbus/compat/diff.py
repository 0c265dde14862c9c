"""``qemu-dbus diff``: the API-compatibility gate between two versions of a set of interfaces.

The core, `diff_interfaces`, is a pure function over the model: no I/O, no Sphinx.  The
``qemu-dbus diff`` subcommand at the end of this module reads files (or a git revision through
`gitbaseline`) and renders the result with `output.render`.

What is compared, and why that way:

* Interfaces are matched by name and members by (kind, name), so reordering members is not a
  change.  Args are compared in order within each direction, because the order *is* the wire
  signature; they are aligned like a text diff so that inserting one arg reports one added arg, not
  a cascade of retyped ones.
* Platform variants (``<?if $(env.HOST_OS) == windows?>``) are compared per platform, on the tree
  QEMU's preprocessor would emit there.  A change that is the same on every platform is reported
  once; one that is not names its platforms.
* Compatibility is about the wire and the promises the interface makes: whitespace, attribute
  order, annotations other than the standard ones, and line numbers never count.  Documentation
  changes are notes.
* Stability is the promise the *old* version made: its clients are the ones that could break.
  ``org.qemu.Registry.Stability`` is therefore read from OLD, and from NEW only when OLD says
  nothing; an interface without any stability metadata (generic XML) is stable.  Marking a stable
  interface unstable does not switch the gate off for it: that is an error of its own (C013).
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from functools import partial

from ..diagnostics.diagnostic import Diagnostic, Location, Severity
from ..diagnostics.frozen import record
from ..diagnostics.rules import RULES, diagnostic
from ..model.introspection import (
    PLATFORM_LABELS,
    PLATFORMS,
    Arg,
    Direction,
    DocComment,
    EmitsChanged,
    Interface,
    Member,
    Method,
    Property,
    Signal,
    interface_for_platform,
    platforms_of,
)
from ..model.metadata import NAMESPACE, interface_metadata

__all__ = ["diff_interfaces", "successor_name"]

_EMITS_STRENGTH = {EmitsChanged.FALSE: 0, EmitsChanged.CONST: 1, EmitsChanged.INVALIDATES: 2, EmitsChanged.TRUE: 3}
_VERSIONED_ELEMENT = re.compile(r"(.*[^0-9])([0-9]+)\Z")


def successor_name(name: str) -> str:
    """The next major version of an interface name: its last versioned element counts up
    (``org.qemu.Display1.Console`` → ``org.qemu.Display2.Console``,
    ``…Unix.ScanoutDMABUF2`` → ``…Unix.ScanoutDMABUF3``); an unversioned name gets a ``2``."""
    elements = name.split(".")
    for index in range(len(elements) - 1, 0, -1):
        match = _VERSIONED_ELEMENT.match(elements[index])
        if match:
            elements[index] = f"{match.group(1)}{int(match.group(2)) + 1}"
            return ".".join(elements)
    return f"{name}2"


# --- changes, before stability and platforms are applied -----------------------------------------


@record(frozen=True)
class _Change:
    """One difference found on one platform.  Hashable so that the same change seen on several
    platforms collapses into one report."""

    code: str
    location: Location
    text: str
    detail: str = ""
    fix: str = ""


def _first_by_name(interfaces: Sequence[Interface]) -> dict[str, Interface]:
    """Interfaces by name; the first definition wins, as in `registry.Registry` (the checker
    reports duplicates, U701)."""
    result: dict[str, Interface] = {}
    for interface in interfaces:
        result.setdefault(interface.name, interface)
    return result


def _project(interface: Interface | None, platform: str) -> Interface | None:
    if interface is None or platform not in platforms_of(interface.conditions):
        return None
    return interface_for_platform(interface, platform)


def _normalised(text: str) -> str:
    return " ".join(text.split())


def _doc_parts(doc: DocComment | None) -> dict[str, str]:
    """The documentation that C204 compares, whitespace-normalised so that re-indenting or
    re-flowing a comment is not a change."""
    if doc is None:
        return {}
    parts = {"summary": _normalised(doc.short), "description": _normalised(doc.body)}
    for param in doc.params:
        parts.setdefault(f"@{param.name}", _normalised(param.text))
    return {key: value for key, value in parts.items() if value}


def _doc_change(old: DocComment | None, new: DocComment | None) -> str:
    """Which parts of the documentation changed (``description, @width``), or ``""``."""
    before, after = _doc_parts(old), _doc_parts(new)
    keys = [key for key in [*after, *(k for k in before if k not in after)] if before.get(key) != after.get(key)]
    return ", ".join(keys)


def _signature(args: Sequence[Arg]) -> str:
    return "".join(arg.type for arg in args)


def _arg_label(arg: Arg, position: int, direction: Direction | None) -> str:
    prefix = f"{direction.value} arg" if direction else "arg"
    name = f" {arg.name!r}" if arg.name else ""
    return f"{prefix} {position}{name} ({arg.type})"


class _InterfaceDiff:
    """The changes between two projections of one interface onto one platform."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.successor = successor_name(name)

    def compare(self, old: Interface | None, new: Interface | None) -> Iterator[_Change]:
        if old is None and new is None:
            return
        if old is None:
            assert new is not None
            yield _Change("C101", new.location, f"interface {self.name} was added")
            return
        if new is None:
            yield _Change(
                "C001",
                old.location,
                f"interface {self.name} was removed",
                fix=f"keep it (deprecate it) and put its replacement in {self.successor}",
            )
            return
        yield from self.deprecation("interface", self.name, old.deprecated, new.deprecated, new.location)
        if parts := _doc_change(old.doc, new.doc):
            yield _Change("C204", new.location, f"documentation of interface {self.name} changed", parts)
        yield from self.members(old, new)

    # --- members ------------------------------------------------------------------------------

    def members(self, old: Interface, new: Interface) -> Iterator[_Change]:
        old_members = _members_by_key(old)
        new_members = _members_by_key(new)
        old_names = {name: kind for kind, name in old_members}
        new_names = {name: kind for kind, name in new_members}
        for (kind, name), member in new_members.items():
            full = f"{self.name}.{name}"
            previous = old_members.get((kind, name))
            if previous is not None:
                yield from self.member(full, previous, member)
            elif name in old_names and (old_names[name], name) not in new_members:
                was = old_names[name]
                yield _Change(
                    "C011",
                    member.location,
                    f"{full} changed from a {was} to a {kind}",
                    fix=f"keep the {was} and put the {kind} in {self.successor} (or give the {kind} a new name)",
                )
            else:
                yield _Change("C102", member.location, f"{kind} {full} was added")
        for (kind, name), member in old_members.items():
            if (kind, name) in new_members or (name in new_names and (new_names[name], name) not in old_members):
                continue
            yield _Change(
                "C002",
                member.location,
                f"{kind} {self.name}.{name} was removed",
                fix=f"keep it (deprecate it) and put the new API in {self.successor}",
            )

    def member(self, full: str, old: Member, new: Member) -> Iterator[_Change]:
        yield from self.deprecation(new.kind, full, old.deprecated, new.deprecated, new.location)
        if parts := _doc_change(old.doc, new.doc):
            yield _Change("C204", new.location, f"documentation of {new.kind} {full} changed", parts)
        if isinstance(old, Property) and isinstance(new, Property):
            yield from self.property(full, old, new)
        elif isinstance(old, Method) and isinstance(new, Method):
            if old.no_reply != new.no_reply:
                what = "is now annotated" if new.no_reply else "is no longer annotated"
                effect = (
                    "implementers no longer reply, so callers that wait for the reply time out"
                    if new.no_reply
                    else "implementers built for the old version never reply, so callers that now wait time out"
                )
                yield _Change(
                    "C009",
                    new.location,
                    f"method {full} {what} org.freedesktop.DBus.Method.NoReply",
                    effect,
                    fix=f"restore the annotation and put the changed method in {self.successor} (or give it a new name)",
                )
            yield from self.args(full, old, new)
        elif isinstance(old, Signal) and isinstance(new, Signal):
            yield from self.args(full, old, new)

    def deprecation(self, kind: str, full: str, old: bool, new: bool, location: Location) -> Iterator[_Change]:
        if new and not old:
            yield _Change("C202", location, f"{kind} {full} was deprecated")
        elif old and not new:
            yield _Change("C203", location, f"{kind} {full} is no longer deprecated")

    def property(self, full: str, old: Property, new: Property) -> Iterator[_Change]:
        if old.type != new.type:
            yield _Change(
                "C007",
                new.location,
                f"property {full} changed type from {old.type!r} to {new.type!r}",
                fix=f"restore type {old.type!r} and put the new property in {self.successor} (or give it a new name)",
            )
        lost = (old.access.readable and not new.access.readable) or (old.access.writable and not new.access.writable)
        gained = (new.access.readable and not old.access.readable) or (new.access.writable and not old.access.writable)
        if lost:
            yield _Change(
                "C008",
                new.location,
                f"property {full} access narrowed from {old.access.value} to {new.access.value}",
                fix=f"restore access={old.access.value!r} and put the change in {self.successor}",
            )
        elif gained:
            yield _Change(
                "C103", new.location, f"property {full} access widened from {old.access.value} to {new.access.value}"
            )
        before, after = _EMITS_STRENGTH[old.emits_changed], _EMITS_STRENGTH[new.emits_changed]
        change = f"from {old.emits_changed.value} to {new.emits_changed.value}"
        if after < before:
            yield _Change(
                "C010",
                new.location,
                f"property {full} EmitsChangedSignal weakened {change}",
                new.emits_changed.explanation,
                fix=f"keep EmitsChangedSignal={old.emits_changed.value} and put the change in {self.successor}",
            )
        elif after > before:
            yield _Change("C104", new.location, f"property {full} EmitsChangedSignal strengthened {change}")

    # --- args -----------------------------------------------------------------------------------

    def args(self, full: str, old: Method | Signal, new: Method | Signal) -> Iterator[_Change]:
        kind = new.kind
        fix = f"restore the old signature and put the new one in {self.successor} (or add a {kind} with a new name)"
        if isinstance(old, Method) and isinstance(new, Method):
            lists: list[tuple[Direction | None, tuple[Arg, ...], tuple[Arg, ...]]] = [
                (Direction.IN, old.in_args, new.in_args),
                (Direction.OUT, old.out_args, new.out_args),
            ]
        else:
            lists = [(None, old.args, new.args)]
        redirected = _redirected(old.args, new.args) if isinstance(new, Method) else {}
        signatures = {d: (_signature(o), _signature(n)) for d, o, n in lists}

        def detail(*directions: Direction | None) -> str:
            parts = []
            for direction in directions:
                before, after = signatures[direction]
                label = f"{direction.value} signature" if direction else "signature"
                if before == after:
                    parts.append(f"{label} {before!r} is unchanged, but values are matched by position")
                else:
                    parts.append(f"{label} {before!r} became {after!r}")
            return "; ".join(parts)

        for name, (old_arg, new_arg) in redirected.items():
            yield _Change(
                "C006",
                new_arg.location,
                f"arg {name!r} of method {full} moved from {old_arg.direction.value} to {new_arg.direction.value}",
                detail(Direction.IN, Direction.OUT),
                fix,
            )
        for direction, old_args, new_args in lists:
            before = [(i, a) for i, a in enumerate(old_args) if a.name not in redirected]
            after = [(i, a) for i, a in enumerate(new_args) if a.name not in redirected]
            yield from self.aligned(
                full, kind, direction=direction, before=before, after=after, detail=partial(detail, direction), fix=fix
            )

    def aligned(
        self,
        full: str,
        kind: str,
        *,
        direction: Direction | None,
        before: list[tuple[int, Arg]],
        after: list[tuple[int, Arg]],
        detail: Callable[[], str],
        fix: str,
    ) -> Iterator[_Change]:
        """Align two arg lists like a text diff, then report what is not aligned."""
        matcher = difflib.SequenceMatcher(
            None, [(a.name, a.type) for _, a in before], [(a.name, a.type) for _, a in after], autojunk=False
        )
        removed: list[tuple[int, Arg]] = []
        added: list[tuple[int, Arg]] = []
        paired: list[tuple[int, Arg, Arg]] = []
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                continue
            common = min(i2 - i1, j2 - j1) if tag == "replace" else 0
            paired += [(*before[i1 + k], after[j1 + k][1]) for k in range(common)]
            removed += before[i1 + common : i2]
            added += after[j1 + common : j2]
        # An arg that disappears at one position and reappears, same name and type, at another moved.
        for old_position, old_arg in list(removed):
            match = next(
                ((p, a) for p, a in added if old_arg.name and a.name == old_arg.name and a.type == old_arg.type), None
            )
            if match is not None:
                removed.remove((old_position, old_arg))
                added.remove(match)
                yield _Change(
                    "C012",
                    match[1].location,
                    f"{_arg_label(old_arg, old_position, direction)} of {kind} {full} moved to position {match[0]}",
                    detail(),
                    fix,
                )
        for old_position, old_arg, new_arg in paired:
            label = _arg_label(old_arg, old_position, direction)
            if old_arg.type != new_arg.type:
                yield _Change(
                    "C005",
                    new_arg.location,
                    f"{label} of {kind} {full} changed type to {new_arg.type!r}",
                    detail(),
                    fix,
                )
            if old_arg.name != new_arg.name:
                if not new_arg.name:
                    renamed = "lost its name"
                elif old_arg.name:
                    renamed = f"was renamed to {new_arg.name!r}"
                else:
                    renamed = f"is now named {new_arg.name!r}"
                yield _Change("C201", new_arg.location, f"{label} of {kind} {full} {renamed}")
        for position, arg in added:
            yield _Change(
                "C003",
                arg.location,
                f"{_arg_label(arg, position, direction)} was added to {kind} {full}",
                detail(),
                fix,
            )
        for position, arg in removed:
            yield _Change(
                "C004",
                arg.location,
                f"{_arg_label(arg, position, direction)} was removed from {kind} {full}",
                detail(),
                fix,
            )


def _members_by_key(interface: Interface) -> dict[tuple[str, str], Member]:
    """Members by (kind, name); the first wins (the checker reports duplicates, U702)."""
    result: dict[tuple[str, str], Member] = {}
    for member in interface.members:
        result.setdefault((member.kind, member.name), member)
    return result


def _redirected(old: Sequence[Arg], new: Sequence[Arg]) -> dict[str, tuple[Arg, Arg]]:
    """Named method args that kept their name but changed direction.  Only names that occur once
    on each side are trusted: with duplicates (U703) the pairing would be a guess."""
    old_names = Counter(a.name for a in old if a.name)
    new_names = Counter(a.name for a in new if a.name)
    result: dict[str, tuple[Arg, Arg]] = {}
    for old_arg in old:
        name = old_arg.name
        if not name or old_names[name] != 1 or new_names[name] != 1:
            continue
        new_arg = next(a for a in new if a.name == name)
        if new_arg.direction is not old_arg.direction:
            result[name] = (old_arg, new_arg)
    return result


# --- stability and platforms ---------------------------------------------------------------------


def _stability(old: Interface | None, new: Interface | None) -> tuple[str | None, str | None]:
    return (
        interface_metadata(old).stability if old is not None else None,
        interface_metadata(new).stability if new is not None else None,
    )


def _labels(platforms: frozenset[str] | set[str]) -> str:
    return ", ".join(PLATFORM_LABELS[p] for p in sorted(platforms))


def _finish(
    change: _Change, details: dict[str, set[str]], present: frozenset[str], interface: str, stable: bool
) -> Diagnostic:
    """The diagnostic for one change seen on the platforms in ``details`` (detail text → the
    platforms where it reads so): a platform is named only where the change is not the same
    everywhere the interface exists."""
    platforms = frozenset().union(*details.values())
    where = f" on {_labels(platforms)}" if platforms != present else ""
    if len(details) > 1:
        detail = "; ".join(f"{text} on {_labels(p)}" for text, p in details.items())
    else:
        detail = next(iter(details))
    body = change.text + where + (f" ({detail})" if detail else "")
    rule = RULES[change.code]
    if rule.severity is Severity.NOTE:
        return diagnostic(change.code, change.location, body)
    if not stable:
        return diagnostic(
            "C301",
            change.location,
            f"{body}: a {change.code} {rule.name} change, allowed because {interface} is unstable",
        )
    if rule.severity is Severity.ERROR:
        return diagnostic(
            change.code,
            change.location,
            f"{body}; this breaks clients of stable interface {interface}: {change.fix}",
            hint=change.fix,
        )
    return diagnostic(change.code, change.location, body)


def _diff_one(name: str, old: Interface | None, new: Interface | None) -> list[Diagnostic]:
    old_stability, new_stability = _stability(old, new)
    stable = (old_stability or new_stability) != "unstable"
    differ = _InterfaceDiff(name)
    # The same change on several platforms is one report, even when its signature detail differs
    # (an arg after an fd on Unix and after a byte array on Windows).
    seen: dict[_Change, dict[str, set[str]]] = {}
    present: set[str] = set()
    for platform in PLATFORMS:
        old_here, new_here = _project(old, platform), _project(new, platform)
        if old_here is not None or new_here is not None:
            present.add(platform)
        for change in differ.compare(old_here, new_here):
            details = seen.setdefault(replace(change, detail=""), {})
            details.setdefault(change.detail, set()).add(platform)
    result = [_finish(change, details, frozenset(present), name, stable) for change, details in seen.items()]
    if old_stability == "stable" and new_stability == "unstable" and new is not None:
        annotation = next((a for a in new.annotations if a.name == NAMESPACE + "Stability"), None)
        fix = f"set {NAMESPACE}Stability back to stable; unstable API belongs in a new interface such as {differ.successor}"
        result.append(
            diagnostic(
                "C013",
                annotation.location if annotation else new.location,
                f"stable interface {name} is now marked unstable, which would exempt it from this gate; {fix}",
                hint=fix,
            )
        )
    result.sort(key=Diagnostic.sort_key)
    return result


def diff_interfaces(old: Sequence[Interface], new: Sequence[Interface]) -> list[Diagnostic]:
    """Every compatibility finding between ``old`` and ``new`` (C codes), interface by interface
    in name order and by location within one.  Errors are backwards-incompatible changes to stable
    interfaces, warnings forwards-incompatible ones, notes the rest."""
    old_by_name, new_by_name = _first_by_name(old), _first_by_name(new)
    result: list[Diagnostic] = []
    for name in sorted(old_by_name.keys() | new_by_name.keys()):
        result += _diff_one(name, old_by_name.get(name), new_by_name.get(name))
    return result

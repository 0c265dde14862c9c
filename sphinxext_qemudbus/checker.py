"""``qemu-dbus check``: run the rule table over parsed files.

Per-file rules first (spec, prefix, metadata, guidelines, documentation), then the rules that need
every file at once (duplicate interfaces, references).  Each finding is a `Diagnostic` from the rule
table in `rules`; this module decides only *when* a rule fires.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .diagnostics import Diagnostic, Location
from .metadata import (
    KEYS_BY_NAME,
    NAMESPACE,
    interface_metadata,
    validation_note,
    waived_codes,
)
from .model import (
    ALL_PLATFORMS,
    DEPRECATED,
    EMITS_CHANGED_SIGNAL,
    NO_REPLY,
    Annotation,
    Arg,
    DocComment,
    Interface,
    Member,
    Method,
    Node,
    Property,
    Signal,
    platforms_of,
)
from .names import (
    interface_name_error,
    is_under_prefix,
    member_name_error,
    object_path_error,
    relative_path_error,
)
from .parser import ParsedFile, parse_file
from .references import ROLE_KINDS, references_in, resolve, suffix_index
from .rules import RULES, diagnostic
from .signature import SignatureError, parse_single_type
from .source import SourceText

RESERVED_PREFIX = "org.qemu"

_STANDARD_VALUES = {
    DEPRECATED: (("true", "false"), ("interface", "method", "signal", "property")),
    NO_REPLY: (("true", "false"), ("method",)),
    EMITS_CHANGED_SIGNAL: (("true", "invalidates", "const", "false"), ("interface", "property")),
}
_CAMEL = re.compile(r"[A-Z][A-Za-z0-9]*\Z")
_SNAKE = re.compile(r"[a-z][a-z0-9_]*\Z")
_VERSIONED = re.compile(r"[0-9]\Z")
_VERSION = re.compile(r"[0-9]+(\.[0-9]+){1,2}\Z")
_TYPE_WORDS = frozenset(
    [
        "str",
        "string",
        "int",
        "uint",
        "bool",
        "boolean",
        "dbl",
        "double",
        "arr",
        "array",
        "dict",
        "obj",
        "var",
        "variant",
        "byte",
        "int16",
        "uint16",
        "int32",
        "uint32",
        "int64",
        "uint64",
    ]
)
_LENGTH_NAME = re.compile(r"(len|length|size|count|n|num)\Z|(n|num)_\w+\Z|\w+_(len|length|count|size)\Z")
_STATUS_NAME = re.compile(r"(success|succeeded|status|ok|error|err|result|ret|retval)\Z")
_DONE_SIGNAL = re.compile(r"Done(?:[A-Z_]\w*)?\Z|\w+(Done|Completed?)\Z")
_INTEGER = frozenset("ynqiuxt")


@dataclass(frozen=True, slots=True)
class CheckOptions:
    profile: str = "qemu"
    select: frozenset[str] | None = None
    ignore: frozenset[str] = frozenset()

    def enabled(self, code: str) -> bool:
        if self.profile not in RULES[code].profiles:
            return False
        if self.select is not None and code not in self.select:
            return False
        return code not in self.ignore


@dataclass(slots=True)
class CheckResult:
    files: list[ParsedFile]
    diagnostics: list[Diagnostic] = field(default_factory=list)


def collect_paths(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Expand folders into the ``*.xml`` files under them (sorted); files are kept as given.
    Raises FileNotFoundError for a path that does not exist."""
    result: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            result.extend(str(p) for p in sorted(path.rglob("*.xml")) if p.is_file())
        elif path.exists():
            result.append(str(path))
        else:
            raise FileNotFoundError(os.fspath(raw))
    return result


def check_paths(paths: Sequence[str | os.PathLike[str]], options: CheckOptions = CheckOptions()) -> CheckResult:
    files = [parse_file(path) for path in collect_paths(paths)]
    return CheckResult(files, check_files(files, options))


def check_files(files: Sequence[ParsedFile], options: CheckOptions = CheckOptions()) -> list[Diagnostic]:
    """All diagnostics for ``files``, parser findings included, sorted by location."""
    diagnostics: list[Diagnostic] = []
    for parsed in files:
        diagnostics.extend(parsed.diagnostics)
        if parsed.node is not None:
            checker = _FileChecker(parsed, options)
            try:
                checker.run()
            except Exception as error:  # a bug must cost one file, not the run
                checker.diagnostics.append(
                    diagnostic("X099", Location(parsed.path), f"internal error: {type(error).__name__}: {error}")
                )
            diagnostics.extend(checker.diagnostics)
    _CrossFileChecker(files, options, diagnostics).run()
    diagnostics = [d for d in diagnostics if options.enabled(d.code)]
    diagnostics.sort(key=Diagnostic.sort_key)
    return diagnostics


def _owners_waive(owners: Sequence[Interface | Member | Arg], code: str) -> bool:
    waive = NAMESPACE + "Waive"
    return any(code in waived_codes(a.value) for owner in owners for a in owner.annotations if a.name == waive)


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


class _FileChecker:
    def __init__(self, parsed: ParsedFile, options: CheckOptions) -> None:
        assert parsed.node is not None
        self.parsed = parsed
        self.node: Node = parsed.node
        self.source: SourceText | None = parsed.source
        self.options = options
        self.qemu = options.profile == "qemu"
        self.diagnostics: list[Diagnostic] = []

    def report(
        self,
        code: str,
        location: Location,
        message: str,
        owners: Sequence[Interface | Member | Arg] = (),
    ) -> None:
        if not self.options.enabled(code) or (owners and _owners_waive(owners, code)):
            return
        self.diagnostics.append(diagnostic(code, location, message))

    def attribute(self, location: Location, attribute: str, offset: int = 0) -> Location:
        return self.source.attribute_location(location, attribute, offset) if self.source else location

    # --- file ---------------------------------------------------------------------------------

    def run(self) -> None:
        self.check_node(self.node, root=True)
        interfaces = list(self.node.walk_interfaces())
        path = self.parsed.path
        if not interfaces:
            self.report("F803", self.node.location, "file defines no interface")
        names = sorted({i.name for i in interfaces})
        if len(names) > 1:
            self.report(
                "F801",
                interfaces[1].location,
                f"file defines {len(names)} interfaces ({', '.join(names)}); use one file per interface",
            )
        elif len(names) == 1 and os.path.basename(path) != f"{names[0]}.xml":
            self.report(
                "F802",
                interfaces[0].location,
                f"file of interface {names[0]} should be named {names[0]}.xml, not {os.path.basename(path)}",
            )
        for interface in interfaces:
            self.check_interface(interface)

    def check_node(self, node: Node, root: bool = False) -> None:
        if node.name is not None:
            problem = (
                object_path_error(node.name) if root and node.name.startswith("/") else relative_path_error(node.name)
            )
            if not root and node.name.startswith("/"):
                problem = "child node names are relative paths"
            if problem:
                self.report(
                    "S104", self.attribute(node.location, "name"), f"invalid node name {node.name!r}: {problem}"
                )
        for child in node.nodes:
            self.check_node(child)

    # --- annotations ----------------------------------------------------------------------------

    def check_annotations(
        self, element_kind: str, annotations: tuple[Annotation, ...], owners: Sequence[Interface | Member | Arg]
    ) -> None:
        for annotation in annotations:
            name, value, location = annotation.name, annotation.value, annotation.location
            if interface_name_error(name):
                self.report(
                    "S112",
                    self.attribute(location, "name"),
                    f"annotation name {name!r} is not a reversed-domain name",
                    owners,
                )
            if name in _STANDARD_VALUES:
                values, applies = _STANDARD_VALUES[name]
                if element_kind not in applies:
                    self.report("S113", location, f"{name} does not apply to a {element_kind}", owners)
                elif value not in values:
                    self.report(
                        "S110",
                        self.attribute(location, "value"),
                        f"{name} must be {'|'.join(values)}, not {value!r}",
                        owners,
                    )
            if self.qemu and (name.startswith(RESERVED_PREFIX + ".") or name == RESERVED_PREFIX):
                key = KEYS_BY_NAME.get(name)
                if key is None:
                    self.report(
                        "M302", self.attribute(location, "name"), f"unknown registry annotation {name!r}", owners
                    )
                elif element_kind not in key.applies_to:
                    self.report(
                        "M304",
                        location,
                        f"{name} applies to {' and '.join(key.applies_to)} elements, not to a {element_kind}",
                        owners,
                    )
                elif (problem := key.validate(value)) is not None:
                    self.report(
                        "M303", self.attribute(location, "value"), f"bad value {value!r} for {name}: {problem}", owners
                    )

    # --- interface ------------------------------------------------------------------------------

    def check_interface(self, interface: Interface) -> None:
        owners = (interface,)
        name, location = interface.name, interface.location
        if problem := interface_name_error(name):
            self.report("S101", self.attribute(location, "name"), f"invalid interface name {name!r}: {problem}", owners)
        elif not any(_VERSIONED.search(element) for element in name.split(".")[1:]):
            self.report("G401", self.attribute(location, "name"), f"interface {name} carries no version number", owners)
        if self.qemu and not is_under_prefix(name, RESERVED_PREFIX):
            self.report(
                "P201",
                self.attribute(location, "name"),
                f"interface {name} is not under the reserved prefix {RESERVED_PREFIX}.",
                owners,
            )
        self.check_annotations("interface", interface.annotations, owners)
        if self.qemu:
            self.check_metadata(interface)
        self.check_doc(interface.doc, interface, name, location, owners, has_args=False)
        self.check_members(interface)
        for member in interface.members:
            self.check_member(interface, member)

    def check_metadata(self, interface: Interface) -> None:
        owners = (interface,)
        present = {a.name for a in interface.annotations}
        for key in KEYS_BY_NAME.values():
            if key.required and "interface" in key.applies_to and key.name not in present:
                self.report("M301", interface.location, f"interface {interface.name} lacks {key.name}", owners)
        meta = interface_metadata(interface)
        bus_name_annotation = next((a for a in interface.annotations if a.name == NAMESPACE + "BusName"), None)
        if bus_name_annotation is not None:
            if meta.peer_to_peer:
                self.report("M306", bus_name_annotation.location, "a peer-to-peer interface has no bus name", owners)
            value = bus_name_annotation.value
            if value != RESERVED_PREFIX and not is_under_prefix(value, RESERVED_PREFIX):
                self.report(
                    "P202",
                    self.attribute(bus_name_annotation.location, "value"),
                    f"bus name {value!r} is not under {RESERVED_PREFIX}",
                    owners,
                )
        if meta.object_path is not None:
            self.check_object_path(interface, meta.object_path)
        if meta.since is not None:
            for member in interface.members:
                since = member.since
                if since and _VERSION.match(since) and _version_tuple(since) < _version_tuple(meta.since):
                    self.report(
                        "M307",
                        member.location,
                        f"{member.name} is marked Since {since}, before its interface ({meta.since})",
                        (interface, member),
                    )

    def check_object_path(self, interface: Interface, path: str) -> None:
        elements = interface.name.split(".")
        versioned = next((i for i, e in enumerate(elements) if i and _VERSIONED.search(e)), None)
        annotation = next(a for a in interface.annotations if a.name == NAMESPACE + "ObjectPath")
        if path == "/":
            self.report(
                "G402",
                annotation.location,
                "object exported at '/'; export it under the versioned name's path",
                (interface,),
            )
        elif versioned is not None:
            base = "/" + "/".join(elements[: versioned + 1])
            if not (path == base or path.startswith(base + "/") or path.startswith(base + "_")):
                self.report(
                    "G402",
                    self.attribute(annotation.location, "value"),
                    f"object path {path} is not under {base}",
                    (interface,),
                )

    def check_members(self, interface: Interface) -> None:
        seen: dict[tuple[str, str], Member] = {}
        for member in interface.members:
            for platform in sorted(platforms_of(member.conditions)):
                earlier = seen.setdefault((member.name, platform), member)
                if earlier is not member:
                    where = "" if platforms_of(member.conditions) == ALL_PLATFORMS else f" on {platform}"
                    self.report(
                        "U702",
                        self.attribute(member.location, "name"),
                        f"{member.kind} {member.name} is defined twice in {interface.name}{where}; also defined at {earlier.location}",
                        (interface, member),
                    )
                    break
        properties = {p.name for p in interface.properties}
        signals = {s.name: s for s in interface.signals}
        for member in interface.members:
            owners = (interface, member)
            if isinstance(member, Method) and member.name[:3] in ("Get", "Set") and member.name[3:] in properties:
                self.report("G406", member.location, f"method {member.name} shadows property {member.name[3:]}", owners)
            if isinstance(member, Signal):
                if member.name.endswith("Changed") and member.name[:-7] in properties:
                    self.report(
                        "G407",
                        member.location,
                        f"signal {member.name} shadows the PropertiesChanged signal of property {member.name[:-7]}",
                        owners,
                    )
                if member.name.endswith("Added"):
                    removed = signals.get(member.name[:-5] + "Removed")
                    if (
                        removed is not None
                        and member.args[:1]
                        and member.args[0].type == "o"
                        and removed.args[:1]
                        and removed.args[0].type == "o"
                    ):
                        self.report(
                            "G408",
                            member.location,
                            f"signals {member.name}/{removed.name} re-implement org.freedesktop.DBus.ObjectManager",
                            owners,
                        )
                if _DONE_SIGNAL.match(member.name):
                    self.report(
                        "G413",
                        member.location,
                        f"signal {member.name} looks like a reply delivered as a signal",
                        owners,
                    )

    # --- members --------------------------------------------------------------------------------

    def check_member(self, interface: Interface, member: Member) -> None:
        owners = (interface, member)
        location = member.location
        if isinstance(member, Property):
            if problem := member_name_error(member.name, "property name"):
                self.report(
                    "S103",
                    self.attribute(location, "name"),
                    f"invalid property name {member.name!r}: {problem}",
                    owners,
                )
            elif not _CAMEL.match(member.name):
                self.report(
                    "G403", self.attribute(location, "name"), f"property {member.name} is not CamelCase", owners
                )
            self.check_type(member.type, location, f"property {member.name}", owners)
            self.check_annotations("property", member.annotations, owners)
            self.check_doc(member.doc, member, member.name, location, owners, has_args=False)
            if self.qemu and validation_note(member) is None and member.type != "b":
                self.report(
                    "M305",
                    location,
                    f"property {member.name} ({member.type}) has no validation note for its readers",
                    owners,
                )
            return
        if problem := member_name_error(member.name, f"{member.kind} name"):
            self.report(
                "S102",
                self.attribute(location, "name"),
                f"invalid {member.kind} name {member.name!r}: {problem}",
                owners,
            )
        elif not _CAMEL.match(member.name):
            self.report(
                "G403", self.attribute(location, "name"), f"{member.kind} {member.name} is not CamelCase", owners
            )
        self.check_annotations(member.kind, member.annotations, owners)
        if isinstance(member, Method) and member.no_reply and member.out_args:
            self.report("S111", location, f"method {member.name} is NoReply but has out args", owners)
        self.check_doc(member.doc, member, member.name, location, owners, has_args=True)
        self.check_args(interface, member)

    def check_args(self, interface: Interface, member: Method | Signal) -> None:
        seen: dict[tuple[str, str], Arg] = {}
        documented = {p.name for p in member.doc.params} if member.doc else set()
        for arg in member.args:
            owners = (interface, member, arg)
            label = f"arg {arg.name!r} of {member.name}" if arg.name else f"unnamed arg of {member.name}"
            self.check_type(arg.type, arg.location, label, owners)
            self.check_annotations("arg", arg.annotations, owners)
            if arg.name is None:
                self.report("D504", arg.location, f"{label} has no name", owners)
            else:
                for platform in sorted(platforms_of(arg.conditions)):
                    earlier = seen.setdefault((arg.name, platform), arg)
                    if earlier is not arg:
                        self.report(
                            "U703",
                            self.attribute(arg.location, "name"),
                            f"{member.name} has two args named {arg.name!r}; also defined at {earlier.location}",
                            owners,
                        )
                        break
                if not _SNAKE.match(arg.name):
                    self.report(
                        "G404", self.attribute(arg.location, "name"), f"{label} is not lower_snake_case", owners
                    )
                elif self.has_type_prefix(arg):
                    self.report(
                        "G405", self.attribute(arg.location, "name"), f"{label} encodes its type in its name", owners
                    )
                if member.doc is not None and arg.name not in documented:
                    self.report("D503", arg.location, f"{label} is not documented (no '@{arg.name}:' line)", owners)
            if self.qemu and validation_note(arg) is None and arg.type != "b":
                self.report(
                    "M305", arg.location, f"{label} ({arg.type}) has no validation note for its receiver", owners
                )
        self.check_arg_design(interface, member)

    @staticmethod
    def has_type_prefix(arg: Arg) -> bool:
        assert arg.name is not None
        prefix, sep, rest = arg.name.partition("_")
        if not sep or not rest:
            return False
        return prefix in _TYPE_WORDS or (len(prefix) == 1 and arg.type.startswith(prefix))

    def check_arg_design(self, interface: Interface, member: Method | Signal) -> None:
        for platform in sorted(platforms_of(member.conditions)):
            args = [a for a in member.args if platform in platforms_of(a.conditions)]
            for direction in ("in", "out"):
                same = [a for a in args if a.direction.value == direction]
                arrays = [a for a in same if a.type.startswith("a") and not a.type.startswith("a{") and a.type != "ay"]
                if len(arrays) >= 2:
                    names = ", ".join(repr(a.name) for a in arrays)
                    self.report(
                        "G410",
                        arrays[1].location,
                        f"{member.name} has parallel arrays {names}",
                        (interface, member, arrays[1]),
                    )
                if any(a.type.startswith("a") for a in same):
                    for arg in same:
                        if arg.name and arg.type in _INTEGER and _LENGTH_NAME.match(arg.name):
                            self.report(
                                "G411",
                                arg.location,
                                f"arg {arg.name!r} of {member.name} carries a length beside an array",
                                (interface, member, arg),
                            )
            break  # design findings do not differ per platform; report them once
        if isinstance(member, Method):
            for arg in member.args:
                owners = (interface, member, arg)
                if arg.direction.value == "in" and arg.type == "b":
                    self.report(
                        "G409", arg.location, f"boolean arg {arg.name!r} of {member.name}: prefer an enum", owners
                    )
                if (
                    arg.direction.value == "out"
                    and arg.name
                    and (arg.type == "b" or arg.type in _INTEGER)
                    and _STATUS_NAME.match(arg.name)
                ):
                    self.report(
                        "G412",
                        arg.location,
                        f"out arg {arg.name!r} of {member.name} reports success or failure",
                        owners,
                    )

    def check_type(
        self, type_: str, location: Location, label: str, owners: Sequence[Interface | Member | Arg]
    ) -> None:
        try:
            parse_single_type(type_)
        except SignatureError as error:
            code = "S106" if "exactly one complete type" in error.message else "S105"
            where = self.attribute(location, "type", error.position + 1 if code == "S105" else 0)
            self.report(code, where, f"{label}: invalid type {type_!r}: {error.message}", owners)

    # --- documentation --------------------------------------------------------------------------

    def check_doc(
        self,
        doc: DocComment | None,
        element: Interface | Member,
        name: str,
        location: Location,
        owners: Sequence[Interface | Member | Arg],
        has_args: bool,
    ) -> None:
        kind = element.kind
        code = "D501" if kind == "interface" else "D502"
        if doc is None:
            self.report(code, location, f"{kind} {name} is not documented", owners)
            return
        if doc.symbol and not _symbol_matches(doc.symbol, name):
            self.report("D507", doc.location, f"doc comment names {doc.symbol!r} but documents {kind} {name}", owners)
        if doc.is_empty and not doc.params:
            self.report(code, doc.location, f"doc comment of {kind} {name} is empty", owners)
        if doc.since is not None and not _VERSION.match(doc.since):
            self.report("D509", doc.location, f"Since value {doc.since!r} is not a version", owners)
        if not doc.params:
            return
        if not has_args:
            self.report(
                "D510", doc.params[0].location, f"'@{doc.params[0].name}:' on a {kind}, which has no args", owners
            )
            return
        assert isinstance(element, (Method, Signal))
        args = {a.name for a in element.args}
        seen: set[str] = set()
        for param in doc.params:
            if param.name in seen:
                self.report("D508", param.location, f"'@{param.name}:' appears twice", owners)
            seen.add(param.name)
            if param.name not in args:
                self.report("D505", param.location, f"'@{param.name}:' names no arg of {name}", owners)


def _symbol_matches(symbol: str, name: str) -> bool:
    return symbol == name or symbol.endswith(("." + name, ":" + name))


class _CrossFileChecker:
    """Rules over the whole set of files: duplicate interfaces and references."""

    def __init__(self, files: Sequence[ParsedFile], options: CheckOptions, out: list[Diagnostic]) -> None:
        self.files = files
        self.options = options
        self.out = out

    def run(self) -> None:
        objects: dict[str, str] = {}
        first: dict[tuple[str, str], Interface] = {}
        for parsed in self.files:
            for interface in parsed.interfaces:
                duplicate = None
                for platform in sorted(platforms_of(interface.conditions)):
                    earlier = first.setdefault((interface.name, platform), interface)
                    if earlier is not interface:
                        duplicate = earlier
                if duplicate is not None:
                    self.report(
                        "U701",
                        interface.location,
                        f"interface {interface.name} is defined twice; also defined at {duplicate.location}",
                        interface,
                    )
                objects[interface.name] = "interface"
                for member in interface.members:
                    objects.setdefault(f"{interface.name}.{member.name}", member.kind)
        if not any(self.options.enabled(code) for code in ("R601", "R602", "R603", "R604")):
            return
        suffixes = suffix_index(objects)
        for parsed in self.files:
            for interface in parsed.interfaces:
                for owner, doc in _docs(interface):
                    self.check_references(parsed, interface, owner, doc, objects, suffixes)

    def report(self, code: str, location: Location, message: str, *owners: Interface | Member) -> None:
        if self.options.enabled(code) and not _owners_waive(owners, code):
            self.out.append(diagnostic(code, location, message))

    def check_references(
        self,
        parsed: ParsedFile,
        interface: Interface,
        owner: Interface | Member,
        doc: DocComment,
        objects: dict[str, str],
        suffixes: dict[str, tuple[str, ...]],
    ) -> None:
        for reference in references_in(doc):
            location = _column_of(parsed.source, reference.location, f":dbus:{reference.role}:")
            kind = ROLE_KINDS.get(reference.role)
            if kind is None:
                self.report(
                    "R604",
                    location,
                    f"unknown role :dbus:{reference.role}:; use iface, meth, sig or prop",
                    interface,
                    owner,
                )
                continue
            result = resolve(reference.target, kind, interface.name, objects, suffixes)
            if result.problem == "unresolved":
                self.report(
                    "R601", location, f"reference to {kind} {reference.target!r} does not resolve", interface, owner
                )
            elif result.problem == "wrong-kind":
                self.report(
                    "R602",
                    location,
                    f":dbus:{reference.role}: reference to {reference.target!r}, but {result.detail}",
                    interface,
                    owner,
                )
            elif result.problem == "ambiguous":
                self.report(
                    "R603",
                    location,
                    f"reference to {kind} {reference.target!r} is ambiguous: {result.detail}",
                    interface,
                    owner,
                )


def _docs(interface: Interface) -> Iterator[tuple[Interface | Member, DocComment]]:
    if interface.doc:
        yield interface, interface.doc
    for member in interface.members:
        if member.doc:
            yield member, member.doc


def _column_of(source: SourceText | None, location: Location, needle: str) -> Location:
    if source is None:
        return location
    column = source.line(location.line).find(needle)
    return location.with_column(column + 1) if column >= 0 else location

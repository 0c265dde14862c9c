"""``qemu-dbus check``: run the rule table over parsed files.

Per-file rules first (spec, prefix, metadata, guidelines, documentation), then the rules that need
every file at once (duplicate interfaces, references).  Each finding is a `Diagnostic` from the rule
table in `rules`; this module decides only *when* a rule fires.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from ..diagnostics.diagnostic import Diagnostic, Location
from ..diagnostics.rules import diagnostic
from ..model.files import FileRefused, list_inputs, read_file
from ..model.introspection import (
    ALL_PLATFORMS,
    DEPRECATED,
    EMITS_CHANGED_SIGNAL,
    NO_REPLY,
    Annotation,
    Arg,
    Direction,
    DocComment,
    Interface,
    Member,
    Method,
    Node,
    Property,
    Signal,
    platforms_of,
    signature_variants,
)
from ..model.metadata import (
    KEYS_BY_NAME,
    NAMESPACE,
    InterfaceMetadata,
    interface_metadata,
    validation_note,
    waived_codes,
)
from ..model.names import (
    RESERVED_PREFIX,
    interface_name_error,
    is_under_prefix,
    member_name_error,
    object_path_error,
    relative_path_error,
)
from ..model.parser import ParsedFile, parse_bytes
from ..model.releases import parse_release
from ..model.signature import SignatureError, single_type_error
from ..model.source import SourceText
from .references import ROLE_KINDS, SuffixIndex, exact_match, references_in, resolve, suffix_index
from .summary import DEFAULT_OPTIONS, CheckOptions, CheckResult, FileSummary, ReferenceEntry, content_digest

_UNDER_RESERVED = RESERVED_PREFIX + "."

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
# The registry annotations every interface must carry, in the order of the key table.
_REQUIRED_KEYS = tuple(k.name for k in KEYS_BY_NAME.values() if k.required and "interface" in k.applies_to)


# Below this many files a process pool costs more to start than it saves.
PARALLEL_THRESHOLD = 400


def check_paths(
    paths: Sequence[str | os.PathLike[str]],
    options: CheckOptions = DEFAULT_OPTIONS,
    jobs: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> CheckResult:
    """Check files and folders.  Files not in the cache (``cache_dir``, when given) are checked
    one by one, in ``jobs`` processes for a large input (by default one per CPU); the cross-file
    rules then run once over every file's summary.  A folder with no ``*.xml`` file is listed in
    the result's ``empty`` (a typo or the wrong folder: the command line makes it an error)."""
    from .cache import open_cache

    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    inputs = list_inputs(paths)
    empty = [os.fspath(path) for path, found in zip(paths, inputs) if not found]
    files = [path for found in inputs for path in found]
    cache, notes = open_cache(cache_dir, options)
    try:
        cached: dict[str, FileSummary] = {}
        if cache is not None:
            cached = cache.lookup(files)
        todo = [path for path in files if path not in cached]
        fresh = dict(zip(todo, _summarize_all(todo, options, jobs, digests=cache is not None)))
        if cache is not None:
            cache.store({path: result for path, result in fresh.items() if result[1]})
    finally:
        if cache is not None:
            cache.close()
    summaries = [cached[path] if path in cached else fresh[path][0] for path in files]
    scopes = {s.path: tuple((first, name) for name, _platforms, _line, first in s.interfaces) for s in summaries}
    return CheckResult(len(files), _conclude(summaries, options), empty, notes, scopes)


#: A summary and the digest of the bytes it was made from ("" when there were none).
_Result = tuple[FileSummary, str]


def _summarize_all(paths: Sequence[str], options: CheckOptions, jobs: int | None, digests: bool) -> list[_Result]:
    workers = jobs if jobs is not None else (os.cpu_count() or 1)
    if workers <= 1 or len(paths) < PARALLEL_THRESHOLD:
        return [_summarize_path(path, options, digests) for path in paths]
    results: dict[str, _Result] = {}
    lost: list[str] = []
    # Small chunks: a worker that finishes early waits at most one chunk for the other.
    size = max(len(paths) // (workers * 32), 1)
    chunks = [paths[start : start + size] for start in range(0, len(paths), size)]
    with ProcessPoolExecutor(workers) as pool:
        futures = [pool.submit(_summarize_chunk, chunk, options, digests) for chunk in chunks]
        for chunk, future in zip(chunks, futures):
            try:
                results.update(zip(chunk, future.result()))
            except BrokenProcessPool:
                lost += chunk
    if lost:
        results.update(_summarize_isolated(lost, options, digests))
    return [results[path] for path in paths]


def _summarize_chunk(paths: Sequence[str], options: CheckOptions, digests: bool) -> list[_Result]:
    return [_summarize_path(path, options, digests) for path in paths]


def _summarize_isolated(paths: Sequence[str], options: CheckOptions, digests: bool) -> dict[str, _Result]:
    """The files of chunks whose worker died, again, one at a time in a process of their own
    making: the file that kills it again is reported (X008), the others are checked."""
    results: dict[str, _Result] = {}
    pool = ProcessPoolExecutor(1)
    try:
        for path in paths:
            try:
                (results[path],) = pool.submit(_summarize_chunk, [path], options, digests).result()
            except BrokenProcessPool:
                message = "the process checking this file died (killed, out of memory, or a crash); not checked"
                results[path] = (FileSummary(path, (diagnostic("X008", Location(path), message),), (), (), ()), "")
                pool.shutdown(wait=True)
                pool = ProcessPoolExecutor(1)
    finally:
        pool.shutdown(wait=True)
    return results


def check_files(files: Sequence[ParsedFile], options: CheckOptions = DEFAULT_OPTIONS) -> list[Diagnostic]:
    """All diagnostics for files already parsed, parser findings included, sorted by location."""
    sources = {parsed.path: parsed.source for parsed in files if parsed.source is not None}
    return _conclude([summarize(parsed, options) for parsed in files], options, sources)


def _summarize_path(path: str, options: CheckOptions, digest: bool = False) -> _Result:
    """The summary of one file, and (with ``digest``) the digest of the bytes it was made from,
    for the cache to key it on: the bytes parsed, not a second reading that may differ."""
    try:
        data = read_file(path)
    except FileRefused as refused:
        return FileSummary(path, (refused.diagnostic(),), (), (), ()), ""
    return summarize(parse_bytes(data, path), options), content_digest(data) if digest else ""


def summarize(parsed: ParsedFile, options: CheckOptions) -> FileSummary:
    """Parse findings, per-file rules and the file's symbols and references."""
    diagnostics = list(parsed.diagnostics)
    if parsed.node is None:
        return FileSummary(parsed.path, tuple(diagnostics), (), (), ())
    checker = _FileChecker(parsed, options)
    references: tuple[ReferenceEntry, ...] = ()
    resolved: tuple[ReferenceEntry, ...] = ()
    try:
        defined = parsed.interfaces
        checker.run(defined)
        interfaces = tuple(
            (i.name, platforms_of(i.conditions), i.location.line, i.doc.location.line if i.doc else i.location.line)
            for i in defined
        )
        own: dict[str, str] = {}
        for i in defined:
            own.setdefault(i.name, "interface")
            for m in i.members:
                own.setdefault(f"{i.name}.{m.name}", m.kind)
        objects = tuple(own.items())
        if options.any_enabled(_REFERENCE_CODES):
            references, resolved = _split_resolved(_references(defined), own)
    except Exception as error:  # a bug must cost one file, not the run
        checker.diagnostics.append(
            diagnostic("X099", Location(parsed.path), f"internal error: {type(error).__name__}: {error}")
        )
        interfaces, objects, references, resolved = (), (), (), ()
    diagnostics.extend(checker.diagnostics)
    return FileSummary(parsed.path, tuple(diagnostics), interfaces, objects, references, resolved)


def _split_resolved(
    references: Iterable[ReferenceEntry], own: Mapping[str, str]
) -> tuple[tuple[ReferenceEntry, ...], tuple[ReferenceEntry, ...]]:
    """(references that need every file's objects, references resolved by the file's own).  A
    ``.Name`` reference always needs every file: it may be ambiguous across files."""
    pending: list[ReferenceEntry] = []
    resolved: list[ReferenceEntry] = []
    for entry in references:
        interface, role, target, _, _ = entry
        kind = ROLE_KINDS.get(role)
        if kind is not None and not target.startswith(".") and exact_match(target, kind, interface, own) is not None:
            resolved.append(entry)
        else:
            pending.append(entry)
    return tuple(pending), tuple(resolved)


_REFERENCE_CODES = ("R601", "R602", "R603", "R604")


def _references(interfaces: Iterable[Interface]) -> list[ReferenceEntry]:
    entries: list[ReferenceEntry] = []
    for interface in interfaces:
        name = interface.name
        for doc in _docs(interface):
            for reference in references_in(doc):
                entries.append((name, reference.role, reference.target, reference.line, reference.column))
    return entries


def _conclude(
    summaries: Sequence[FileSummary], options: CheckOptions, sources: Mapping[str, SourceText] | None = None
) -> list[Diagnostic]:
    """The cross-file rules (duplicate interfaces, references) over every file's summary, then
    the selection and the order of the whole report.  Columns the summaries leave out are found
    in ``sources`` (by path) when given, else read back from the files (`_Columns`).  Linear in
    the summaries: each name and reference is looked at once."""
    columns = _Columns(sources or {})
    diagnostics = [d for summary in summaries for d in summary.diagnostics]
    first: dict[tuple[str, str], tuple[str, int]] = {}
    for summary in summaries:
        for name, platforms, line, _first in summary.interfaces:
            here = (summary.path, line)
            duplicate = None
            for platform in sorted(platforms):
                earlier = first.setdefault((name, platform), here)
                if earlier is not here:
                    duplicate = earlier
            if duplicate is not None:
                message = f"interface {name} is defined twice; also defined at {columns.find(Location(*duplicate))}"
                diagnostics.append(diagnostic("U701", columns.find(Location(*here)), message))
    # The first definition of a name wins: merged from the last file back, in C.
    objects: dict[str, str] = {}
    for summary in reversed(summaries):
        objects.update(summary.objects)
    # A name defined in two files may give a reference a kind its own file does not: then every
    # reference is resolved again here.
    shared_names = len(objects) != sum(len(summary.objects) for summary in summaries)
    resolver = _Resolver(objects)
    for summary in summaries:
        for reference in (*summary.references, *summary.resolved) if shared_names else summary.references:
            if (found := resolver.problem(summary.path, reference)) is not None:
                code, location, message = found
                diagnostics.append(diagnostic(code, columns.find(location, f":dbus:{reference[1]}:"), message))
    diagnostics = [d for d in diagnostics if options.enabled(d.code)]
    diagnostics.sort(key=Diagnostic.sort_key)
    return diagnostics


#: Names an ambiguous reference's message lists before it says how many more there are.
_CANDIDATES_SHOWN = 5


class _Resolver:
    """Resolves references against every file's objects.  Each reference costs the walk of its
    own name (`SuffixIndex`), and an ambiguous one's message lists a few candidates: a thousand
    references to a name that a thousand interfaces define must cost neither a million
    comparisons nor a million names printed."""

    def __init__(self, objects: dict[str, str]) -> None:
        self.objects = objects
        self.suffixes: SuffixIndex | None = None

    def problem(self, path: str, reference: ReferenceEntry) -> tuple[str, Location, str] | None:
        """The (code, location, message) of what is wrong with a reference, or None when it resolves."""
        interface, role, target, line, column = reference
        kind = ROLE_KINDS.get(role)
        where = Location(path, line, column)
        if kind is None:
            return "R604", where, f"unknown role :dbus:{role}:; use iface, meth, sig or prop"
        objects = self.objects
        if not target.startswith("."):
            if exact_match(target, kind, interface, objects) is not None:
                return None
        elif self.suffixes is None:
            self.suffixes = suffix_index(objects)
        result = resolve(target, kind, interface, objects, self.suffixes)
        if result.problem is None:
            return None
        if result.problem == "wrong-kind":
            return "R602", where, f":dbus:{role}: reference to {target!r}, but {result.detail}"
        if result.problem == "ambiguous":
            names = result.candidates
            shown = ", ".join(names[:_CANDIDATES_SHOWN])
            if len(names) > _CANDIDATES_SHOWN:
                shown += f" and {len(names) - _CANDIDATES_SHOWN} more"
            return "R603", where, f"reference to {kind} {target!r} is ambiguous: {shown}"
        return "R601", where, f"reference to {kind} {target!r} does not resolve"


def _waived(owner: Interface | Member | Arg) -> frozenset[str]:
    """The codes an ``org.qemu.Registry.Waive`` on ``owner`` itself acknowledges."""
    waive = NAMESPACE + "Waive"
    return frozenset(code for a in owner.annotations if a.name == waive for code in waived_codes(a.value))


class _FileChecker:
    def __init__(self, parsed: ParsedFile, options: CheckOptions) -> None:
        assert parsed.node is not None
        self.parsed = parsed
        self.node: Node = parsed.node
        self.source: SourceText | None = parsed.source
        self.options = options
        self.qemu = options.profile == "qemu"
        self.diagnostics: list[Diagnostic] = []
        # id(owner) -> the codes its waivers acknowledge: read once per owner, not once per
        # finding (a member with thousands of args and annotations would make that quadratic).
        self.waivers: dict[int, frozenset[str]] = {}

    def report(
        self,
        code: str,
        where: Location | Located,
        message: str,
        owners: Sequence[Interface | Member | Arg] = (),
    ) -> None:
        if not self.options.enabled(code) or (owners and self.waives(owners, code)):
            return
        location = where if isinstance(where, Location) else self.at(where)
        self.diagnostics.append(diagnostic(code, location, message))

    def waives(self, owners: Sequence[Interface | Member | Arg], code: str) -> bool:
        """Whether a waiver on the element or an enclosing one acknowledges ``code``.  Only
        design-guideline findings (G) can be waived; spec errors cannot."""
        if not code.startswith("G"):
            return False
        for owner in owners:
            codes = self.waivers.get(id(owner))
            if codes is None:
                codes = self.waivers[id(owner)] = _waived(owner)
            if code in codes:
                return True
        return False

    def at(self, obj: Located) -> Location:
        """Where ``obj`` starts exactly (the model keeps lines; columns are found on demand)."""
        return _refine(self.source, obj)

    def attribute(self, obj: Located, attribute: str, offset: int = 0) -> Location:
        start = self.at(obj)
        return self.source.attribute_location(start, attribute, offset) if self.source else start

    # --- file ---------------------------------------------------------------------------------

    def run(self, interfaces: Sequence[Interface]) -> None:
        self.check_node(self.node, root=True)
        path = self.parsed.path
        if not interfaces:
            self.report("F803", self.node, "file defines no interface")
        names = sorted({i.name for i in interfaces})
        if len(names) > 1:
            self.report(
                "F801",
                interfaces[1],
                f"file defines {len(names)} interfaces ({', '.join(names)}); use one file per interface",
            )
        elif len(names) == 1 and os.path.basename(path) != f"{names[0]}.xml":
            self.report(
                "F802",
                interfaces[0],
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
                self.report("S104", self.attribute(node, "name"), f"invalid node name {node.name!r}: {problem}")
        for child in node.nodes:
            self.check_node(child)

    # --- annotations ----------------------------------------------------------------------------

    def check_annotations(
        self, element_kind: str, annotations: tuple[Annotation, ...], owners: Sequence[Interface | Member | Arg]
    ) -> None:
        for annotation in annotations:
            name, value, element = annotation.name, annotation.value, annotation
            if interface_name_error(name):
                self.report(
                    "S112",
                    self.attribute(element, "name"),
                    f"annotation name {name!r} is not a reversed-domain name",
                    owners,
                )
            if (standard := _STANDARD_VALUES.get(name)) is not None:
                values, applies = standard
                if element_kind not in applies:
                    self.report("S113", element, f"{name} does not apply to a {element_kind}", owners)
                elif value not in values:
                    self.report(
                        "S110",
                        self.attribute(element, "value"),
                        f"{name} must be {'|'.join(values)}, not {value!r}",
                        owners,
                    )
            if self.qemu and (name.startswith(_UNDER_RESERVED) or name == RESERVED_PREFIX):
                key = KEYS_BY_NAME.get(name)
                if key is None:
                    self.report(
                        "M302", self.attribute(element, "name"), f"unknown registry annotation {name!r}", owners
                    )
                elif element_kind not in key.applies_to:
                    self.report(
                        "M304",
                        element,
                        f"{name} applies to {' and '.join(key.applies_to)} elements, not to a {element_kind}",
                        owners,
                    )
                elif (problem := key.validate(value)) is not None:
                    self.report(
                        "M303", self.attribute(element, "value"), f"bad value {value!r} for {name}: {problem}", owners
                    )

    # --- interface ------------------------------------------------------------------------------

    def check_interface(self, interface: Interface) -> None:
        owners = (interface,)
        name, element = interface.name, interface
        if problem := interface_name_error(name):
            self.report("S101", self.attribute(element, "name"), f"invalid interface name {name!r}: {problem}", owners)
        elif not any(_VERSIONED.search(part) for part in name.split(".")[1:]):
            self.report("G401", self.attribute(element, "name"), f"interface {name} carries no version number", owners)
        if self.qemu and not is_under_prefix(name, RESERVED_PREFIX):
            self.report(
                "P201",
                self.attribute(element, "name"),
                f"interface {name} is not under the reserved prefix {RESERVED_PREFIX}.",
                owners,
            )
        self.check_annotations("interface", interface.annotations, owners)
        if self.qemu:
            self.check_metadata(interface)
        self.check_doc(interface.doc, interface, name, owners, has_args=False)
        self.check_members(interface)
        for member in interface.members:
            self.check_member(interface, member)

    def check_metadata(self, interface: Interface) -> None:
        owners = (interface,)
        present = {a.name for a in interface.annotations}
        if not present.issuperset(_REQUIRED_KEYS):
            # One finding naming every missing key: an interface without metadata is one
            # problem, not seven lines of it.
            missing = [name for name in _REQUIRED_KEYS if name not in present]
            what = (
                missing[0]
                if len(missing) == 1
                else f"{len(missing)} of the {NAMESPACE}* annotations: {', '.join(m[len(NAMESPACE) :] for m in missing)}"
            )
            self.report("M301", interface, f"interface {interface.name} lacks {what}", owners)
        meta = interface_metadata(interface)
        bus_name_annotation = next((a for a in interface.annotations if a.name == NAMESPACE + "BusName"), None)
        if bus_name_annotation is not None:
            if meta.peer_to_peer:
                self.report("M306", bus_name_annotation, "a peer-to-peer interface has no bus name", owners)
            value = bus_name_annotation.value
            if value != RESERVED_PREFIX and not is_under_prefix(value, RESERVED_PREFIX):
                self.report(
                    "P202",
                    self.attribute(bus_name_annotation, "value"),
                    f"bus name {value!r} is not under {RESERVED_PREFIX}",
                    owners,
                )
        if meta.object_path is not None:
            self.check_object_path(interface, meta.object_path)
        if meta.since is not None and interface.doc is not None and interface.doc.since not in (None, meta.since):
            self.report(
                "M309",
                interface.doc,
                f"the doc comment says Since: {interface.doc.since}, the annotation {meta.since}",
                owners,
            )
        self.check_kind(interface, meta)
        interface_release = parse_release(meta.since) if meta.since is not None else None
        for member in interface.members:
            since = member.since
            if since is None:
                self.report(
                    "M308",
                    member,
                    f"{member.kind} {member.name} does not say since which QEMU release it exists",
                    (interface, member),
                )
            elif (
                interface_release is not None
                and (release := parse_release(since)) is not None
                and release < interface_release
            ):
                self.report(
                    "M307",
                    member,
                    f"{member.name} is marked Since {since}, before its interface ({meta.since})",
                    (interface, member),
                )

    def check_kind(self, interface: Interface, meta: InterfaceMetadata) -> None:
        """The kind must agree with the roles: the policy grants a management interface to the
        manager alone, so an interface QEMU calls or serves cannot be one, and one that only the
        manager calls must say that it is (its documentation and trust notes depend on it)."""
        if meta.kind is None or not meta.callers or not meta.implementers:
            return
        annotation = next(a for a in interface.annotations if a.name == NAMESPACE + "Kind")
        callers, implementers = set(meta.callers), set(meta.implementers)
        problem = None
        if meta.kind == "management":
            if "qemu" in callers or "qemu" in implementers:
                problem = "a management interface is never called or served by QEMU, but its Callers or Implementers list qemu"
            elif callers != {"manager"}:
                others = ", ".join(sorted(callers - {"manager"}))
                problem = f"a management interface is called by the manager only, but its Callers also list {others}"
        elif callers == {"manager"}:
            problem = "only the manager calls this interface: it is a management interface (Kind management)"
        if problem:
            self.report("M320", annotation, problem, (interface,))

    def check_object_path(self, interface: Interface, path: str) -> None:
        elements = interface.name.split(".")
        versioned = next((i for i, e in enumerate(elements) if i and _VERSIONED.search(e)), None)
        annotation = next(a for a in interface.annotations if a.name == NAMESPACE + "ObjectPath")
        if path == "/":
            self.report(
                "G402",
                annotation,
                "object exported at '/'; export it under the versioned name's path",
                (interface,),
            )
        elif versioned is not None:
            base = "/" + "/".join(elements[: versioned + 1])
            if not (path == base or path.startswith(base + "/") or path.startswith(base + "_")):
                self.report(
                    "G402",
                    self.attribute(annotation, "value"),
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
                        self.attribute(member, "name"),
                        f"{member.kind} {member.name} is defined twice in {interface.name}{where}; also defined at {self.at(earlier)}",
                        (interface, member),
                    )
                    break
        properties = {p.name for p in interface.properties}
        signals = {s.name: s for s in interface.signals}
        for member in interface.members:
            owners = (interface, member)
            if isinstance(member, Method) and member.name[:3] in ("Get", "Set") and member.name[3:] in properties:
                self.report("G406", member, f"method {member.name} shadows property {member.name[3:]}", owners)
            if isinstance(member, Signal):
                if member.name.endswith("Changed") and member.name[:-7] in properties:
                    self.report(
                        "G407",
                        member,
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
                            member,
                            f"signals {member.name}/{removed.name} re-implement org.freedesktop.DBus.ObjectManager",
                            owners,
                        )
                if _DONE_SIGNAL.match(member.name):
                    self.report(
                        "G413",
                        member,
                        f"signal {member.name} looks like a reply delivered as a signal",
                        owners,
                    )

    # --- members --------------------------------------------------------------------------------

    def check_member(self, interface: Interface, member: Member) -> None:
        owners = (interface, member)
        element = member
        if isinstance(member, Property):
            if problem := member_name_error(member.name, "property name"):
                self.report(
                    "S103",
                    self.attribute(element, "name"),
                    f"invalid property name {member.name!r}: {problem}",
                    owners,
                )
            elif not _CAMEL.match(member.name):
                self.report("G403", self.attribute(element, "name"), f"property {member.name} is not CamelCase", owners)
            self.check_type(member.type, element, f"property {member.name}", owners)
            self.check_annotations("property", member.annotations, owners)
            self.check_doc(member.doc, member, member.name, owners, has_args=False)
            if self.qemu and validation_note(member) is None and member.type != "b":
                self.report(
                    "M305",
                    element,
                    f"property {member.name} ({member.type}) has no validation note for its readers",
                    owners,
                )
            return
        if problem := member_name_error(member.name, f"{member.kind} name"):
            self.report(
                "S102",
                self.attribute(element, "name"),
                f"invalid {member.kind} name {member.name!r}: {problem}",
                owners,
            )
        elif not _CAMEL.match(member.name):
            self.report(
                "G403", self.attribute(element, "name"), f"{member.kind} {member.name} is not CamelCase", owners
            )
        self.check_annotations(member.kind, member.annotations, owners)
        if isinstance(member, Method) and member.no_reply and member.out_args:
            self.report("S111", element, f"method {member.name} is NoReply but has out args", owners)
        self.check_doc(member.doc, member, member.name, owners, has_args=True)
        self.check_args(interface, member)

    def check_args(self, interface: Interface, member: Method | Signal) -> None:
        args = member.args
        if not args:
            return
        documented = {p.name for p in member.doc.params} if member.doc else None
        conditional = any(arg.conditions for arg in args)
        names: dict[tuple[str, str], Arg] = {}
        for arg in args:
            owners = (interface, member, arg)
            error = single_type_error(arg.type)
            if error is not None:
                self.report_type_error(error, arg.type, arg, _arg_label(member, arg), owners)
            if arg.annotations:
                self.check_annotations("arg", arg.annotations, owners)
            name = arg.name
            if name is None:
                self.report("D504", arg, f"{_arg_label(member, arg)} has no name", owners)
            else:
                for platform in sorted(platforms_of(arg.conditions)) if conditional else ("",):
                    earlier = names.setdefault((name, platform), arg)
                    if earlier is not arg:
                        self.report(
                            "U703",
                            self.attribute(arg, "name"),
                            f"{member.name} has two args named {name!r}; also defined at {self.at(earlier)}",
                            owners,
                        )
                        break
                if not _SNAKE.match(name):
                    self.report(
                        "G404",
                        self.attribute(arg, "name"),
                        f"{_arg_label(member, arg)} is not lower_snake_case",
                        owners,
                    )
                elif self.has_type_prefix(arg):
                    self.report(
                        "G405",
                        self.attribute(arg, "name"),
                        f"{_arg_label(member, arg)} encodes its type in its name",
                        owners,
                    )
                if documented is not None and name not in documented:
                    self.report(
                        "D503", arg, f"{_arg_label(member, arg)} is not documented (no '@{name}:' line)", owners
                    )
            if self.qemu and arg.type != "b" and validation_note(arg) is None:
                label = _arg_label(member, arg)
                self.report("M305", arg, f"{label} ({arg.type}) has no validation note for its receiver", owners)
        self.check_arg_design(interface, member, conditional)

    @staticmethod
    def has_type_prefix(arg: Arg) -> bool:
        assert arg.name is not None
        prefix, sep, rest = arg.name.partition("_")
        if not sep or not rest:
            return False
        return prefix in _TYPE_WORDS or (len(prefix) == 1 and arg.type.startswith(prefix))

    def check_arg_design(self, interface: Interface, member: Method | Signal, conditional: bool) -> None:
        """Guideline findings over the member's signature on each platform; a finding that holds on
        several platforms is reported once."""
        findings: dict[tuple[str, int], tuple[str, Arg, str]] = {}  # the first one per (code, arg)
        if any(arg.type[:1] == "a" for arg in member.args):
            # Distinct arg lists; hashing a whole arg tuple is costly, so only when there are variants.
            variants = list({args for _, args in signature_variants(member)}) if conditional else [member.args]
            for args in variants:
                for direction in (Direction.IN, Direction.OUT):
                    same = [a for a in args if a.direction is direction]
                    if not any(a.type[:1] == "a" for a in same):
                        continue
                    arrays = [a for a in same if a.type[:1] == "a" and a.type[:2] != "a{" and a.type != "ay"]
                    if len(arrays) >= 2:
                        names = ", ".join(repr(a.name) for a in arrays)
                        message = f"{member.name} has parallel arrays {names}"
                        findings.setdefault(("G410", id(arrays[1])), ("G410", arrays[1], message))
                    for arg in same:
                        if arg.name and arg.type in _INTEGER and _LENGTH_NAME.match(arg.name):
                            message = f"arg {arg.name!r} of {member.name} carries a length beside an array"
                            findings.setdefault(("G411", id(arg)), ("G411", arg, message))
        if isinstance(member, Method):
            for arg in member.args:
                type_ = arg.type
                if type_ == "b" and arg.direction is Direction.IN:
                    message = f"boolean arg {arg.name!r} of {member.name}: prefer an enum"
                    findings.setdefault(("G409", id(arg)), ("G409", arg, message))
                elif (
                    arg.direction is Direction.OUT
                    and arg.name
                    and (type_ == "b" or type_ in _INTEGER)
                    and _STATUS_NAME.match(arg.name)
                ):
                    message = f"out arg {arg.name!r} of {member.name} reports success or failure"
                    findings.setdefault(("G412", id(arg)), ("G412", arg, message))
        for code, arg, message in findings.values():
            self.report(code, arg, message, (interface, member, arg))

    def report_type_error(
        self,
        error: SignatureError,
        type_: str,
        element: Located,
        label: str,
        owners: Sequence[Interface | Member | Arg],
    ) -> None:
        code = "S106" if "exactly one complete type" in error.message else "S105"
        where = self.attribute(element, "type", error.position + 1 if code == "S105" else 0)
        self.report(code, where, f"{label}: invalid type {type_!r}: {error.message}", owners)

    def check_type(self, type_: str, element: Located, label: str, owners: Sequence[Interface | Member | Arg]) -> None:
        error = single_type_error(type_)
        if error is not None:
            self.report_type_error(error, type_, element, label, owners)

    # --- documentation --------------------------------------------------------------------------

    def check_doc(
        self,
        doc: DocComment | None,
        element: Interface | Member,
        name: str,
        owners: Sequence[Interface | Member | Arg],
        has_args: bool,
    ) -> None:
        kind = element.kind
        code = "D501" if kind == "interface" else "D502"
        if doc is None:
            self.report(code, element, f"{kind} {name} is not documented", owners)
            return
        if doc.symbol and not _symbol_matches(doc.symbol, name):
            self.report("D507", doc, f"doc comment names {doc.symbol!r} but documents {kind} {name}", owners)
        if doc.is_empty and not doc.params:
            self.report(code, doc, f"doc comment of {kind} {name} is empty", owners)
        if doc.since is not None and not _VERSION.match(doc.since):
            self.report("D509", doc, f"Since value {doc.since!r} is not a version", owners)
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


def _arg_label(member: Method | Signal, arg: Arg) -> str:
    return f"arg {arg.name!r} of {member.name}" if arg.name else f"unnamed arg of {member.name}"


def _symbol_matches(symbol: str, name: str) -> bool:
    return symbol == name or symbol.endswith(("." + name, ":" + name))


def _docs(interface: Interface) -> Iterator[DocComment]:
    if interface.doc:
        yield interface.doc
    for member in interface.members:
        if member.doc:
            yield member.doc


class Located(Protocol):
    """A model object with a location and a kind naming its element (``method``, ``arg``...)."""

    @property
    def location(self) -> Location: ...

    @property
    def kind(self) -> str: ...


_MARKERS = {"doc comment": "<!--"}


def _refine(source: SourceText | None, obj: Located) -> Location:
    if source is None or obj.location.column:
        return obj.location
    return source.refine(obj.location, _MARKERS.get(obj.kind) or "<" + obj.kind)


class _Columns:
    """Exact columns for the cross-file rules, whose summaries keep lines only (a summary crosses
    processes and goes into the cache; columns cost a pass over each file's lines, and only the
    files with a cross-file finding need one).  The source of each path is the parsed one when
    there is one, else the file read again through `read_file` (regular files only, bounded),
    once; `SourceText.refine` remembers each line it searched, so this is linear in the
    findings.  A file that cannot be read again keeps its findings' lines."""

    def __init__(self, sources: Mapping[str, SourceText]) -> None:
        self.sources: dict[str, SourceText | None] = dict(sources)

    def find(self, location: Location, marker: str = "<interface") -> Location:
        if location.column:
            return location
        path = location.path
        if path in self.sources:
            source = self.sources[path]
        else:
            try:
                source = SourceText(path, read_file(path).decode("utf-8"))
            except (FileRefused, UnicodeDecodeError):
                source = None
            self.sources[path] = source
        return source.refine(location, marker) if source is not None else location

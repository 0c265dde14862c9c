"""Parse D-Bus introspection XML into the model, safely.

Hostile input is expected: no DTD or network is loaded, files are bounded in size, and lxml's own
depth and text limits stay on.  Entities are refused before lxml sees the file, except internal
ones whose text is plain (`entities` accounts for every declaration and bounds the expansion).
Problems become located `Diagnostic` values, never exceptions: a broken file yields a
`ParsedFile` with no node and its diagnostics, and the caller goes on with the next file.

Building the model is linear in the file: every node is visited once, and the positions of
diagnostics are found without rescanning a line per node (see `_TreeBuilder`).
"""

from __future__ import annotations

import os
import re
from dataclasses import field
from typing import Any, cast

from lxml import etree

from ..diagnostics.diagnostic import Diagnostic, Location, Severity
from ..diagnostics.frozen import record
from ..diagnostics.rules import diagnostic
from .doccomment import read_doc_comment
from .files import MAX_FILE_SIZE, FileRefused, read_file
from .introspection import (
    GDBUS_DOCSTRING,
    GDBUS_DOCSTRING_SHORT,
    Access,
    Annotation,
    Arg,
    Condition,
    Conditions,
    Direction,
    DocComment,
    EmitsChanged,
    Interface,
    Member,
    Method,
    Node,
    Property,
    Signal,
    effective_emits,
)
from .source import SourceText

__all__ = ["MAX_FILE_SIZE", "ParsedFile", "parse_bytes", "parse_file", "parse_string"]

_ATTRIBUTES = {
    "node": frozenset({"name"}),
    "interface": frozenset({"name"}),
    "method": frozenset({"name"}),
    "signal": frozenset({"name"}),
    "property": frozenset({"name", "type", "access"}),
    "arg": frozenset({"name", "type", "direction"}),
    "annotation": frozenset({"name", "value"}),
}
_REQUIRED = {
    "interface": ("name",),
    "method": ("name",),
    "signal": ("name",),
    "property": ("name", "type", "access"),
    "arg": ("type",),
    "annotation": ("name", "value"),
}
# Text is never meaningful in introspection data; one XPath query (in C) finds any that is not
# whitespace, instead of reading every node's text and tail from Python.
_STRAY_TEXT = etree.XPath("//text()[normalize-space()]")
# (allowed, required) attribute names per element.
_SHAPES = {kind: (allowed, frozenset(_REQUIRED.get(kind, ()))) for kind, allowed in _ATTRIBUTES.items()}
_CONDITIONALS = frozenset({"if", "ifdef", "ifndef", "elseif", "else", "endif"})
_ACCESS = {a.value: a for a in Access}


# lxml 5 expands internal entities only, refusing external ones itself too ("internal"); lxml-stubs
# knows only the boolean.  Older lxml has just True, safe here as `read_entities` refused the rest.
_RESOLVE_INTERNAL: bool = cast(bool, "internal") if etree.LXML_VERSION >= (5,) else True


def _make_parser(expand_entities: bool = False) -> etree.XMLParser:
    # Not collect_ids=False: with it libxml2 tries to load the external DTD of the standard
    # freedesktop DOCTYPE (and fails, as network loading is off), rejecting common valid files.
    return etree.XMLParser(
        # Only for a file whose every declaration `read_entities` accepted: plain-text internal
        # entities.  lxml 5 can refuse external ones itself as well ("internal").
        resolve_entities=_RESOLVE_INTERNAL if expand_entities else False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
        remove_pis=False,
        strip_cdata=True,
        # Whitespace between elements is meaningless here; dropping it while parsing leaves half
        # the nodes to allocate, walk and search for stray text (which is never blank).
        remove_blank_text=True,
    )


_PARSER = _make_parser()
_EXPANDING_PARSER = _make_parser(expand_entities=True)
#: Entity names a note lists before it says how many more there are.
_NAMES_SHOWN = 5


@record(frozen=True)
class ParsedFile:
    """The result of parsing one file: the tree (None when unusable) and what went wrong."""

    path: str
    node: Node | None
    diagnostics: tuple[Diagnostic, ...]
    source: SourceText | None = field(default=None, compare=False, repr=False)

    @property
    def interfaces(self) -> tuple[Interface, ...]:
        return tuple(self.node.walk_interfaces()) if self.node else ()

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        """The parse errors: a file with any is incomplete, and comparing it would mislead."""
        return tuple(d for d in self.diagnostics if d.severity is Severity.ERROR)


def parse_file(path: str | os.PathLike[str]) -> ParsedFile:
    """Read and parse one file.  I/O problems are diagnostics too (`files.read_file`)."""
    name = os.fspath(path)
    try:
        data = read_file(name)
    except FileRefused as refused:
        return ParsedFile(name, None, (refused.diagnostic(),))
    return parse_bytes(data, name)


def parse_string(text: str, path: str = "<string>") -> ParsedFile:
    return parse_bytes(text.encode("utf-8", "surrogatepass"), path)


def parse_bytes(data: bytes, path: str = "<bytes>") -> ParsedFile:
    """Parse XML held in memory; ``path`` names it in diagnostics."""
    if len(data) > MAX_FILE_SIZE:
        return _failed(path, "X004", Location(path), f"file is larger than {MAX_FILE_SIZE // (1024 * 1024)} MiB")
    if not data or data.isspace():
        return _failed(path, "X005", Location(path, 1, 1), "file is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        return _failed(
            path,
            "X002",
            Location(path, line, column),
            f"invalid UTF-8 byte 0x{data[error.start]:02x}",
        )
    source = SourceText(path, text)
    parser = _PARSER
    notes: list[Diagnostic] = []
    # XML is case-sensitive: only "<!ENTITY" declares an entity.
    if b"<!ENTITY" in data:
        from .entities import read_entities  # rare: not worth its regular expressions at start-up

        entities = read_entities(text, MAX_FILE_SIZE)
        if entities.refused is not None:
            offset, reason = entities.refused
            return _failed(path, "X003", source.location_of(offset), reason)
        if entities.declared:
            names = sorted(entities.declared)
            shown = ", ".join(names[:_NAMES_SHOWN]) + (
                f" and {len(names) - _NAMES_SHOWN} more" if len(names) > _NAMES_SHOWN else ""
            )
            message = f"the file declares entit{'ies' if len(names) > 1 else 'y'} {shown}, expanded as plain text"
            notes.append(diagnostic("X023", source.location_of(entities.first), message))
            parser = _EXPANDING_PARSER
            # XML 1.0 (2.11) reads every CR LF as LF before parsing; libxml2 skips that inside
            # an entity's literal text, and would expand it into two spaces where XML has one.
            # Lines stay where they are: a CR LF and a LF are one line break each.
            data = data.replace(b"\r\n", b"\n")
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as error:
        line, column = error.position
        return _failed(path, "X001", Location(path, line or 1, column or 0), _syntax_message(error))
    except ValueError as error:
        return _failed(path, "X001", Location(path, 1, 1), str(error))
    parsed = _TreeBuilder.build_model(path, source, root)
    if notes:
        return ParsedFile(path, parsed.node, (*notes, *parsed.diagnostics), source)
    return parsed


# libxml2's messages, reworded where they give advice this tool cannot take (it offers no way to
# lift libxml2's limits: they are what keeps hostile files cheap).
_LIBXML2_ADVICE = (
    (
        re.compile(r"Excessive depth in document: (\d+),? use XML_PARSE_HUGE option"),
        r"elements nested deeper than \1 levels",
    ),
    (re.compile(r"[,;]?\s*\(?use XML_PARSE_HUGE option\)?", re.IGNORECASE), ""),
)


def _syntax_message(error: etree.XMLSyntaxError) -> str:
    """libxml2's message for an X001, on one line, without its position (the location has it)
    and without advice about parser options."""
    message = str(error.msg or error)
    message = re.sub(r",? line \d+, column \d+\s*$", "", message.strip())
    for pattern, replacement in _LIBXML2_ADVICE:
        message = pattern.sub(replacement, message)
    return " ".join(message.split())


def _failed(path: str, code: str, location: Location, message: str) -> ParsedFile:
    return ParsedFile(path, None, (diagnostic(code, location, message),))


@record
class _Block:
    """An open ``<?if?>`` block: the tests in force where it opened, the tests of its earlier
    branches (negated) and the current test."""

    outer: Conditions
    earlier: list[Condition]
    current: Condition | None
    location: Location
    marker: str
    has_else: bool = False

    def conditions(self) -> Conditions:
        return (*self.outer, *self.earlier, *((self.current,) if self.current else ()))


def _negate(condition: Condition) -> Condition:
    return Condition(condition.kind, condition.expression, not condition.negated, condition.location)


# (element, tag, location, conditions, doc comment) of one element child; a plain tuple because
# the builder makes one per element and this is the checker's hot path.
_Child = tuple[etree._Element, str, Location, Conditions, "DocComment | None"]


class _Dense(Exception):
    """Raised by a `_TreeBuilder` that locates by line when it meets a second node on one line."""


#: Conditions in force at once beyond which further ``<?if?>`` tests are not applied (X024).
MAX_CONDITIONS = 16


class _TreeBuilder:
    """Builds the model from an lxml tree, visiting every node once.

    Locations: lxml only knows lines, and for a start tag the line where it *ends*.  While every
    line holds one node (element, comment, processing instruction), the model keeps that line (a
    comment's start line is derived exactly from its text) and leaves the column 0;
    `SourceText.refine` finds the exact start when a diagnostic is printed.  A second node on a
    line would make that ambiguous, so the build starts over locating every node exactly
    (`_node_starts`: one pass over the text and one over the tree): a file is built at most
    twice, and linearly both times.  Nearly every file has one node per line and pays nothing.

    ``starts`` (node -> location) selects the exact mode; ``first_on_line`` (line -> node) is the
    line mode's bookkeeping, None when neither applies (the exact pairing failed on some odd
    construct: lines only, columns found by `refine`, still linear)."""

    def __init__(
        self, path: str, source: SourceText, starts: dict[Any, Location] | None = None, by_line: bool = True
    ) -> None:
        self.path = path
        self.source = source
        self.diagnostics: list[Diagnostic] = []
        self.starts = starts
        self.first_on_line: dict[int, object] | None = {} if by_line and starts is None else None
        self.deep_conditions_reported = False

    @classmethod
    def build_model(cls, path: str, source: SourceText, root: etree._Element) -> ParsedFile:
        try:
            return cls(path, source).build(root)
        except _Dense:
            pass
        starts = _node_starts(source, root)
        return cls(path, source, starts, by_line=False).build(root)

    def report(self, code: str, location: Location, message: str, marker: str = "") -> None:
        if marker and not location.column:
            location = self.source.refine(location, marker)
        self.diagnostics.append(diagnostic(code, location, message))

    def located(self, node: Any, line: int) -> Location:
        """The location of a node that starts on ``line``: exact in the exact mode, else the line
        (after making sure no other node claimed it)."""
        if self.starts is not None:
            exact = self.starts.get(node)
            if exact is not None:
                return exact
        elif self.first_on_line is not None and self.first_on_line.setdefault(line, node) is not node:
            raise _Dense
        return Location(self.path, line, 0)

    def where(self, node: Any) -> Location:
        """The exact start of any node, for a diagnostic about text beside it."""
        if self.starts is not None and (exact := self.starts.get(node)) is not None:
            return exact
        if isinstance(node, etree._Comment):
            return self.source.refine(Location(self.path, _comment_line(node), 0), "<!--")
        if isinstance(node, etree._ProcessingInstruction):
            return self.source.refine(Location(self.path, _pi_line(node), 0), "<?" + _target(node))
        if isinstance(node, etree._Entity):
            return self.source.refine(Location(self.path, _line(node), 0), "&")
        return self.source.refine(Location(self.path, _line(node), 0), "<" + _local(node))

    # --- entry ------------------------------------------------------------------------------

    def build(self, root: etree._Element) -> ParsedFile:
        for sibling in [*root.itersiblings(preceding=True)][::-1]:
            if isinstance(sibling, etree._ProcessingInstruction):
                where = self.located(sibling, _pi_line(sibling))
                self.report(
                    "X021", where, f"processing instruction <?{_target(sibling)}?> outside <node> is ignored", "<?"
                )
        tag = _local(root)
        location = self.located(root, _line(root))
        if tag != "node" or root.tag != "node":
            self.report("X013", location, f"root element is <{tag}>, expected <node>", "<" + tag)
            return ParsedFile(self.path, None, tuple(self.diagnostics), self.source)
        node = self.node(root, location, ())
        for text, owner, parent, is_text in _stray_texts(root):
            self.stray_text(text, owner, parent, is_text)
        return ParsedFile(self.path, node, tuple(self.diagnostics), self.source)

    # --- children, conditionals and doc comments ---------------------------------------------------

    def children(self, parent: etree._Element, parent_tag: str, location: Location) -> list[_Child]:
        """The element children of ``parent`` with their branch conditions and doc comments."""
        result: list[_Child] = []
        blocks: list[_Block] = []
        pending: DocComment | None = None
        conditions: Conditions = ()
        first_on_line, path = self.first_on_line, self.path
        for child in parent:
            tag = child.tag
            if tag.__class__ is str:
                # located(), inlined for the line mode: this loop runs once per element of
                # every file.  setdefault() returns another node when the line already has one.
                line: int = child.sourceline or 0  # type: ignore[assignment,unreachable]
                if first_on_line is None:
                    location = self.located(child, line)
                elif first_on_line.setdefault(line, child) is child:
                    location = Location(path, line, 0)
                else:
                    raise _Dense
                result.append((child, tag, location, conditions, pending))
                pending = None
            elif isinstance(child, etree._Comment):
                comment = child.text or ""
                where = self.located(child, _comment_line(child))
                end_of_line = comment.find("\n")
                if not where.column and comment[: end_of_line if end_of_line >= 0 else len(comment)].strip():
                    # The doc comment's text starts on the line of its "<!--": its columns there
                    # count from where "<!--" is.
                    where = self.source.refine(where, "<!--")
                doc = read_doc_comment(comment, where)
                if doc is not None:
                    if pending is not None:
                        self.orphan(pending)
                    pending = doc
            elif isinstance(child, etree._ProcessingInstruction):
                self.conditional(child, blocks, conditions)
                conditions = self.conditions_in_force(blocks)
            elif isinstance(child, etree._Entity):
                where = self.located(child, _line(child))
                self.report("X003", where, f"entity reference {child.text} is not expanded", "&")
        if pending is not None:
            self.orphan(pending)
        for block in blocks:
            self.report("X020", block.location, "<?if?> is never closed by <?endif?> at this level", block.marker)
        return result

    def conditions_in_force(self, blocks: list[_Block]) -> Conditions:
        """The tests of the innermost open block and of the blocks around it.  Bounded: each
        element keeps its own tuple of them, so deep nesting or long ``<?elseif?>`` chains would
        cost time and memory quadratic in the file; real files use one or two."""
        if not blocks:
            return ()
        conditions = blocks[-1].conditions()
        if len(conditions) <= MAX_CONDITIONS:
            return conditions
        if not self.deep_conditions_reported:
            self.deep_conditions_reported = True
            message = f"more than {MAX_CONDITIONS} <?if?> conditions in force at once; only the first {MAX_CONDITIONS} are applied"
            self.report("X024", blocks[-1].location, message, blocks[-1].marker)
        return conditions[:MAX_CONDITIONS]

    def orphan(self, doc: DocComment) -> None:
        self.report("D506", doc.location, f"doc comment for {doc.symbol!r} documents nothing", "<!--")

    def stray_text(self, text: str, owner: Any, parent: etree._Element, is_text: bool) -> None:
        """X014 at the text itself, searched for only between the node it follows (the parent's
        start tag, or the sibling whose tail it is) and the next node after it: the windows of
        all texts cover each part of the file at most once per level of nesting, where searching
        from the parent's start (or to the end of the file, for text written with references)
        made many texts quadratic."""
        snippet = text.strip().splitlines()[0]
        start = self.source.offset_of(self.where(owner))
        after = (parent[0] if len(parent) else _following(parent)) if is_text else _following(owner)
        end = self.source.offset_of(self.where(after)) if after is not None else len(self.source.text)
        found = self.source.text.find(snippet, max(start, 0), end if end > start else len(self.source.text))
        location = self.source.location_of(found) if found >= 0 else self.where(owner)
        self.report("X014", location, f"unexpected text {snippet[:40]!r} inside <{_local(parent)}>")

    def conditional(self, pi: etree._ProcessingInstruction, blocks: list[_Block], in_force: Conditions) -> None:
        target = _target(pi)
        expression = (pi.text or "").strip()
        location = self.located(pi, _pi_line(pi))
        marker = "<?" + target
        if target not in _CONDITIONALS:
            self.report("X021", location, f"processing instruction <?{target}?> is ignored", marker)
            return
        if target in ("if", "ifdef", "ifndef"):
            condition = Condition(target, expression, False, location)
            self.check_condition(condition, marker)
            blocks.append(_Block(in_force, [], condition, location, marker))
            return
        if not blocks:
            self.report("X020", location, f"<?{target}?> without a matching <?if?> at this level", marker)
            return
        block = blocks[-1]
        if target == "endif":
            blocks.pop()
            return
        if block.has_else:
            self.report("X020", location, f"<?{target}?> after <?else?>", marker)
            return
        if block.current is not None and len(block.earlier) < MAX_CONDITIONS:
            block.earlier.append(_negate(block.current))
        if target == "elseif":
            block.current = Condition("if", expression, False, location)
            self.check_condition(block.current, marker)
        else:
            block.current = None
            block.has_else = True

    def check_condition(self, condition: Condition, marker: str) -> None:
        if not condition.expression:
            self.report("X022", condition.location, f"<?{condition.kind}?> without a condition", marker)
        elif not condition.understood:
            self.report("X022", condition.location, f"condition {condition.expression!r} is not understood", marker)

    # --- attributes ---------------------------------------------------------------------------

    def attributes(self, element: etree._Element, kind: str, location: Location) -> dict[str, str] | None:
        """The element's attributes; None (after a diagnostic) when a required one is missing."""
        attributes: dict[str, str] = dict(element.items())  # type: ignore[arg-type]
        allowed, required_set = _SHAPES[kind]
        keys = attributes.keys()
        if keys <= allowed and required_set <= keys:
            return attributes  # the common case, decided by two set comparisons
        if not attributes.keys() <= allowed:
            for key in list(attributes):
                if key.startswith("{"):
                    del attributes[key]  # namespaced: an extension
                elif key not in allowed:
                    del attributes[key]
                    where = self.source.attribute_location(self.source.refine(location, "<" + kind), key)
                    self.report("X011", where, f"unknown attribute {key!r} on <{kind}>")
        required = _REQUIRED.get(kind, ())
        missing = [key for key in required if key not in attributes]
        if missing:
            what = " and ".join(repr(key) for key in missing)
            self.report("X012", location, f"<{kind}> is missing its {what} attribute", "<" + kind)
            return None
        return attributes

    def unexpected(self, child: _Child, parent: str) -> None:
        tag = child[1]
        if tag.startswith("{"):
            return
        if tag in _ATTRIBUTES:
            self.report("X015", child[2], f"<{tag}> is not allowed inside <{parent}>", "<" + tag)
        else:
            self.report("X010", child[2], f"unknown element <{tag}> inside <{parent}> is ignored", "<" + tag)

    def attribute_location(self, location: Location, kind: str, attribute: str) -> Location:
        return self.source.attribute_location(self.source.refine(location, "<" + kind), attribute)

    # --- elements -----------------------------------------------------------------------------

    def node(self, element: etree._Element, location: Location, conditions: Conditions) -> Node:
        attributes = self.attributes(element, "node", location) or {}
        interfaces: list[Interface] = []
        nodes: list[Node] = []
        for child in self.children(element, "node", location):
            child_element, tag, child_location, child_conditions, _ = child
            if tag == "interface":
                if (interface := self.interface(child)) is not None:
                    interfaces.append(interface)
            elif tag == "node":
                if "name" not in child_element.attrib:
                    self.report("X012", child_location, "child <node> is missing its 'name' attribute", "<node")
                nodes.append(self.node(child_element, child_location, child_conditions))
            else:
                self.unexpected(child, "node")
        return Node(attributes.get("name"), tuple(interfaces), tuple(nodes), location, conditions)

    def annotation(self, child: _Child, parent: str) -> Annotation | None:
        element, _, location, conditions, _ = child
        attributes = self.attributes(element, "annotation", location)
        if len(element):
            for grandchild in self.children(element, "annotation", location):
                self.unexpected(grandchild, "annotation")
        if attributes is None:
            return None
        return Annotation(attributes["name"], attributes["value"], location, conditions)

    def interface(self, child: _Child) -> Interface | None:
        element, _, location, conditions, doc = child
        attributes = self.attributes(element, "interface", location)
        children = self.children(element, "interface", location)
        if attributes is None:
            return None
        annotations: list[Annotation] = []
        for grandchild in children:
            if grandchild[1] == "annotation" and (annotation := self.annotation(grandchild, "interface")) is not None:
                annotations.append(annotation)
        default_emits = effective_emits(annotations, EmitsChanged.TRUE)
        members: list[Member] = []
        for grandchild in children:
            tag = grandchild[1]
            member: Member | None
            if tag in ("method", "signal"):
                member = self.method_or_signal(grandchild, tag)
            elif tag == "property":
                member = self.property(grandchild, default_emits)
            elif tag == "annotation":
                continue
            else:
                self.unexpected(grandchild, "interface")
                continue
            if member is not None:
                members.append(member)
        frozen = tuple(annotations)
        return Interface(
            attributes["name"], tuple(members), frozen, _with_docstring(doc, frozen, location), location, conditions
        )

    def method_or_signal(self, child: _Child, kind: str) -> Method | Signal | None:
        element, _, location, conditions, doc = child
        attributes = self.attributes(element, kind, location)
        children = self.children(element, kind, location) if len(element) else []
        if attributes is None:
            return None
        args: list[Arg] = []
        annotations: list[Annotation] = []
        for grandchild in children:
            tag = grandchild[1]
            if tag == "arg":
                if (arg := self.arg(grandchild, kind)) is not None:
                    args.append(arg)
            elif tag == "annotation":
                if (annotation := self.annotation(grandchild, kind)) is not None:
                    annotations.append(annotation)
            else:
                self.unexpected(grandchild, kind)
        frozen = tuple(annotations)
        cls = Method if kind == "method" else Signal
        return cls(
            attributes["name"], tuple(args), frozen, _with_docstring(doc, frozen, location), location, conditions
        )

    def leaf_annotations(self, element: etree._Element, kind: str, location: Location) -> tuple[Annotation, ...]:
        """The annotations of an arg or property, reporting any other child."""
        if not len(element):
            return ()
        annotations: list[Annotation] = []
        for grandchild in self.children(element, kind, location):
            if grandchild[1] != "annotation":
                self.unexpected(grandchild, kind)
            elif (annotation := self.annotation(grandchild, kind)) is not None:
                annotations.append(annotation)
        return tuple(annotations)

    def arg(self, child: _Child, parent: str) -> Arg | None:
        element, _, location, conditions, _ = child
        attributes = self.attributes(element, "arg", location)
        annotations = self.leaf_annotations(element, "arg", location)
        if attributes is None:
            return None
        direction = Direction.IN if parent == "method" else Direction.OUT
        raw = attributes.get("direction")
        if raw is not None:
            if raw == "in":
                direction = Direction.IN
            elif raw == "out":
                direction = Direction.OUT
            else:
                where = self.attribute_location(location, "arg", "direction")
                self.report("S107", where, f"invalid direction {raw!r}; expected 'in' or 'out'")
            if parent == "signal" and direction is Direction.IN:
                where = self.attribute_location(location, "arg", "direction")
                self.report("S109", where, "signal args cannot have direction 'in'")
                direction = Direction.OUT
        return Arg(attributes.get("name"), attributes["type"], direction, annotations, location, conditions)

    def property(self, child: _Child, default_emits: EmitsChanged) -> Property | None:
        element, _, location, conditions, doc = child
        attributes = self.attributes(element, "property", location)
        annotations = self.leaf_annotations(element, "property", location)
        if attributes is None:
            return None
        access = _ACCESS.get(attributes["access"])
        if access is None:
            where = self.attribute_location(location, "property", "access")
            value = attributes["access"]
            hint = " ('readonly' is not a D-Bus access value)" if value == "readonly" else ""
            self.report("S108", where, f"invalid access {value!r}{hint}; expected read, write or readwrite")
            return None
        emits = effective_emits(annotations, default_emits)
        return Property(
            attributes["name"],
            attributes["type"],
            access,
            emits,
            annotations,
            _with_docstring(doc, annotations, location),
            location,
            conditions,
        )


def _local(element: etree._Element) -> str:
    return str(element.tag).rpartition("}")[2]


def _stray_texts(root: etree._Element) -> list[tuple[str, Any, etree._Element, bool]]:
    """Every non-blank text in the tree: (text, the node it follows, the element it sits in,
    whether it is that element's first text).  Text inside an element of another namespace is that
    extension's own (``<doc:para>`` of the freedesktop documentation extension), not stray."""
    found: list[tuple[str, Any, etree._Element, bool]] = []
    for text in cast("list[Any]", _STRAY_TEXT(root)):
        owner = text.getparent()
        parent = owner if text.is_text else owner.getparent()
        if parent is not None and not str(parent.tag).startswith("{"):
            found.append((str(text), owner, parent, bool(text.is_text)))
    return found


def _following(node: Any) -> Any:
    """The first node after ``node`` and everything inside it, in document order (None at the
    end): its next sibling, or its parent's, and so on up."""
    while node is not None:
        after = node.getnext()
        if after is not None:
            return after
        node = node.getparent()
    return None


def _node_starts(source: SourceText, root: etree._Element) -> dict[Any, Location] | None:
    """Where every node of the document starts (node -> location), from one pass over the text
    (`SourceText.node_tokens`) paired with lxml's nodes in document order; None when the two
    disagree anywhere (then nothing is guessed).  Linear in the file: the tokens come in text
    order, so their lines are counted on with one cursor instead of searched for."""
    nodes: list[Any] = [*root.itersiblings(preceding=True)][::-1]
    nodes += root.iter()
    nodes += root.itersiblings()
    starts: dict[Any, Location] = {}
    line_starts, path = source.line_starts, source.path
    index, count, line, lines = 0, len(nodes), 1, len(line_starts)
    for kind, name, offset in source.node_tokens():
        node = nodes[index] if index < count else None
        if kind == "entity":
            # A reference lxml expanded (or a predefined one) is no node.
            if not isinstance(node, etree._Entity) or node.name != name:
                continue
        elif kind == "element":
            if node is None or node.tag.__class__ is not str or _local(node) != name.rpartition(":")[2]:
                return None
        elif kind == "comment":
            if not isinstance(node, etree._Comment):
                return None
        elif not isinstance(node, etree._ProcessingInstruction) or _target(node) != name:
            return None
        while line < lines and line_starts[line] <= offset:
            line += 1
        starts[node] = Location(path, line, offset - line_starts[line - 1] + 1)
        index += 1
    return starts if index == count else None


def _comment_line(comment: etree._Comment) -> int:
    """The line a comment starts on (lxml reports the line where it ends)."""
    return max(_line(comment) - (comment.text or "").count("\n"), 1)


def _pi_line(pi: etree._ProcessingInstruction) -> int:
    """The line a processing instruction starts on (lxml reports the line where it ends)."""
    return max(_line(pi) - (pi.text or "").count("\n"), 1)


def _line(node: etree._Element) -> int:
    """``sourceline`` as an int (lxml-stubs leaves the attribute untyped)."""
    line: int | None = node.sourceline  # type: ignore[assignment]
    return line or 0


def _target(pi: etree._ProcessingInstruction) -> str:
    target = pi.target
    return target if isinstance(target, str) else target.decode("utf-8", "replace")


def _value(annotations: tuple[Annotation, ...], name: str) -> str | None:
    for annotation in annotations:
        if annotation.name == name:
            return annotation.value
    return None


def _with_docstring(
    doc: DocComment | None, annotations: tuple[Annotation, ...], location: Location
) -> DocComment | None:
    """Fall back to gdbus-codegen's ``org.gtk.GDBus.DocString`` annotations when there is no comment."""
    if doc is not None:
        return doc
    body = _value(annotations, GDBUS_DOCSTRING)
    short = _value(annotations, GDBUS_DOCSTRING_SHORT)
    if body is None and short is None:
        return None
    return DocComment("", short or "", location.line, (), body or "", location.line, None, None, location)

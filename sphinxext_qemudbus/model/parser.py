"""Parse D-Bus introspection XML into the model, safely.

Hostile input is expected: entities are never expanded (a file that declares any is rejected before
lxml sees it), no DTD or network is loaded, files are bounded in size, and lxml's own depth and text
limits stay on.  Problems become located `Diagnostic` values, never exceptions: a broken file yields
a `ParsedFile` with no node and its diagnostics, and the caller goes on with the next file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, cast

from lxml import etree

from ..diagnostics.diagnostic import Diagnostic, Location, Severity
from ..diagnostics.rules import diagnostic
from .doccomment import read_doc_comment
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

MAX_FILE_SIZE = 4 * 1024 * 1024

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


def _make_parser() -> etree.XMLParser:
    # Not collect_ids=False: with it libxml2 tries to load the external DTD of the standard
    # freedesktop DOCTYPE (and fails, as network loading is off), rejecting common valid files.
    return etree.XMLParser(
        resolve_entities=False,
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


@dataclass(frozen=True, slots=True)
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
    """Read and parse one file.  I/O problems are diagnostics too."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as stream:
            # Size the read from the file: read(MAX_FILE_SIZE + 1) would allocate the whole bound
            # for every file.  A file that reports no size (a pipe) is read up to the bound.
            size = os.fstat(stream.fileno()).st_size
            if size > MAX_FILE_SIZE:
                message = f"file is larger than {MAX_FILE_SIZE // (1024 * 1024)} MiB"
                return ParsedFile(name, None, (diagnostic("X004", Location(name), message),))
            data = stream.read(size + 1 if size else MAX_FILE_SIZE + 1)
    except OSError as error:
        reason = error.strerror or str(error)
        return ParsedFile(name, None, (diagnostic("X006", Location(name), f"cannot read file: {reason}"),))
    return parse_bytes(data, name)


def parse_string(text: str, path: str = "<string>") -> ParsedFile:
    return parse_bytes(text.encode("utf-8"), path)


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
    # XML is case-sensitive: only "<!ENTITY" declares an entity.
    if (declaration := data.find(b"<!ENTITY")) >= 0:
        return _failed(
            path,
            "X003",
            source.location_of(len(data[:declaration].decode("utf-8"))),
            "entity declarations are not allowed (never expanded: possible entity-expansion or external-entity attack)",
        )
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as error:
        line, column = error.position
        message = str(error.msg or error).strip()
        message = re.sub(r",? line \d+, column \d+$", "", message)
        return _failed(path, "X001", Location(path, line or 1, column or 0), message)
    except ValueError as error:
        return _failed(path, "X001", Location(path, 1, 1), str(error))
    return _TreeBuilder(path, source).build(root)


def _failed(path: str, code: str, location: Location, message: str) -> ParsedFile:
    return ParsedFile(path, None, (diagnostic(code, location, message),))


@dataclass(slots=True)
class _Block:
    """An open ``<?if?>`` block: the tests of earlier branches (negated) and the current test."""

    earlier: list[Condition]
    current: Condition | None
    location: Location
    marker: str
    has_else: bool = False

    def conditions(self) -> list[Condition]:
        return self.earlier + ([self.current] if self.current else [])


def _negate(condition: Condition) -> Condition:
    return Condition(condition.kind, condition.expression, not condition.negated, condition.location)


# (element, tag, location, conditions, doc comment) of one element child; a plain tuple because
# the builder makes one per element and this is the checker's hot path.
_Child = tuple[etree._Element, str, Location, Conditions, "DocComment | None"]


class _TreeBuilder:
    """Builds the model from an lxml tree, visiting every node once.

    Locations: lxml only knows lines, and for a start tag the line where it *ends*.  The model
    keeps that line (a comment's start line is derived exactly from its text) and leaves the
    column 0; `SourceText.refine` finds the exact start when a diagnostic is printed.  The one
    case the line cannot settle, a second element with the same tag on the same line, is
    located exactly here, by counting."""

    def __init__(self, path: str, source: SourceText) -> None:
        self.path = path
        self.source = source
        self.diagnostics: list[Diagnostic] = []
        # The tag of the first element on each line, and for a line with several elements how
        # many of each tag came so far: nearly every line holds one element, and then no tuple
        # key is made.
        self.first_on_line: dict[int, str] = {}
        self.on_line: dict[tuple[int, str], int] = {}

    def report(self, code: str, location: Location, message: str, marker: str = "") -> None:
        if marker and not location.column:
            location = self.source.refine(location, marker)
        self.diagnostics.append(diagnostic(code, location, message))

    def element_location(self, element: etree._Element, tag: str) -> Location:
        line = _line(element)
        first = self.first_on_line.get(line)
        if first is None:
            self.first_on_line[line] = tag
            return Location(self.path, line, 0)
        return self.later_on_line(line, tag, first)

    def later_on_line(self, line: int, tag: str, first: str) -> Location:
        """The location of an element on a line that already had one."""
        key = (line, tag)
        earlier = self.on_line.get(key, 1 if first == tag else 0)
        self.on_line[key] = earlier + 1
        if earlier:
            return self.source.nth_on_line(line, "<" + tag, earlier)
        return Location(self.path, line, 0)

    # --- entry ------------------------------------------------------------------------------

    def build(self, root: etree._Element) -> ParsedFile:
        for sibling in root.itersiblings(preceding=True):
            if isinstance(sibling, etree._ProcessingInstruction):
                where = Location(self.path, _pi_line(sibling), 0)
                self.report(
                    "X021", where, f"processing instruction <?{_target(sibling)}?> outside <node> is ignored", "<?"
                )
        tag = _local(root)
        location = self.element_location(root, tag)
        if tag != "node" or root.tag != "node":
            self.report("X013", location, f"root element is <{tag}>, expected <node>", "<" + tag)
            return ParsedFile(self.path, None, tuple(self.diagnostics), self.source)
        node = self.node(root, location, ())
        for text, parent in _stray_texts(root):
            self.stray_text(text, _local(parent), Location(self.path, _line(parent), 0))
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
                # element_location(), inlined: this loop runs once per element of every file.
                line: int = child.sourceline or 0  # type: ignore[assignment,unreachable]
                first = first_on_line.get(line)
                if first is None:
                    first_on_line[line] = tag
                    location = Location(path, line, 0)
                else:
                    location = self.later_on_line(line, tag, first)
                result.append((child, tag, location, conditions, pending))
                pending = None
            elif isinstance(child, etree._Comment):
                comment = child.text or ""
                start = Location(path, max(_line(child) - comment.count("\n"), 1), 0)
                doc = read_doc_comment(comment, start)
                if doc is not None:
                    if pending is not None:
                        self.orphan(pending)
                    pending = doc
            elif isinstance(child, etree._ProcessingInstruction):
                self.conditional(child, blocks)
                conditions = tuple(c for block in blocks for c in block.conditions())
            elif isinstance(child, etree._Entity):
                self.report(
                    "X003", Location(self.path, _line(child), 0), f"entity reference {child.text} is not expanded", "&"
                )
        if pending is not None:
            self.orphan(pending)
        for block in blocks:
            self.report("X020", block.location, "<?if?> is never closed by <?endif?> at this level", block.marker)
        return result

    def orphan(self, doc: DocComment) -> None:
        self.report("D506", doc.location, f"doc comment for {doc.symbol!r} documents nothing", "<!--")

    def stray_text(self, text: str, parent_tag: str, parent: Location) -> None:
        snippet = text.strip().splitlines()[0]
        start = self.source.offset_of(self.source.refine(parent, "<" + parent_tag))
        found = self.source.text.find(snippet, max(start, 0))
        location = self.source.location_of(found) if found >= 0 else parent
        self.report("X014", location, f"unexpected text {snippet[:40]!r} inside <{parent_tag}>")

    def conditional(self, pi: etree._ProcessingInstruction, blocks: list[_Block]) -> None:
        target = _target(pi)
        expression = (pi.text or "").strip()
        location = Location(self.path, _pi_line(pi), 0)
        marker = "<?" + target
        if target not in _CONDITIONALS:
            self.report("X021", location, f"processing instruction <?{target}?> is ignored", marker)
            return
        if target in ("if", "ifdef", "ifndef"):
            condition = Condition(target, expression, False, location)
            self.check_condition(condition, marker)
            blocks.append(_Block([], condition, location, marker))
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
        if block.current is not None:
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


def _stray_texts(root: etree._Element) -> list[tuple[str, etree._Element]]:
    """Every non-blank text in the tree, with the element it sits in."""
    found: list[tuple[str, etree._Element]] = []
    for text in cast("list[Any]", _STRAY_TEXT(root)):
        owner = text.getparent()
        parent = owner if text.is_text else owner.getparent()
        if parent is not None:
            found.append((str(text), parent))
    return found


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

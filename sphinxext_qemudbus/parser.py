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

from lxml import etree

from .diagnostics import Diagnostic, Location
from .doccomment import is_doc_comment, parse_doc_comment
from .model import (
    EMITS_CHANGED_SIGNAL,
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
)
from .rules import diagnostic
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
_CONDITIONALS = frozenset({"if", "ifdef", "ifndef", "elseif", "else", "endif"})
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
_EMITS = {e.value: e for e in EmitsChanged}


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


def parse_file(path: str | os.PathLike[str]) -> ParsedFile:
    """Read and parse one file.  I/O problems are diagnostics too."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as stream:
            data = stream.read(MAX_FILE_SIZE + 1)
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
    if not data.strip():
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
    if match := _ENTITY_DECLARATION.search(data):
        return _failed(
            path,
            "X003",
            source.location_of(len(data[: match.start()].decode("utf-8"))),
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
    has_else: bool = False

    def conditions(self) -> list[Condition]:
        return self.earlier + ([self.current] if self.current else [])


def _negate(condition: Condition) -> Condition:
    return Condition(condition.kind, condition.expression, not condition.negated, condition.location)


@dataclass(slots=True)
class _Child:
    element: etree._Element
    location: Location
    conditions: Conditions
    doc: DocComment | None


class _TreeBuilder:
    def __init__(self, path: str, source: SourceText) -> None:
        self.path = path
        self.source = source
        self.diagnostics: list[Diagnostic] = []
        self.starts: dict[etree._Element, Location] = {}

    def locate(self, root: etree._Element) -> None:
        """Find where every node starts, in one pass in document order (see `SourceText`)."""
        source = self.source
        for node in root.iter():
            line = _line(node)
            if isinstance(node, etree._Comment):
                location = source.advance_to("<!--", line)
                if location.column == 0:
                    location = Location(self.path, max(line - (node.text or "").count("\n"), 1), 0)
                source.skip_past("-->")
            elif isinstance(node, etree._ProcessingInstruction):
                location = source.advance_to("<?" + _target(node), line)
            elif isinstance(node, etree._Entity):
                location = Location(self.path, line, 0)
            else:
                location = source.advance_to("<" + _local(node), line)
            self.starts[node] = location

    def report(self, code: str, location: Location, message: str) -> None:
        self.diagnostics.append(diagnostic(code, location, message))

    # --- entry ------------------------------------------------------------------------------

    def build(self, root: etree._Element) -> ParsedFile:
        for sibling in root.itersiblings(preceding=True):
            if isinstance(sibling, etree._ProcessingInstruction):
                where = Location(self.path, _line(sibling), 0)
                self.report("X021", where, f"processing instruction <?{_target(sibling)}?> outside <node> is ignored")
        self.locate(root)
        if not isinstance(root.tag, str) or root.tag != "node":
            location = self.starts[root]
            self.report("X013", location, f"root element is <{_local(root)}>, expected <node>")
            return ParsedFile(self.path, None, tuple(self.diagnostics), self.source)
        node = self.node(root, self.starts[root], ())
        return ParsedFile(self.path, node, tuple(self.diagnostics), self.source)

    # --- children, conditionals and doc comments ---------------------------------------------------

    def children(self, parent: etree._Element) -> list[_Child]:
        """The element children of ``parent`` with their branch conditions and doc comments."""
        self.check_text(parent.text, parent)
        result: list[_Child] = []
        blocks: list[_Block] = []
        pending: DocComment | None = None
        for child in parent:
            if isinstance(child, etree._Comment):
                text = child.text or ""
                if is_doc_comment(text):
                    if pending is not None:
                        self.orphan(pending)
                    pending = parse_doc_comment(text, self.starts[child])
            elif isinstance(child, etree._ProcessingInstruction):
                self.conditional(child, blocks)
            elif isinstance(child, etree._Entity):
                self.report("X003", self.starts[child], f"entity reference {child.text} is not expanded")
            else:
                location = self.starts[child]
                conditions = tuple(c for block in blocks for c in block.conditions())
                result.append(_Child(child, location, conditions, pending))
                pending = None
            self.check_text(child.tail, parent)
        if pending is not None:
            self.orphan(pending)
        for block in blocks:
            self.report("X020", block.location, "<?if?> is never closed by <?endif?> at this level")
        return result

    def orphan(self, doc: DocComment) -> None:
        self.report("D506", doc.location, f"doc comment for {doc.symbol!r} documents nothing")

    def check_text(self, text: str | None, parent: etree._Element) -> None:
        if text and text.strip():
            snippet = text.strip().splitlines()[0]
            start = self.source.offset_of(self.starts[parent])
            found = self.source.text.find(snippet, max(start, 0))
            location = self.source.location_of(found) if found >= 0 else self.starts[parent]
            self.report("X014", location, f"unexpected text {snippet[:40]!r} inside <{_local(parent)}>")

    def conditional(self, pi: etree._ProcessingInstruction, blocks: list[_Block]) -> None:
        target = _target(pi)
        expression = (pi.text or "").strip()
        location = self.starts[pi]
        if target not in _CONDITIONALS:
            self.report("X021", location, f"processing instruction <?{target}?> is ignored")
            return
        if target in ("if", "ifdef", "ifndef"):
            condition = Condition(target, expression, False, location)
            self.check_condition(condition)
            blocks.append(_Block([], condition, location))
            return
        if not blocks:
            self.report("X020", location, f"<?{target}?> without a matching <?if?> at this level")
            return
        block = blocks[-1]
        if target == "endif":
            blocks.pop()
            return
        if block.has_else:
            self.report("X020", location, f"<?{target}?> after <?else?>")
            return
        if block.current is not None:
            block.earlier.append(_negate(block.current))
        if target == "elseif":
            block.current = Condition("if", expression, False, location)
            self.check_condition(block.current)
        else:
            block.current = None
            block.has_else = True

    def check_condition(self, condition: Condition) -> None:
        if not condition.expression:
            self.report("X022", condition.location, f"<?{condition.kind}?> without a condition")
        elif not condition.understood:
            self.report("X022", condition.location, f"condition {condition.expression!r} is not understood")

    # --- attributes ---------------------------------------------------------------------------

    def attributes(self, element: etree._Element, kind: str, location: Location) -> dict[str, str] | None:
        """The element's attributes; None (after a diagnostic) when a required one is missing."""
        attributes: dict[str, str] = {}
        allowed = _ATTRIBUTES[kind]
        for raw_key, value in element.attrib.items():
            key = str(raw_key)
            if key.startswith("{"):
                continue  # namespaced: an extension
            if key not in allowed:
                self.report(
                    "X011", self.source.attribute_location(location, key), f"unknown attribute {key!r} on <{kind}>"
                )
                continue
            attributes[key] = str(value)
        missing = [key for key in _REQUIRED.get(kind, ()) if key not in attributes]
        if missing:
            what = " and ".join(repr(key) for key in missing)
            self.report("X012", location, f"<{kind}> is missing its {what} attribute")
            return None
        return attributes

    def unexpected(self, child: _Child, parent: str) -> None:
        tag = child.element.tag
        if not isinstance(tag, str) or tag.startswith("{"):
            return
        if tag in _ATTRIBUTES:
            self.report("X015", child.location, f"<{tag}> is not allowed inside <{parent}>")
        else:
            self.report("X010", child.location, f"unknown element <{tag}> inside <{parent}> is ignored")

    # --- elements -----------------------------------------------------------------------------

    def node(self, element: etree._Element, location: Location, conditions: Conditions) -> Node:
        attributes = self.attributes(element, "node", location) or {}
        interfaces: list[Interface] = []
        nodes: list[Node] = []
        for child in self.children(element):
            tag = child.element.tag
            if tag == "interface":
                if (interface := self.interface(child)) is not None:
                    interfaces.append(interface)
            elif tag == "node":
                if "name" not in child.element.attrib:
                    self.report("X012", child.location, "child <node> is missing its 'name' attribute")
                nodes.append(self.node(child.element, child.location, child.conditions))
            else:
                self.unexpected(child, "node")
        return Node(attributes.get("name"), tuple(interfaces), tuple(nodes), location, conditions)

    def annotations(self, children: list[_Child], parent: str) -> tuple[Annotation, ...]:
        result: list[Annotation] = []
        for child in children:
            if child.element.tag != "annotation":
                continue
            attributes = self.attributes(child.element, "annotation", child.location)
            for grandchild in self.children(child.element):
                self.unexpected(grandchild, "annotation")
            if attributes is not None:
                result.append(Annotation(attributes["name"], attributes["value"], child.location, child.conditions))
        return tuple(result)

    def interface(self, child: _Child) -> Interface | None:
        attributes = self.attributes(child.element, "interface", child.location)
        children = self.children(child.element)
        if attributes is None:
            return None
        annotations = self.annotations(children, "interface")
        default_emits = _EMITS.get(_value(annotations, EMITS_CHANGED_SIGNAL) or "", EmitsChanged.TRUE)
        members: list[Member] = []
        for grandchild in children:
            tag = grandchild.element.tag
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
        doc = _with_docstring(child.doc, annotations, child.location)
        return Interface(attributes["name"], tuple(members), annotations, doc, child.location, child.conditions)

    def method_or_signal(self, child: _Child, kind: str) -> Method | Signal | None:
        attributes = self.attributes(child.element, kind, child.location)
        children = self.children(child.element)
        if attributes is None:
            return None
        args: list[Arg] = []
        for grandchild in children:
            tag = grandchild.element.tag
            if tag == "arg":
                if (arg := self.arg(grandchild, kind)) is not None:
                    args.append(arg)
            elif tag != "annotation":
                self.unexpected(grandchild, kind)
        annotations = self.annotations(children, kind)
        doc = _with_docstring(child.doc, annotations, child.location)
        cls = Method if kind == "method" else Signal
        return cls(attributes["name"], tuple(args), annotations, doc, child.location, child.conditions)

    def arg(self, child: _Child, parent: str) -> Arg | None:
        attributes = self.attributes(child.element, "arg", child.location)
        children = self.children(child.element)
        for grandchild in children:
            if grandchild.element.tag != "annotation":
                self.unexpected(grandchild, "arg")
        if attributes is None:
            return None
        default = Direction.IN if parent == "method" else Direction.OUT
        direction = default
        raw = attributes.get("direction")
        if raw is not None:
            try:
                direction = Direction(raw)
            except ValueError:
                where = self.source.attribute_location(child.location, "direction")
                self.report("S107", where, f"invalid direction {raw!r}; expected 'in' or 'out'")
            if parent == "signal" and direction is Direction.IN:
                where = self.source.attribute_location(child.location, "direction")
                self.report("S109", where, "signal args cannot have direction 'in'")
                direction = Direction.OUT
        annotations = self.annotations(children, "arg")
        return Arg(attributes.get("name"), attributes["type"], direction, annotations, child.location, child.conditions)

    def property(self, child: _Child, default_emits: EmitsChanged) -> Property | None:
        attributes = self.attributes(child.element, "property", child.location)
        children = self.children(child.element)
        for grandchild in children:
            if grandchild.element.tag != "annotation":
                self.unexpected(grandchild, "property")
        if attributes is None:
            return None
        try:
            access = Access(attributes["access"])
        except ValueError:
            where = self.source.attribute_location(child.location, "access")
            hint = " ('readonly' is not a D-Bus access value)" if attributes["access"] == "readonly" else ""
            self.report(
                "S108", where, f"invalid access {attributes['access']!r}{hint}; expected read, write or readwrite"
            )
            return None
        annotations = self.annotations(children, "property")
        emits = _EMITS.get(_value(annotations, EMITS_CHANGED_SIGNAL) or "", default_emits)
        doc = _with_docstring(child.doc, annotations, child.location)
        return Property(
            attributes["name"], attributes["type"], access, emits, annotations, doc, child.location, child.conditions
        )


def _local(element: etree._Element) -> str:
    return str(element.tag).rpartition("}")[2]


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

"""The floor of a pure-Python checker: the same model, built from the same lxml tree, with no check.

`sphinxext_qemudbus.model.parser` validates as it builds (attributes, element placement, conditional
blocks, several elements on one line, stray text) and the checker then runs every rule.  This
builder does none of that: it assumes a valid file and only turns the tree into the model's
objects, doc comments parsed by the real `read_doc_comment`.  Its time is what any pure-Python
checker with this model pays before its first rule; the benchmark prints it beside the check.

It is a measuring device, not a parser: it handles the constructs the benchmark corpus (copies of
the registry) uses and raises on anything else.  ``--verify`` compares its model with the real
parser's for every file, so the floor is known to do the same work.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lxml import etree

from sphinxext_qemudbus.diagnostics.diagnostic import Location
from sphinxext_qemudbus.model.doccomment import read_doc_comment
from sphinxext_qemudbus.model.introspection import (
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
from sphinxext_qemudbus.model.parser import _PARSER, parse_bytes

_ACCESS = {a.value: a for a in Access}
_Child = tuple[etree._Element, str, Location, Conditions, "DocComment | None"]


def _children(path: str, parent: etree._Element) -> list[_Child]:
    """Element children with their location, ``<?if?>`` conditions and doc comment."""
    result: list[_Child] = []
    doc: DocComment | None = None
    blocks: list[list[Condition]] = []  # per open block: negated earlier tests, then the current one
    conditions: Conditions = ()
    for child in parent:
        tag = child.tag
        if isinstance(tag, str):
            result.append((child, tag, Location(path, child.sourceline or 0, 0), conditions, doc))
            doc = None
        elif isinstance(child, etree._Comment):
            text = child.text or ""
            start = Location(path, max((child.sourceline or 0) - text.count("\n"), 1), 0)
            doc = read_doc_comment(text, start) or doc
        elif isinstance(child, etree._ProcessingInstruction):
            target = child.target
            location = Location(path, max((child.sourceline or 0) - (child.text or "").count("\n"), 1), 0)
            if target == "if":
                blocks.append([Condition("if", (child.text or "").strip(), False, location)])
            elif target == "else":
                current = blocks[-1].pop()
                blocks[-1].append(Condition(current.kind, current.expression, True, current.location))
            elif target == "endif":
                blocks.pop()
            else:
                raise ValueError(f"{path}: <?{target}?> is beyond this measuring builder")
            conditions = tuple(c for block in blocks for c in block)
    return result


def _annotations(path: str, element: etree._Element) -> tuple[Annotation, ...]:
    if not len(element):
        return ()
    return tuple(
        Annotation(e.get("name"), e.get("value"), loc, cond) for e, _, loc, cond, _ in _children(path, element)
    )


def build(data: bytes, path: str) -> Node:
    """The model of a valid file, without checking anything."""
    data.decode("utf-8")  # the parser decodes the source too, for its column lookups
    root = etree.fromstring(data, _PARSER)
    interfaces: list[Interface] = []
    for element, _, location, conditions, doc in _children(path, root):
        annotations: list[Annotation] = []
        members: list[Member] = []
        for child, tag, child_location, child_conditions, child_doc in _children(path, element):
            attributes = dict(child.items())
            if tag == "annotation":
                annotations.append(
                    Annotation(attributes["name"], attributes["value"], child_location, child_conditions)
                )
            elif tag == "property":
                own = _annotations(path, child)
                emits = effective_emits(own, effective_emits(annotations, EmitsChanged.TRUE))
                access = _ACCESS[attributes["access"]]
                members.append(
                    Property(
                        attributes["name"],
                        attributes["type"],
                        access,
                        emits,
                        own,
                        child_doc,
                        child_location,
                        child_conditions,
                    )
                )
            else:
                default = Direction.IN if tag == "method" else Direction.OUT
                args: list[Arg] = []
                member_annotations: list[Annotation] = []
                for grandchild, kind, where, when, _ in _children(path, child) if len(child) else ():
                    values = dict(grandchild.items())
                    if kind == "annotation":
                        member_annotations.append(Annotation(values["name"], values["value"], where, when))
                        continue
                    direction = values.get("direction")
                    args.append(
                        Arg(
                            values.get("name"),
                            values["type"],
                            default if direction is None else Direction(direction),
                            _annotations(path, grandchild),
                            where,
                            when,
                        )
                    )
                cls = Method if tag == "method" else Signal
                members.append(
                    cls(
                        attributes["name"],
                        tuple(args),
                        tuple(member_annotations),
                        child_doc,
                        child_location,
                        child_conditions,
                    )
                )
        interfaces.append(Interface(element.get("name"), tuple(members), tuple(annotations), doc, location, conditions))
    return Node(root.get("name"), tuple(interfaces), (), Location(path, root.sourceline or 0, 0), ())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--verify", action="store_true", help="compare with the real parser's model")
    args = parser.parse_args(argv)
    for path in sorted(args.corpus.glob("*.xml")):
        data = path.read_bytes()
        node = build(data, str(path))
        if args.verify and node != parse_bytes(data, str(path)).node:
            print(f"{path}: the floor builder's model differs from the parser's", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Entries of the model (`render`) as nodes: the domain's own ``dbus:*`` descriptions, run with
content built here instead of parsed from generated reST.

Only doc comments are parsed (`rst.DocParser`), as untrusted text (`untrusted`); everything
around them is built node by node, so a name or an annotation value from the XML is never read
as markup.  The nodes are the ones a parse of the equivalent reST gave (the same HTML: the
comparison of ``bench/compare_builds.py``), built without a state machine per field list, option
block and note, which is where the time of a parse goes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from docutils import nodes
from docutils.nodes import Node
from sphinx import addnodes
from sphinx.util.docutils import SphinxDirective

from ..check.references import Reference, roles_in
from .domain import COLUMN, Generated, run_generated
from .render import DesignNotes, DocText, Entry, Field, Note, NoteItem
from .rst import DocParser
from .untrusted import sweep, untrusted_markup

# The characters the reST of these notes escaped (`render.escape`): docutils keeps an escaped
# character in its text node behind a NUL, which no output shows and which keeps the smart-quotes
# transform off it.  Plain text here is stored the same way.
_ESCAPED = re.compile(r"([\\*`|_])")


def describe(directive: SphinxDirective, path: str, entries: Sequence[Entry]) -> list[Node]:
    """The nodes of ``entries`` from the XML file ``path``, for ``directive``'s place."""
    describer = _Describer(directive, path)
    try:
        with untrusted_markup(directive.state.document), describer.parser.located():
            result = [node for entry in entries for node in describer.entry(entry)]
    finally:
        describer.parser.close()
    holder = nodes.Element()  # so that even a node at the top can be replaced
    holder.extend(result)
    sweep(holder)
    return list(holder.children)


class _Describer:
    def __init__(self, directive: SphinxDirective, path: str) -> None:
        self.directive = directive
        self.path = path
        self.parser = DocParser(directive.state, path)

    def entry(self, entry: Entry) -> list[Node]:
        generated = Generated(self.path, entry.line, entry.args, lambda: self.content(entry), self.parser.inline)
        return run_generated(entry.kind, entry.argument, entry.options, generated, self.directive)

    def content(self, entry: Entry) -> list[Node]:
        """The content of a description, in the order its reST had it: the short description,
        the body, the fields, the trust note, the notes of hooks, the design notes, then the
        members.  What follows
        the body goes where a parse would have put it: into a field list the body ends with, and
        into the last section a title in the body opened."""
        holder = nodes.Element()
        if entry.short is not None:
            container = nodes.container(entry.short.text, classes=["dbus-short"])
            container.source, container.line = self.path, entry.short.line
            container.extend(self.paragraph(entry.short, container))
            holder += container
        if entry.body is not None:
            holder.extend(_located(self.parser.body(entry.body.text, entry.body.line), entry.body.references))
        target: nodes.Element = holder
        while len(target) and isinstance(target[-1], nodes.section):
            target = target[-1]
        if entry.fields:
            last = target[-1] if len(target) else None
            field_list = last if isinstance(last, nodes.field_list) else None
            if field_list is None:
                field_list = nodes.field_list()
                target += field_list
            for field in entry.fields:
                field_list += self.field(field)
        if entry.trust is not None:
            target += self.note(entry.trust, "dbus-trust")
        for kind, note in entry.notes:
            target += self.note(note, kind)
        if entry.design is not None:
            target += self.design(entry.design)
        for member in entry.members:
            target.extend(self.entry(member))
        return list(holder.children)

    def paragraph(self, text: DocText, parent: nodes.Element) -> list[Node]:
        return _located(self.parser.paragraph(text.text, text.line, parent), text.references)

    def field(self, field: Field) -> nodes.field:
        node = nodes.field()
        node.source, node.line = self.path, field.line
        node += nodes.field_name(field.name, "", nodes.Text(field.name))
        body = nodes.field_body(field.doc.text if field.doc is not None else field.text)
        node += body
        if field.doc is not None:
            body.extend(self.paragraph(field.doc, body))
        elif field.text:
            body += self.plain_paragraph([_plain(field.text)], field.line)
        if field.note is not None:
            body += self.note(field.note, "dbus-validation")
        return node

    def plain_paragraph(self, children: list[Node], line: int) -> nodes.paragraph:
        paragraph = nodes.paragraph("", "", *children)
        paragraph.source, paragraph.line = self.path, line
        return paragraph

    def note(self, note: Note, kind: str) -> nodes.container:
        """A container of ``kind`` holding "**label** text", then its items as a bullet list."""
        container = nodes.container(note.text, classes=[kind])
        container.source, container.line = self.path, note.line
        children: list[Node] = [nodes.strong(note.label, "", _plain(note.label))]
        if note.text:
            children.append(_plain(" " + note.text))
        container += self.plain_paragraph(children, note.line)
        if note.items:
            items = nodes.bullet_list(bullet="-")
            items.extend(self.note_item(item, note.line) for item in note.items)
            container += items
        return container

    def note_item(self, item: NoteItem, line: int) -> nodes.list_item:
        """First line (its code an inline literal), paragraph, and the command as a code block,
        as the ``code-block`` directive makes it."""
        head: list[Node] = [_plain(item.before), nodes.literal(item.code, item.code), _plain(item.after)]
        block = nodes.literal_block(item.command, item.command, language=item.language)
        block["force"] = False
        block["highlight_args"] = {}
        block.source, block.line = self.path, line
        return nodes.list_item(
            "",
            self.plain_paragraph([child for child in head if child.astext()], line),
            self.plain_paragraph([_plain(item.text)], line),
            block,
        )

    def design(self, notes: DesignNotes) -> nodes.admonition:
        """The "Design note" admonition: one item per waiver, the args it covers as code."""
        admonition = nodes.admonition("", classes=["dbus-design-note"])
        admonition.source, admonition.line = self.path, notes.line
        title = nodes.title("Design note", "", nodes.Text("Design note"))
        title.source, title.line = self.path, notes.line
        admonition += title
        items = nodes.bullet_list(bullet="-")
        for subjects, text, line in notes.items:
            children: list[Node] = []
            for index, subject in enumerate(subjects):
                if index:
                    children.append(nodes.Text(", "))
                children.append(nodes.literal(subject, subject))
            children.append(_plain(f": {text}" if subjects else text))
            item = nodes.list_item("", self.plain_paragraph(children, line))
            items += item
        admonition += items
        return admonition


def _located(parsed: list[Node], references: Sequence[Reference]) -> list[Node]:
    """Give each ``:dbus:*:`` reference of ``parsed`` (docutils knows only the line of its
    paragraph) its exact place: the line and column the checker finds it at, so that Sphinx and
    ``qemu-dbus check`` report a finding about it at the same place.  The checker reads the
    roles in the raw text, references are in it in the same order as the nodes; a role that the
    parse left as text (in literal text, a literal block, a comment) takes its turn there."""
    if not references:
        return parsed
    index = 0

    def take(role: str, target: str) -> Reference | None:
        nonlocal index
        key = (role, _target_key(target))
        for found in range(index, len(references)):
            reference = references[found]
            if (reference.role, _target_key(reference.target)) == key:
                index = found + 1
                return reference
        return None

    for top in parsed:
        stack = [top]
        while stack:
            node = stack.pop()
            if isinstance(node, addnodes.pending_xref):
                if node.get("refdomain") == "dbus":
                    reference = take(node["reftype"], node["reftarget"])
                    if reference is not None:
                        node.line = reference.line
                        if reference.column:
                            node[COLUMN] = reference.column
                continue  # its text is the reference's title
            if isinstance(node, nodes.Text):
                text = node.astext()
                if ":dbus:" in text:
                    for role, target in roles_in(text):
                        take(role, target)
            elif isinstance(node, nodes.Element):
                stack.extend(reversed(node.children))
    return parsed


def _target_key(target: str) -> str:
    """A reference's target as both sides read it (the role drops a ``~`` and a trailing ``()``)."""
    target = " ".join(target.split()).lstrip("~")
    return target[:-2] if target.endswith("()") else target


def _plain(text: str) -> nodes.Text:
    return nodes.Text(_ESCAPED.sub("\x00\\1", text))

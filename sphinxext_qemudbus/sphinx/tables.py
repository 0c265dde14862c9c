"""Docutils tables built from rows of nodes, for every directive that renders one (the registry,
the trust tables, the deployments)."""

from __future__ import annotations

from collections.abc import Sequence

from docutils import nodes
from docutils.nodes import Node


def table(
    headers: Sequence[str], rows: Sequence[Sequence[Sequence[Node]]], widths: Sequence[int], kind: str
) -> nodes.table:
    """A table with a header row; ``kind`` becomes a class next to ``dbus-table`` for styling."""
    # "colwidths-given" makes the HTML writers emit the widths below instead of leaving them out.
    result = nodes.table(classes=["dbus-table", kind, "colwidths-given"])
    group = nodes.tgroup(cols=len(headers))
    result += group
    for width in widths:
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    group += head
    head += row([[nodes.Text(header)] for header in headers])
    body = nodes.tbody()
    group += body
    for cells in rows:
        body += row(cells)
    return result


def row(cells: Sequence[Sequence[Node]]) -> nodes.row:
    """A table row; in each cell, runs of inline nodes share one paragraph and block nodes
    (a bullet list) stand on their own."""
    result = nodes.row()
    for cell in cells:
        entry = nodes.entry()
        paragraph: nodes.paragraph | None = None
        for part in cell:
            if isinstance(part, (nodes.Text, nodes.Inline)):
                if paragraph is None:
                    paragraph = nodes.paragraph()
                    entry += paragraph
                paragraph += part
            else:
                paragraph = None
                entry += part
        result += entry
    return result

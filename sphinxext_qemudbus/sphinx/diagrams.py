"""The diagram directives: pictures of who may call whom, and of the order of calls.

``.. dbus-deployment-diagram::``
    ``:deployment:`` (a built-in name or a ``.toml`` path; default ``default``) and ``:scenario:``
    (one of the three; without it, the three scenarios side by side): the processes of the
    deployment in a frame per user, an arrow per caller → implementer, drawn by
    `diagrams.deployment` from the links the policy generator turns into rules.
``.. dbus-sequence:: [title]``
    the content is a short description of an order of calls naming registry members
    (`diagrams.sequence`); every name is checked and a wrong one is a located warning (R605-R609).

Each diagram becomes a `dbus_diagram` node whose children are its text equivalent (a table, each
D-Bus name a cross-reference).  HTML builders draw the inline SVG, its links taken from the
resolved cross-references, and keep the table in a ``<details>`` element; every other builder
(LaTeX, text, man...) gets the title and the table instead, never a broken image.

Also here, because it is the same kind of HTML polish: in every ``dbus-table``, reference and
signature, names wrap at their dots (``<wbr>``) instead of in the middle of a word, and tables
scroll sideways in their own box instead of pushing a phone's page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from docutils import nodes
from docutils.nodes import Node
from docutils.parsers.rst import directives
from sphinx import addnodes
from sphinx.util.docutils import SphinxDirective

from .._version import __version__
from ..check.references import KIND_ROLES
from ..diagrams.deployment import deployment_diagram
from ..diagrams.lanes import Diagram, Span
from ..diagrams.sequence import parse_sequence
from ..diagrams.svg import escape, render_svg
from ..security.deployment import SCENARIOS
from .policy import _PolicyDirective
from .reporting import log_diagnostic
from .tables import table

if TYPE_CHECKING:
    from sphinx.application import Sphinx
    from sphinx.writers.html5 import HTML5Translator


class dbus_diagram(nodes.General, nodes.Element):
    """One diagram: ``diagram`` (a `lanes.Diagram`), ``svg_id`` (unique in its page) and, once
    references are resolved, ``hrefs``; its children are the text equivalent."""


class dbus_diagram_row(nodes.General, nodes.Element):
    """Diagrams to compare, side by side where the page is wide enough."""


NAME_CLASS = "dbus-diagram-name"
#: The class of a literal in a reference entry that is a dotted name, which may break at its dots.
NAME_LITERAL = "dbus-name"
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)+\Z")


def _name_node(span: Span, docname: str) -> Node:
    literal = nodes.literal(span.text, span.text, classes=[NAME_CLASS])
    literal["dbus-name"] = span.target
    role = KIND_ROLES.get(span.kind or "", "iface")
    link = addnodes.pending_xref(
        "",
        literal,
        refdomain="dbus",
        reftype=role,
        reftarget=span.target,
        refexplicit=True,
        refwarn=False,
        refdoc=docname,
    )
    link["dbus:optional"] = True  # linked where the project documents it, plain text elsewhere
    return link


def _cell(spans: Sequence[Span], docname: str) -> list[Node]:
    return [_name_node(span, docname) if span.target else nodes.Text(span.text) for span in spans]


def diagram_node(diagram: Diagram, directive: SphinxDirective) -> dbus_diagram:
    node = dbus_diagram()
    node["diagram"] = diagram
    node["svg_id"] = f"dbus-diagram-{directive.env.new_serialno('dbus-diagram')}"
    directive.set_source_info(node)
    docname = directive.env.docname
    rows = [[_cell(cell, docname) for cell in row] for row in diagram.table.rows]
    # Columns as wide as their longest text (within reason), as the other generated tables do.
    widths = [len(header) for header in diagram.table.headers]
    for row in diagram.table.rows:
        for index, cell in enumerate(row):
            widths[index] = min(50, max(widths[index], len("".join(span.text for span in cell))))
    if rows:
        node += table(diagram.table.headers, rows, widths, "dbus-diagram-table")
    else:
        text = "Nothing in this picture crosses between two processes."
        node += nodes.paragraph(text, text)
    return node


class DBusDeploymentDiagramDirective(_PolicyDirective):
    """``.. dbus-deployment-diagram::`` with ``:deployment:`` and ``:scenario:``."""

    option_spec: ClassVar[dict[str, Any]] = {
        "deployment": directives.unchanged_required,
        "scenario": lambda argument: directives.choice(argument, SCENARIOS),
    }

    def run(self) -> list[Node]:
        registry = self.registry()
        deployment = self.deployment(registry) if registry is not None else None
        if registry is None or deployment is None:
            return []  # an unusable registry is reported once, at conf.py
        scenario = self.options.get("scenario")
        if scenario:
            return [diagram_node(deployment_diagram(registry, deployment, scenario), self)]
        row = dbus_diagram_row()
        for one in SCENARIOS:
            row += diagram_node(deployment_diagram(registry, deployment, one), self)
        return [row]


class DBusSequenceDirective(_PolicyDirective):
    """``.. dbus-sequence:: [title]`` whose content describes the order of calls."""

    has_content = True
    optional_arguments = 1
    final_argument_whitespace = True
    option_spec: ClassVar[dict[str, Any]] = {}

    def run(self) -> list[Node]:
        registry = self.registry()
        if registry is None:
            return []  # an unusable registry is reported once, at conf.py
        title = self.arguments[0] if self.arguments else "The order of calls"
        if self.content:
            source, offset = self.content.items[0]
            path, first = str(source), int(offset) + 1
        else:
            path, first = self.get_source_info()
        diagram, problems = parse_sequence(list(self.content), registry, title, path, first)
        for problem in problems:
            log_diagnostic(problem, fallback=self.get_location())
        return [diagram_node(diagram, self)]


# --- after references are resolved: links into the SVG, or the table alone -----------------------


def _hrefs(node: dbus_diagram) -> dict[str, str]:
    hrefs: dict[str, str] = {}
    for reference in node.findall(nodes.reference):
        for literal in reference.findall(nodes.literal):
            name = literal.get("dbus-name")
            if name and name not in hrefs:
                uri = reference.get("refuri") or ("#" + reference["refid"] if reference.get("refid") else "")
                if uri:
                    hrefs[name] = uri
    return hrefs


#: The elements whose D-Bus names may break at their dots: the extension's tables, references to
#: D-Bus objects, and the signatures of its object descriptions.  None of them nests in itself.
_NAMED = re.compile(
    r'<(?P<tag>table|code|dt) class="(?P<class>[^"]*\b(?:dbus-table|xref dbus|sig-object dbus|dbus-name)\b[^"]*)"[^>]*>'
    r"(?P<content>.*?)</(?P=tag)>",
    re.DOTALL,
)
_PRE = re.compile(r'(<span class="pre">)([^<]*\.[^<]*)(</span>)')
#: In a signature, the name only (not a version in a badge).
_SIGNATURE_NAME = re.compile(r'(<span class="sig-name descname"><span class="pre">)([^<]*)(</span>)')


def _wrap_at_dots(body: str) -> str:
    """After each dot of a D-Bus name, a ``<wbr>``: in the extension's tables, references and
    signatures, the browser may then break ``org.qemu.Display1.AudioInListener`` after a dot,
    and nowhere else (the stylesheet lets these names wrap only there), so that a phone's
    narrow page is not pushed sideways by a long name.  The name's text stays whole, for
    copying and searching.  Each table goes into a box that scrolls sideways when it is still
    wider than the page.  One pass over the page: linear in its size."""

    def names(match: re.Match[str]) -> str:
        start, name, end = match.groups()
        return start + name.replace(".", ".<wbr>") + end

    def element(match: re.Match[str]) -> str:
        whole = match.group(0)
        content = match.group("content")
        head = whole[: match.start("content") - match.start()]
        tail = whole[match.end("content") - match.start() :]
        pieces = _SIGNATURE_NAME if match.group("tag") == "dt" else _PRE
        wrapped = head + pieces.sub(names, content) + tail
        if match.group("tag") == "table":
            return f'<div class="dbus-table-scroll">{wrapped}</div>'
        return wrapped

    return _NAMED.sub(element, body)


def on_html_page_context(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: nodes.document | None
) -> None:
    if doctree is not None and isinstance(context.get("body"), str):
        context["body"] = _wrap_at_dots(context["body"])


def on_doctree_resolved(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    html = app.builder.format == "html"
    for node in list(doctree.findall(dbus_diagram)):
        if html:
            node["hrefs"] = _hrefs(node)
            continue
        diagram: Diagram = node["diagram"]
        title = nodes.paragraph()
        title += nodes.strong(diagram.title, diagram.title)
        node.replace_self([title, *node.children])
    if not html:
        for row in list(doctree.findall(dbus_diagram_row)):
            row.replace_self(row.children)
        return
    # In the extension's reference entries, a literal that is a dotted name (an error name in a
    # doc comment, org.freedesktop.DBus.Error.Failed) breaks at its dots like the others.
    for entry in doctree.findall(addnodes.desc):
        if entry.get("domain") == "dbus":
            for literal in entry.findall(nodes.literal):
                if _DOTTED.match(literal.astext()):
                    literal["classes"].append(NAME_LITERAL)


def visit_diagram_html(translator: HTML5Translator, node: dbus_diagram) -> None:
    diagram: Diagram = node["diagram"]
    svg = render_svg(diagram, id_prefix=node["svg_id"], hrefs=node.get("hrefs", {}))
    translator.body.append(
        f'<figure class="dbus-diagram-figure" id="{escape(node["svg_id"])}">'
        f'<div class="dbus-diagram-scroll">{svg}</div>'
        f"<figcaption>{escape(diagram.title)}</figcaption>"
        '<details class="dbus-diagram-text"><summary>The picture as a table</summary>'
    )


def depart_diagram_html(translator: HTML5Translator, node: dbus_diagram) -> None:
    translator.body.append("</details></figure>")


def visit_row_html(translator: HTML5Translator, node: dbus_diagram_row) -> None:
    translator.body.append('<div class="dbus-diagram-row">')


def depart_row_html(translator: HTML5Translator, node: dbus_diagram_row) -> None:
    translator.body.append("</div>")


def _skip(translator: Any, node: Node) -> None:
    """Other builders never see the nodes (`on_doctree_resolved` replaces them); if one does, its
    children (the text equivalent) are still written."""


DIRECTIVES: dict[str, type[SphinxDirective]] = {
    "dbus-deployment-diagram": DBusDeploymentDiagramDirective,
    "dbus-sequence": DBusSequenceDirective,
}


def setup(app: Sphinx) -> dict[str, Any]:
    if "dbus_registry_path" not in app.config:
        from .config import register

        register(app)
    skip = (_skip, _skip)
    for node in (dbus_diagram, dbus_diagram_row):
        html = (visit_diagram_html, depart_diagram_html) if node is dbus_diagram else (visit_row_html, depart_row_html)
        app.add_node(node, html=html, latex=skip, text=skip, man=skip, texinfo=skip)
    for name, directive in DIRECTIVES.items():
        app.add_directive(name, directive)
    app.connect("doctree-resolved", on_doctree_resolved)
    app.connect("html-page-context", on_html_page_context)
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}

"""Text from XML files is documentation, not a way to run markup: doc comments are parsed as
untrusted reST, and nothing else from the XML is parsed at all (names, types and annotation
values become text nodes, `describe`).

Doc comments come from files the project may not have written (``dbus-doc`` of another project's
XML, a peer's introspection data saved to disk), and the checker never sees them in a docs build.
Whatever the project's own settings, they are therefore parsed:

* with ``raw_enabled`` and ``file_insertion_enabled`` off on the document settings (what docutils
  offers for untrusted input: ``.. raw::``, ``:raw:`` roles, ``.. include::``, ``literalinclude``,
  ``csv-table :file:``/``:url:`` all refuse to run), restored afterwards for the project's own
  markup;
* with only the directives of `ALLOWED_DIRECTIVES` (body markup: admonitions, tables, code,
  math, and the ``dbus`` domain's own object directives, which the XML can define anyway); any
  other directive is left out with a located warning.
  An allowlist, not a blocklist: a directive of another extension may read files or run
  programs (QEMU's ``kernel-doc`` does), and images and downloads copy files into the output;
* and the parsed nodes are swept: a link whose target a browser would run or read locally
  (``javascript:``, ``data:``, ``vbscript:``, ``file:``..., see `unsafe_scheme`) loses its URL,
  and raw nodes, local images and downloads that a role of some extension produced are dropped,
  each with a located warning.

Warnings are ``dbus.doc-markup`` and ``dbus.unsafe-link``, located at the XML line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from docutils import nodes
from docutils.nodes import Node, system_message
from docutils.parsers.rst import Directive
from sphinx import addnodes
from sphinx.util.docutils import CustomReSTDispatcher, SphinxDirective
from sphinx.util.logging import get_node_location

from .reporting import warn

#: The directives that text from XML may use, by the name written in the markup.
ALLOWED_DIRECTIVES: frozenset[str] = frozenset(
    {
        # docutils: admonitions and other body elements
        "admonition",
        "attention",
        "caution",
        "danger",
        "error",
        "hint",
        "important",
        "note",
        "tip",
        "warning",
        "topic",
        "sidebar",
        "rubric",
        "epigraph",
        "highlights",
        "pull-quote",
        "compound",
        "container",
        "line-block",
        "parsed-literal",
        "code",
        "math",
        "table",
        "list-table",  # not csv-table, whose :file: and :url: read files
        "class",
        "replace",
        "unicode",
        # Sphinx
        "code-block",
        "sourcecode",
        "versionadded",
        "versionchanged",
        "versionremoved",
        "deprecated",
        "seealso",
        "centered",
        "hlist",
        # the dbus domain's objects, which the generated markup is made of
        "dbus:interface",
        "dbus:method",
        "dbus:signal",
        "dbus:property",
    }
)

#: Link schemes that only lead somewhere else; anything else with a scheme is refused.
SAFE_SCHEMES: frozenset[str] = frozenset(
    {"http", "https", "ftp", "ftps", "sftp", "mailto", "news", "nntp", "irc", "ircs", "xmpp", "tel", "git", "ssh"}
)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*\Z")
# What a browser removes before it reads a URL's scheme (the WHATWG URL standard): C0 controls
# and spaces around it, tabs and line breaks anywhere, so "java\tscript:" is "javascript:".
# urllib.parse does the same only from Python 3.11.4 on (Debian 12 has 3.11.2).
_C0_OR_SPACE = "".join(chr(code) for code in range(0x21))
_TAB_OR_NEWLINE = str.maketrans("", "", "\t\n\r")


def unsafe_scheme(uri: str) -> str | None:
    """The scheme of ``uri`` when a browser would do more with it than follow a link (run it,
    read a local file, decode inline data), else None.  A URL without a scheme (relative, a
    fragment) is safe."""
    cleaned = uri.strip(_C0_OR_SPACE).translate(_TAB_OR_NEWLINE)
    scheme, colon, _rest = cleaned.partition(":")
    if not colon or not _SCHEME.match(scheme):
        return None
    scheme = scheme.lower()
    return None if scheme in SAFE_SCHEMES else scheme


class RefusedDirective(SphinxDirective):
    """Stands in for a directive that XML text may not use: takes any argument, option and
    content, warns at its line, and produces nothing."""

    optional_arguments = 1
    final_argument_whitespace = True  # options, too, end up in the one argument
    has_content = True

    def run(self) -> list[Node]:
        warn(
            "doc-markup",
            f"the {self.name!r} directive is not allowed in documentation from XML; it is left out",
            self.get_location(),
        )
        return []


class _DirectiveGate(CustomReSTDispatcher):
    """Directive lookup that lets only `ALLOWED_DIRECTIVES` through.  Installed over Sphinx's
    own dispatcher (which resolves domains) for the time of one parse, the way Sphinx installs
    its own."""

    def directive(
        self, directive_name: str, language_module: ModuleType, document: nodes.document
    ) -> tuple[type[Directive] | None, list[system_message]]:
        if directive_name.lower() not in ALLOWED_DIRECTIVES:
            return RefusedDirective, []
        return super().directive(directive_name, language_module, document)


_UNSET = object()


@contextmanager
def untrusted_markup(document: nodes.document) -> Iterator[None]:
    """Parse with raw and file insertion off and only the allowed directives; then restore the
    document's settings and the directive lookup, however the parse ends."""
    settings = document.settings
    saved = {name: getattr(settings, name, _UNSET) for name in ("raw_enabled", "file_insertion_enabled")}
    for name in saved:
        setattr(settings, name, False)
    try:
        with _DirectiveGate():
            yield
    finally:
        for name, value in saved.items():
            if value is _UNSET:
                delattr(settings, name)
            else:
                setattr(settings, name, value)


def sweep(root: nodes.Element) -> None:
    """Drop what the parse produced that text from XML may not put in a page (the roles of
    other extensions can make anything): unsafe link targets, raw output, local images and
    downloads.  Each is warned about once per place."""
    seen: set[tuple[str | None, str]] = set()

    def once(code: str, message: str, node: Node, what: str = "") -> None:
        # docutils gives a target block the line of its generated input, not of the XML: a
        # target is located at the element it stands in instead (its enclosing description,
        # or the paragraph of an embedded URI, whose reference has said it already).
        where = node
        if isinstance(node, nodes.target) and node.parent is not None and get_node_location(node.parent):
            where = node.parent
        key = (get_node_location(where), what or message)
        if key not in seen:
            seen.add(key)
            warn(code, message, where)

    for node in _swept(root):
        if isinstance(node, nodes.raw):
            once("doc-markup", "raw output is not allowed in documentation from XML; it is left out", node)
            node.parent.remove(node)
        elif isinstance(node, addnodes.download_reference):
            once("doc-markup", "downloads are not allowed in documentation from XML; the text is kept", node)
            node.replace_self(nodes.inline(node.rawsource, "", *node.children))
        elif isinstance(node, nodes.image) and unsafe_image(node.get("uri", "")):
            once("doc-markup", "local images are not allowed in documentation from XML; it is left out", node)
            node.parent.remove(node)
        elif isinstance(node, (nodes.reference, nodes.target)) and "refuri" in node:
            scheme = unsafe_scheme(node["refuri"])
            if scheme is None:
                continue
            names = ", ".join(repr(str(name)) for name in node["names"])
            target = f"link target {names}: " if isinstance(node, nodes.target) and names else ""
            once(
                "unsafe-link",
                f"{target}a link to a {scheme}: URL is not allowed in documentation from XML; its text is kept",
                node,
                what=scheme,
            )
            if isinstance(node, nodes.reference):
                node.replace_self(nodes.inline(node.rawsource, "", *node.children))
            else:
                # A named target: the references to it become links to where it stands.
                del node["refuri"]


def unsafe_image(uri: str) -> bool:
    """Images may only be remote: a local one is a file copied into the output."""
    scheme, _colon, _rest = uri.strip(_C0_OR_SPACE).partition(":")
    return scheme.lower() not in ("http", "https")


_SWEPT = (nodes.raw, addnodes.download_reference, nodes.image, nodes.reference, nodes.target)


def _swept(top: nodes.Element) -> list[nodes.Element]:
    """The elements under ``top`` that `sweep` looks at, in document order.  One pass with a
    stack: docutils' ``findall`` yields each node through a generator per level above it, which
    made the sweep a tenth of a large page's rendering."""
    found: list[nodes.Element] = []
    stack: list[Node] = list(reversed(top.children))
    while stack:
        node = stack.pop()
        if isinstance(node, nodes.Element):
            if isinstance(node, _SWEPT):
                found.append(node)
            stack.extend(reversed(node.children))
    return found

"""Source text of an XML file, for exact line:column positions in diagnostics.

lxml knows only lines, and for a start tag the line where it *ends*.  Computing every node's exact
start up front costs more than lxml's whole parse (Python pays per node), so the model keeps lines
and `refine` finds the exact start of one construct when a diagnostic about it is printed: the
way compilers compute columns only for the messages they emit.  That works while a line holds one
node; for a file where some line holds several (minified XML, or an attack on the tools), the
parser asks `node_tokens` for the start of every node in one pass and locates them all exactly.

Every method here is linear in the text it looks at, and what may be asked many times is
remembered: `refine` once per (line, marker), the attributes of a start tag once per tag.  Hostile
files report a diagnostic per element, tens of thousands on one line; a rescan per diagnostic would
make that quadratic.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from functools import cache

from .._compat import atomic
from ..diagnostics.diagnostic import Location

_NEWLINE = re.compile("\n")
_BACKWARD_LINES = 64  # how far up a start tag may begin before the line where it ends
# Characters after a tag name: where ``<arg`` ends and ``<args`` does not.
_NAME_ENDS = frozenset(("", " ", "\t", "\r", "\n", "/", ">"))

# The start of every node lxml makes, in document order, and the constructs to step over.  Only
# run on text lxml has accepted as well-formed, so every construct is closed: each alternative
# stops at its own end, and the atomic groups never backtrack (linear in the text).
# These patterns are compiled when first needed: most runs never need them, and each start of
# the tool (and of each worker) would pay for compiling them.
_QUOTED_OR = r"""[^>"']|"[^"]*"|'[^']*'"""  # markup up to ``>``: attribute values may hold ``>``
_NODES = (
    r"""
      (?P<comment><!--) .*? -->
    | <\? (?P<pi>[^\s?]*) .*? \?>
    | <!\[CDATA\[ .*? \]\]>
    | <!DOCTYPE """
    + atomic("doctype", r"""(?:[^\[>"']|"[^"]*"|'[^']*')*""")
    + r"""(?:\[ """
    + atomic(
        "subset",
        rf"""(?:<!--.*?-->|<\?.*?\?>|"[^"]*"|'[^']*'|[^\]"'<]|<{atomic("declaration", f"(?:{_QUOTED_OR})*")}>)*""",
    )
    + r""" \])? \s* >
    | < (?P<element>[^\s/>!?][^\s/>]*) """
    + atomic("attributes", f"(?:{_QUOTED_OR})*")
    + r""" >
    | & (?P<entity>[^\s;&#<>"']+) ;
    """,
    re.DOTALL | re.VERBOSE,
)
# The kind of node each alternative stands for, by the last group it closes (None: no node).
_KINDS = {"comment": "comment", "pi": "pi", "element": "element", "attributes": "element", "entity": "entity"}
_PREDEFINED = frozenset({"lt", "gt", "amp", "quot", "apos"})
# A start tag, from its ``<``: the name, then attributes (values may hold ``>``) up to ``>``.
_START_TAG = (r"<[^\s/>]+" + atomic("attributes", f"(?:{_QUOTED_OR})*") + ">?", 0)
_ATTRIBUTE = (r"""\s([^\s=/>"']+)\s*=\s*(?:"([^"]*)"|'([^']*)')""", 0)


@cache
def _compiled(pattern: tuple[str, int]) -> re.Pattern[str]:
    return re.compile(*pattern)


class SourceText:
    __slots__ = ("_attributes", "_line_starts", "_refined", "path", "text")

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self._line_starts: list[int] | None = None
        self._refined: dict[tuple[int, str], Location] = {}
        # Start-tag offset -> attribute name -> (offset of the name, offset of the value).
        self._attributes: dict[int, dict[str, tuple[int, int]]] = {}

    @property
    def line_starts(self) -> list[int]:
        if self._line_starts is None:
            self._line_starts = [0, *(m.end() for m in _NEWLINE.finditer(self.text))]
        return self._line_starts

    def location_of(self, offset: int) -> Location:
        starts = self.line_starts
        line = bisect_right(starts, offset)
        return Location(self.path, line, offset - starts[line - 1] + 1)

    def offset_of(self, location: Location) -> int:
        starts = self.line_starts
        if not 0 < location.line <= len(starts):
            return -1
        return starts[location.line - 1] + max(location.column - 1, 0)

    def refine(self, location: Location, marker: str) -> Location:
        """The exact start of the construct that ``marker`` opens (``<method``, ``<!--``, ``<?if``,
        ``:dbus:meth:``): its first occurrence on ``location.line`` or, for a start tag that ends
        on that line, its last one in the lines above.  Remembered per (line, marker), so a line
        asked about for every one of its diagnostics is searched once."""
        if location.column or not 0 < location.line <= len(self.line_starts):
            return location
        key = (location.line, marker)
        found = self._refined.get(key)
        if found is None:
            found = self._refined[key] = self._find(location, marker)
        return found

    def _find(self, location: Location, marker: str) -> Location:
        starts = self.line_starts
        line_start = starts[location.line - 1]
        line_end = starts[location.line] if location.line < len(starts) else len(self.text)
        tag = marker[:1] == "<" and marker[1:2] not in ("!", "?", "")
        text = self.text
        position = text.find(marker, line_start, line_end)
        while position >= 0 and tag and text[position + len(marker) : position + len(marker) + 1] not in _NAME_ENDS:
            position = text.find(marker, position + 1, line_end)
        if position >= 0:
            return self.location_of(position)
        earlier = starts[max(location.line - 1 - _BACKWARD_LINES, 0)]
        position = text.rfind(marker, earlier, line_start)
        while position >= 0 and tag and text[position + len(marker) : position + len(marker) + 1] not in _NAME_ENDS:
            position = text.rfind(marker, earlier, position)
        return self.location_of(position) if position >= 0 else location

    def attribute_location(self, element: Location, attribute: str, value_offset: int = 0) -> Location:
        """The position of ``attribute="…"`` in the start tag at ``element`` (plus ``value_offset``
        characters into the value), or ``element`` when it cannot be found.  A start tag's
        attributes are read once, however many of them a diagnostic is about."""
        start = self.offset_of(element)
        if start < 0:
            return element
        attributes = self._attributes.get(start)
        if attributes is None:
            attributes = self._attributes[start] = self._read_attributes(start)
        found = attributes.get(attribute)
        if found is None:
            return element
        name, value = found
        return self.location_of(value + value_offset) if value_offset else self.location_of(name)

    def _read_attributes(self, start: int) -> dict[str, tuple[int, int]]:
        tag = _compiled(_START_TAG).match(self.text, start)
        if tag is None:
            return {}
        found: dict[str, tuple[int, int]] = {}
        for match in _compiled(_ATTRIBUTE).finditer(self.text, start, tag.end()):
            value = match.start(2) if match.start(2) >= 0 else match.start(3)
            found.setdefault(match.group(1), (match.start(1), value))
        return found

    def node_tokens(self) -> list[tuple[str, str, int]]:
        """``(kind, name, offset)`` of every node in document order: ``element`` (its name as
        written, prefix included), ``comment``, ``pi`` (its target) and ``entity`` (a reference
        in text to an entity other than the five predefined ones).  For text lxml has accepted
        as well-formed: the parser pairs these with lxml's nodes to locate every node exactly."""
        tokens: list[tuple[str, str, int]] = []
        for match in _compiled(_NODES).finditer(self.text):
            kind = _KINDS.get(match.lastgroup)  # type: ignore[arg-type]
            if kind is None:
                continue  # CDATA or the DOCTYPE: no node
            name = match.group(kind)
            if kind == "entity" and name in _PREDEFINED:
                continue
            if kind == "pi" and name == "xml":
                continue  # the XML declaration
            tokens.append((kind, name, match.start()))
        return tokens

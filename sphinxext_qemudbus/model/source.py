"""Source text of an XML file, for exact line:column positions in diagnostics.

lxml knows only lines, and for a start tag the line where it *ends*.  Computing every node's exact
start up front costs more than lxml's whole parse (Python pays per node), so the model keeps lines
and `refine` finds the exact start of one construct when a diagnostic about it is printed: the
way compilers compute columns only for the messages they emit.
"""

from __future__ import annotations

import re
from bisect import bisect_right

from ..diagnostics.diagnostic import Location

_NEWLINE = re.compile("\n")
_BACKWARD_LINES = 64  # how far up a start tag may begin before the line where it ends


class SourceText:
    __slots__ = ("_line_starts", "path", "text")

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self._line_starts: list[int] | None = None

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

    def line(self, number: int) -> str:
        starts = self.line_starts
        if not 0 < number <= len(starts):
            return ""
        end = starts[number] - 1 if number < len(starts) else len(self.text)
        return self.text[starts[number - 1] : end]

    def _occurrences(self, start: int, end: int, marker: str) -> list[int]:
        """Offsets of ``marker`` in [start, end); a tag marker (``<arg``) must end at its name."""
        text = self.text
        check_name = marker[1:2] not in ("!", "?", "") and marker[0] == "<"
        found: list[int] = []
        position = text.find(marker, start, end)
        while position >= 0:
            after = text[position + len(marker) : position + len(marker) + 1]
            if not check_name or after in ("", " ", "\t", "\r", "\n", "/", ">"):
                found.append(position)
            position = text.find(marker, position + 1, end)
        return found

    def refine(self, location: Location, marker: str) -> Location:
        """The exact start of the construct that ``marker`` opens (``<method``, ``<!--``, ``<?if``)
        whose first (or, for a multi-line start tag, last) line is ``location.line``."""
        if location.column or not 0 < location.line <= len(self.line_starts):
            return location
        starts = self.line_starts
        line_start = starts[location.line - 1]
        line_end = starts[location.line] if location.line < len(starts) else len(self.text)
        on_line = self._occurrences(line_start, line_end, marker)
        if on_line:
            return self.location_of(on_line[0])
        earlier_start = starts[max(location.line - 1 - _BACKWARD_LINES, 0)]
        before = self._occurrences(earlier_start, line_start, marker)
        return self.location_of(before[-1]) if before else location

    def nth_on_line(self, line: int, marker: str, index: int) -> Location:
        """The ``index``-th (0-based) ``marker`` on ``line``: for the second and later elements
        with one tag on one line, which the line alone cannot tell apart."""
        starts = self.line_starts
        if not 0 < line <= len(starts):
            return Location(self.path, line, 0)
        end = starts[line] if line < len(starts) else len(self.text)
        found = self._occurrences(starts[line - 1], end, marker)
        if not found:
            return Location(self.path, line, 0)
        return self.location_of(found[min(index, len(found) - 1)])

    def attribute_location(self, element: Location, attribute: str, value_offset: int = 0) -> Location:
        """The position of ``attribute="…"`` in the start tag at ``element`` (plus ``value_offset``
        characters into the value), or ``element`` when it cannot be found."""
        start = self.offset_of(element)
        if start < 0:
            return element
        end = self.text.find(">", start)
        match = re.compile(r"\s" + re.escape(attribute) + r"""\s*=\s*(["'])""").search(
            self.text, start, end if end >= 0 else len(self.text)
        )
        if match is None:
            return element
        if value_offset:
            return self.location_of(match.end() + value_offset)
        return self.location_of(match.start() + 1)

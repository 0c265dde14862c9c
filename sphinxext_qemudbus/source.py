"""Source text of an XML file, for exact line:column positions.

lxml's ``sourceline`` is the line where a start tag *ends* (and where a comment ends); compilers
point at where a construct *starts*.  `SourceText` finds each node's start by scanning forward from
a cursor, which works because the parser visits nodes in document order.
"""

from __future__ import annotations

import re
from bisect import bisect_right

from .diagnostics import Location

_NEWLINE = re.compile("\n")


class SourceText:
    __slots__ = ("_cursor", "_line_starts", "path", "text")

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self._line_starts: list[int] | None = None
        self._cursor = 0

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

    def advance_to(self, marker: str, last_line: int) -> Location:
        """Find the next ``marker`` (``<method``, ``<!--``, ``<?if``) at or after the cursor, on or
        before ``last_line``, and move the cursor past it.  Falls back to ``last_line`` alone."""
        text = self.text
        position = self._cursor
        while True:
            position = text.find(marker, position)
            if position < 0:
                return Location(self.path, last_line, 0)
            following = text[position + len(marker) : position + len(marker) + 1]
            if marker[1] in "!?" or not following or following in " \t\r\n/>":
                break
            position += 1
        location = self.location_of(position)
        if last_line and location.line > last_line:
            return Location(self.path, last_line, 0)
        self._cursor = position + len(marker)
        return location

    def skip_past(self, marker: str) -> None:
        position = self.text.find(marker, self._cursor)
        if position >= 0:
            self._cursor = position + len(marker)

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

"""The one TOML reader: ``registry.toml`` and deployment files, bounded and located.

``tomllib`` (``tomli`` on Python 3.9) parses arrays and inline tables by recursion, so a file
that nests a few thousand of them raises ``RecursionError`` from inside the parser, and a Sphinx
build aborts.  Before the parser runs, a linear scan (`nesting_error`) measures how deep the
brackets of values nest, outside strings and comments, and refuses a file beyond `MAX_NESTING`
with the line and column of the first bracket too many.  Dotted keys and ``[a.b.c]`` headers nest
tables without recursing in the parser, but their tables would break whatever walks the result
(a ``repr`` in an error message): the decoded document is measured too, without recursion.

The files this package reads nest three levels at most; `MAX_NESTING` leaves room for anything a
person writes by hand.  Syntax errors come back located as well: tomllib says where in its
message, which is moved into the `Location`.
"""

from __future__ import annotations

import re
from typing import Any

from .._compat import tomllib
from ..diagnostics.diagnostic import Location

MAX_NESTING = 32
_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)")
#: What changes the scanner's state: a bracket, a comment, the start of a string.
_SIGNIFICANT = re.compile(r"[\[\]{}#\"']")
#: Inside a basic string: an escape (skipped whole, so ``\"`` does not end it), its end, or a
#: line end (which ends a one-line string in error: the parser stops there).
_BASIC = re.compile(r"\\.|\"|\n", re.DOTALL)
_MULTILINE_BASIC = re.compile(r"\\.|\"\"\"", re.DOTALL)


class TomlError(Exception):
    """A TOML text that cannot be used: ``location`` says where, ``message`` what."""

    def __init__(self, location: Location, message: str) -> None:
        super().__init__(f"{location}: {message}")
        self.location = location
        self.message = message


def parse_toml(text: str, path: str) -> dict[str, Any]:
    """The document ``text`` holds; `TomlError` for a syntax error or nesting deeper than
    `MAX_NESTING`, never an exception from inside the parser."""
    deep = nesting_error(text)
    if deep is not None:
        line, column = deep
        raise TomlError(Location(path, line, column), f"nested deeper than {MAX_NESTING} arrays and inline tables")
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        found = _POSITION.search(message)
        location = Location(path, int(found.group(1)), int(found.group(2))) if found else Location(path)
        raise TomlError(location, f"TOML syntax: {_POSITION.sub('', message).strip()}") from None
    if _depth_exceeds(document, MAX_NESTING):
        message = f"tables nested deeper than {MAX_NESTING} levels (dotted keys and table headers)"
        raise TomlError(Location(path), message)
    return document


def nesting_error(text: str) -> tuple[int, int] | None:
    """(line, column) of the first ``[`` or ``{`` that opens more than `MAX_NESTING` at once,
    outside strings and comments; None when the text stays within.  Linear: every step moves
    forward.  A string left open ends the scan: the parser fails there before going deeper."""
    depth = 0
    position = 0
    while True:
        found = _SIGNIFICANT.search(text, position)
        if found is None:
            return None
        sign, start = found.group(), found.start()
        if sign in "[{":
            depth += 1
            if depth > MAX_NESTING:
                line = text.count("\n", 0, start) + 1
                return line, start - (text.rfind("\n", 0, start) + 1) + 1
            position = start + 1
            continue
        if sign in "]}":
            depth = max(depth - 1, 0)
            position = start + 1
            continue
        end = _skip(text, sign, start)
        if end is None:
            return None
        position = end


def _skip(text: str, sign: str, start: int) -> int | None:
    """Where scanning resumes after the comment or string that starts at ``start``; None when
    it never ends."""
    if sign == "#":
        end = text.find("\n", start)
        return None if end < 0 else end + 1
    if text.startswith(sign * 3, start):
        if sign == "'":
            end = text.find("'''", start + 3)
            found = end + 3 if end >= 0 else None
        else:
            found = _close(text, _MULTILINE_BASIC, start + 3, '"""')
        if found is None:
            return None
        # Up to two more quotes belong to the string: '''a''''' is "a''".
        for _ in range(2):
            if text.startswith(sign, found):
                found += 1
        return found
    if sign == "'":
        end = min((i for i in (text.find("'", start + 1), text.find("\n", start + 1)) if i >= 0), default=-1)
        return None if end < 0 or text[end] == "\n" else end + 1
    return _close(text, _BASIC, start + 1, '"')


def _close(text: str, pattern: re.Pattern[str], position: int, closing: str) -> int | None:
    """Past the ``closing`` quote of a basic string, skipping its escapes; None when it is not
    closed (the end of the text, or of the line for a one-line string)."""
    while True:
        found = pattern.search(text, position)
        if found is None:
            return None
        if found.group() == closing:
            return found.end()
        if found.group() == "\n":
            return None
        position = found.end()


def _depth_exceeds(document: Any, limit: int) -> bool:
    """Whether tables in ``document`` nest deeper than ``limit`` (arrays, which the scan has
    bounded already, count as no level), measured with a stack of its own: the document may
    be deeper than Python's recursion limit."""
    stack: list[tuple[Any, int]] = [(document, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in value.values() if isinstance(child, (dict, list)))
        else:
            stack.extend((child, depth) for child in value if isinstance(child, (dict, list)))
    return False

"""The one TOML reader: ``registry.toml`` and deployment files, bounded and located.

``tomllib`` (``tomli`` on Python 3.9) parses arrays and inline tables by recursion, so a file
that nests a few thousand of them raised ``RecursionError`` from inside the parser, and a Sphinx
build aborted; recent ``tomli`` raises ``RecursionError`` itself past 400 levels, or past a
thousand parts in a dotted key.  Before the parser runs, a linear scan (`nesting_error`) reads
the text as the parser will, outside strings and comments, and refuses a file in which brackets
nest deeper than `MAX_NESTING`, or a key (``a.b.c =``, ``[a.b.c]``) has more parts, with the line
and column of the first one too many.  The decoded document is measured too, without recursion:
tables nested deeper than `MAX_DEPTH` (inline tables whose keys each have many parts) would break
whatever walks it recursively (a ``repr`` in an error message).

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
MAX_DEPTH = 3 * MAX_NESTING
_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)")
#: What the scan looks at: brackets, the start of a comment or a string, and what separates keys
#: (a dot between parts, ``=`` after a key, ``,`` between the pairs of an inline table, a line
#: end between the pairs of a table).
_SIGNIFICANT = re.compile(r"[\[\]{}#\"'.=,\n]")
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
        line, column, what = deep
        raise TomlError(Location(path, line, column), f"nested deeper than {MAX_NESTING} {what}")
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        found = _POSITION.search(message)
        location = Location(path, int(found.group(1)), int(found.group(2))) if found else Location(path)
        raise TomlError(location, f"TOML syntax: {_POSITION.sub('', message).strip()}") from None
    except RecursionError:  # a parser's own limit, should a later one set it below ours
        raise TomlError(Location(path), "nested too deep for the TOML parser") from None
    # Inline tables whose keys have many parts each still nest their tables deeper than any of
    # the bounds above: measured on the document, as the last fence for what walks it.
    if _depth_exceeds(document, MAX_DEPTH):
        raise TomlError(Location(path), f"tables nested deeper than {MAX_DEPTH} levels")
    return document


def nesting_error(text: str) -> tuple[int, int, str] | None:
    """(line, column, what) of the first ``[`` or ``{`` that opens more than `MAX_NESTING` at
    once, or of the first dot that gives a key more parts than that, outside strings and
    comments; None when the text stays within.  Linear: every step moves forward.  A string
    left open ends the scan: the parser fails there before going deeper."""
    brackets: list[str] = []  # the open ones, innermost last
    key = True  # whether a key may be being read: at a line start, in a header, in an inline table
    parts = 1
    position = 0
    while True:
        found = _SIGNIFICANT.search(text, position)
        if found is None:
            return None
        sign, start = found.group(), found.start()
        position = start + 1
        if sign in "[{":
            brackets.append(sign)
            if len(brackets) > MAX_NESTING:
                return (*_line_and_column(text, start), "arrays and inline tables")
            # A header ([a.b] at a line start) is a key; an inline table holds keys; an array
            # holds values.
            key, parts = (key if sign == "[" else True), 1
        elif sign in "]}":
            if brackets:
                brackets.pop()
            key = False
        elif sign == "\n":
            if not brackets:
                key, parts = True, 1
        elif sign == ",":
            if brackets and brackets[-1] == "{":
                key, parts = True, 1
        elif sign == "=":
            key = False
        elif sign == ".":
            if key:
                parts += 1
                if parts > MAX_NESTING:
                    return (*_line_and_column(text, start), "parts in one key")
        else:
            end = _skip(text, sign, start)
            if end is None:
                return None
            position = end


def _line_and_column(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _skip(text: str, sign: str, start: int) -> int | None:
    """Where scanning resumes after the comment or string that starts at ``start``; None when
    it never ends."""
    if sign == "#":
        end = text.find("\n", start)
        return None if end < 0 else end  # the line end counts: it ends a key
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
    bounded already, count as no level), measured with a stack of its own."""
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

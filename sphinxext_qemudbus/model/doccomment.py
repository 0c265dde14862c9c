"""gtk-doc style doc comments, as gdbus-codegen and QEMU write them in introspection XML::

    <!--
        SetUIInfo: optional short description
        @width_mm: the physical display width in millimeters.
        @height_mm: continuation lines of a parameter are
          indented further.

        Body in reStructuredText.

        Since: 7.1
        Deprecated: use SetUIInfo2 instead.
    -->

Only a comment whose first non-blank line is a symbol line (``Name:``) is a doc comment; any other
comment (``<!-- xywh? -->``) is ordinary and ignored.
"""

from __future__ import annotations

import re

from ..diagnostics.diagnostic import Location
from .introspection import DocComment, DocParam

# The symbol line: blank lines, then ``Symbol:`` and an optional short text.  No lazy
# quantifiers before an end anchor: those retry the anchor at every character.
_HEAD = re.compile(r"[ \t\r\n]*([A-Za-z_][A-Za-z0-9_.:-]*):(?:[ \t]+([^\n]*)|[ \t\r]*(?=\n|\Z))")
_PARAM = re.compile(r"[ \t]*@([A-Za-z0-9_-]*):[ \t]?([^\n]*)")
_TAG = re.compile(r"(Since|Deprecated|Stability):[ \t]*(.*)")
_TAG_NAMES = frozenset({"Since", "Deprecated", "Stability"})
_BLANK_LINES = re.compile(r"(?:[ \t\r]*\n)*")
# The indentation of every non-blank line of a text given a leading newline.
_INDENT = re.compile(r"\n([^\S\n]*)\S")


def is_doc_comment(text: str) -> bool:
    """Whether a comment's text is a doc comment (its first non-blank line is ``Symbol:``)."""
    head = _HEAD.match(text)
    return head is not None and head.group(1) not in _TAG_NAMES


def read_doc_comment(text: str, location: Location) -> DocComment | None:
    """The doc comment in a comment's text, or None for an ordinary comment."""
    head = _HEAD.match(text)
    if head is None or head.group(1) in _TAG_NAMES:
        return None
    return _parse(text, location, head)


def parse_doc_comment(text: str, location: Location) -> DocComment:
    """Parse the text of a doc comment that starts at ``location`` (the line of ``<!--``)."""
    return _parse(text, location, _HEAD.match(text))


def _parse(text: str, location: Location, head: re.Match[str] | None) -> DocComment:
    """This is the checker's hot path (a registry file has a doc comment per member), so it works
    on the whole text with C-level operations: only the few header lines (symbol and ``@arg:``
    lines) are looked at one by one, each by one regex match in place; the body is one slice of
    the text, and the ``Since:``/``Deprecated:`` scan runs only when the text holds one of them."""
    first_line = location.line
    short_column = 0
    if head is not None:
        symbol, short = head.group(1), (head.group(2) or "").strip()
        symbol_line = first_line + text.count("\n", 0, head.start(1))
        end_of_line = text.find("\n", head.end())
        position = len(text) if end_of_line < 0 else end_of_line + 1
        if short:
            start = head.start(2)
            line_start = text.rfind("\n", 0, start) + 1
            short_column = _column(location, line_start, start - line_start + 1)
    else:
        symbol, short, symbol_line, position = "", "", first_line, 0

    params: list[DocParam] = []
    size = len(text)
    if (match := _PARAM.match(text, position)) is not None:
        path = location.path
        param_indent = 0
        line_number = first_line + text.count("\n", 0, position)
        # The param being read: its name and place, the text of each of its lines, and where
        # each of those starts in the file (line, column).
        name, where = "", location
        parts: list[str] = []
        starts: list[tuple[int, int]] = []
        while position < size:
            end = text.find("\n", position)
            end = size if end < 0 else end
            if match is not None:
                if parts:
                    params.append(_param(name, where, parts, starts))
                param_indent = match.start(1) - 1 - position
                name, where = match.group(1), Location(path, line_number, param_indent + 1)
                parts = [match.group(2).rstrip()]
                starts = [(line_number, _column(location, position, match.start(2) - position + 1))]
            else:
                line = text[position:end]
                stripped = line.lstrip()
                if not stripped or len(line) - len(stripped) <= param_indent:
                    break
                parts.append(stripped.rstrip())
                starts.append((line_number, len(line) - len(stripped) + 1))
            position = end + 1
            line_number += 1
            match = _PARAM.match(text, position)
        if parts:
            params.append(_param(name, where, parts, starts))

    blank = _BLANK_LINES.match(text, min(position, size))
    body_start = blank.end() if blank else position
    body = text[body_start:].rstrip()
    since = deprecated = None
    if "Since:" in body or "Deprecated:" in body:
        body, since, deprecated = _extract_tags(body)
    return DocComment(
        symbol,
        short,
        symbol_line,
        tuple(params),
        body,
        first_line + text.count("\n", 0, body_start),
        since,
        deprecated,
        location,
        short_column,
    )


def _param(name: str, where: Location, parts: list[str], starts: list[tuple[int, int]]) -> DocParam:
    """An ``@name:`` description from the text of each of its lines: continuation lines join
    the first after one space, and the whole is stripped (a one-line text only at its end)."""
    if len(parts) == 1:
        return DocParam(name, parts[0], where, ((0, *starts[0]),))
    joined = " ".join(parts)
    text = joined.strip()
    cut = len(joined) - len(joined.lstrip())  # the first line's leading spaces, or its empty text
    pieces = []
    offset = 0
    for part, (line, column) in zip(parts, starts):
        # A piece that loses its start to the strip starts further right in the file.
        pieces.append((max(offset - cut, 0), line, column + max(cut - offset, 0)))
        offset += len(part) + 1
    return DocParam(name, text, where, tuple(pieces))


def _column(location: Location, line_start: int, column: int) -> int:
    """``column`` of the line of the comment's text that starts at offset ``line_start``, as a
    column of the file: the first line of the text follows ``<!--`` on the comment's own line,
    where the file's column is known only when ``location``'s is (else 0: not known)."""
    if line_start:
        return column
    return location.column + len("<!--") + column - 1 if location.column else 0


def _extract_tags(body: str) -> tuple[str, str | None, str | None]:
    """Take ``Since:``/``Deprecated:`` paragraphs out of the body.  A tag counts only at the start of
    a paragraph and at the body's own indentation, so prose mentioning "Since:" stays prose.  Tag
    lines become blank lines so body line numbers stay true.

    Only the lines where a tag word starts are looked at from Python; the body's indentation is one
    regex scan."""
    starts: list[int] = []
    for word in _TAG_NAMES:
        found = body.find(word + ":")
        while found >= 0:
            line_start = body.rfind("\n", 0, found) + 1
            if line_start == found or body[line_start:found].isspace():
                starts.append(line_start)
            found = body.find(word + ":", found + 1)
    if not starts:
        return body, None, None
    lines = body.split("\n")
    base = min(map(len, _INDENT.findall("\n" + body)))
    since: str | None = None
    deprecated: str | None = None
    for tag_line in sorted({body.count("\n", 0, start) for start in starts}):
        index = tag_line
        line = lines[index]
        if (index and lines[index - 1].strip()) or len(line) - len(line.lstrip()) != base:
            continue  # not at a paragraph start (a tag paragraph above counts as blank), or indented
        match = _TAG.match(line.strip())
        if match is None:
            continue
        tag, value = match.group(1), match.group(2).strip()
        lines[index] = ""
        index += 1
        # A tag's text continues on the following non-blank lines of its paragraph.
        while index < len(lines) and (stripped := lines[index].strip()) and not _TAG.match(stripped):
            value = f"{value} {stripped}".strip()
            lines[index] = ""
            index += 1
        if tag == "Since":
            since = value
        elif tag == "Deprecated":
            deprecated = value
    return "\n".join(lines).rstrip(), since, deprecated

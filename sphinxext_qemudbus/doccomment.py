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

from .diagnostics import Location
from .model import DocComment, DocParam

_SYMBOL = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.:-]*):(?:\s+(.*?))?\s*\Z")
_PARAM = re.compile(r"\s*@([A-Za-z0-9_-]*):\s?(.*?)\s*\Z")
_TAG = re.compile(r"(Since|Deprecated|Stability):\s*(.*?)\s*\Z")


def is_doc_comment(text: str) -> bool:
    """Whether a comment's text is a doc comment (its first non-blank line is ``Symbol:``)."""
    for line in text.split("\n", 3)[:3]:
        if line.strip():
            match = _SYMBOL.match(line)
            return match is not None and not _TAG.match(line.strip())
    return False


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def parse_doc_comment(text: str, location: Location) -> DocComment:
    """Parse the text of a doc comment that starts at ``location`` (the line of ``<!--``)."""
    lines = text.split("\n")
    path, first_line = location.path, location.line
    index = 0
    while index < len(lines) and not lines[index].strip():
        index += 1
    symbol_line = first_line + index
    symbol_match = _SYMBOL.match(lines[index]) if index < len(lines) else None
    symbol = symbol_match.group(1) if symbol_match else ""
    short = (symbol_match.group(2) or "") if symbol_match else ""
    index += 1

    params: list[DocParam] = []
    while index < len(lines):
        line = lines[index]
        match = _PARAM.match(line)
        if match is None:
            if params and line.strip() and _indent(line) > _indent(_param_line(lines, index)):
                last = params[-1]
                params[-1] = DocParam(last.name, f"{last.text} {line.strip()}".strip(), last.location)
                index += 1
                continue
            break
        column = line.index("@") + 1
        params.append(DocParam(match.group(1), match.group(2), Location(path, first_line + index, column)))
        index += 1

    while index < len(lines) and not lines[index].strip():
        index += 1
    body_start = index
    body_lines = _dedent(lines[body_start:])
    body_lines, since, deprecated = _extract_tags(body_lines)
    while body_lines and not body_lines[-1].strip():
        body_lines.pop()
    return DocComment(
        symbol=symbol,
        short=short,
        symbol_line=symbol_line,
        params=tuple(params),
        body="\n".join(body_lines),
        body_line=first_line + body_start,
        since=since,
        deprecated=deprecated,
        location=location,
    )


def _param_line(lines: list[str], index: int) -> str:
    """The ``@name:`` line a continuation line belongs to."""
    while index > 0:
        index -= 1
        if _PARAM.match(lines[index]):
            return lines[index]
    return lines[0]


def _dedent(lines: list[str]) -> list[str]:
    indents = [_indent(line) for line in lines if line.strip()]
    cut = min(indents, default=0)
    return [line[cut:].rstrip() if line.strip() else "" for line in lines]


def _extract_tags(lines: list[str]) -> tuple[list[str], str | None, str | None]:
    """Take ``Since:``/``Deprecated:`` paragraphs out of the body.  A tag counts only at the start
    of a paragraph and at the body's own indentation, so prose mentioning "Since:" stays prose.
    The kept lines keep their positions (tags become blank lines) so body line numbers stay true."""
    since: str | None = None
    deprecated: str | None = None
    kept = list(lines)
    index = 0
    while index < len(kept):
        line = kept[index]
        at_paragraph_start = index == 0 or not kept[index - 1].strip()
        match = _TAG.match(line) if at_paragraph_start and line[:1].strip() else None
        if match is None:
            index += 1
            continue
        tag, value = match.groups()
        kept[index] = ""
        index += 1
        # A tag's text continues on the following indented or non-blank lines of its paragraph.
        while index < len(kept) and kept[index].strip() and not _TAG.match(kept[index]):
            value = f"{value} {kept[index].strip()}".strip()
            kept[index] = ""
            index += 1
        if tag == "Since":
            since = value
        elif tag == "Deprecated":
            deprecated = value
    return kept, since, deprecated

"""Entity declarations: the few the parser expands, and everything it refuses.

Real introspection files declare entities now and then: PackageKit's declare
``<!ENTITY ERROR_GENERAL "org.freedesktop.packagekit.Denied">`` in the internal subset of their
DOCTYPE, and gdbus-codegen and QEMU's own Sphinx extension read them.  An entity whose replacement
text is plain text (no reference, no markup) cannot nest, cannot read a file and expands to at most
its own length per reference, so the parser lets libxml2 expand those, once this module has
accounted for every declaration and bounded the total expansion.  Anything else stays refused
before lxml sees the file: external entities (they read files or the network), parameter entities
(they rewrite the DTD), and replacement text holding a reference or markup (the way to nest,
as in the billion-laughs bomb).

The internal subset is read here by a small scanner of its own, not by libxml2, so that a
declaration it cannot account for is refused rather than handed to libxml2 to interpret.
"""

from __future__ import annotations

import re

from .._compat import atomic
from ..diagnostics.frozen import record

# The prolog up to the DOCTYPE's internal subset: an optional byte-order mark and XML
# declaration, comments, processing instructions, then ``<!DOCTYPE name [external id] [``.
_MARKUP = r"""(?:[^>"']|"[^"]*"|'[^']*')*"""  # up to ``>``: quoted strings may hold ``>``
_PROLOG = re.compile(
    r"\ufeff?(?:<\?xml\s.*?\?>)?"
    + atomic("misc", r"(?:\s|<!--.*?-->|<\?.*?\?>)*")
    + r"""<!DOCTYPE\s+[^\s\[>]+(?:\s+(?:SYSTEM|PUBLIC)(?:\s+(?:"[^"]*"|'[^']*'))+)?\s*\[""",
    re.DOTALL,
)
# One item of the internal subset.  Every alternative ends where its construct does; the atomic
# groups keep the scan linear.  Each kind's group closes last, so ``lastgroup`` names the kind.
_ITEM = re.compile(
    r"""(?P<space>\s+)
      | (?P<comment><!--.*?-->)
      | (?P<pi><\?.*?\?>)
      | (?P<entity><!ENTITY"""
    + atomic("entity_body", _MARKUP)
    + r""">)
      | (?P<declaration><!(?:ELEMENT|ATTLIST|NOTATION)\s"""
    + atomic("declaration_body", _MARKUP)
    + r""">)
      | (?P<end>\]\s*>)""",
    re.DOTALL | re.VERBOSE,
)
_INTERNAL = re.compile(r"""<!ENTITY\s+([^\s%"'>]+)\s+(?:"([^"]*)"|'([^']*)')\s*>\Z""")
_NAME = re.compile(r"[^\W\d][\w.\-:]*\Z")
_PREDEFINED = frozenset({"lt", "gt", "amp", "quot", "apos"})
_REFERENCE = re.compile(r"&([^\s;&<>\"'#]+);")
_PLAIN_TEXT_FORBIDS = ("&", "%", "<")


@record(frozen=True)
class Entities:
    """What a file's internal subset declares: the plain-text entities to expand (name to text),
    the offset of the first declaration, and the first declaration refused, with why."""

    declared: dict[str, str]
    first: int = -1
    refused: tuple[int, str] | None = None


def read_entities(text: str, limit: int) -> Entities:
    """Account for every ``<!ENTITY`` in ``text`` (a file known to hold one).  ``limit`` bounds the
    expanded file, in characters: the same bound as a file's size."""
    prolog = _PROLOG.match(text)
    if prolog is None:
        return _refuse(text.find("<!ENTITY"), "entity declarations are only read in the DOCTYPE's internal subset")
    declared: dict[str, str] = {}
    first = -1
    position = prolog.end()
    while True:
        item = _ITEM.match(text, position)
        if item is None:
            what = "a parameter entity reference" if text.startswith("%", position) else "a declaration"
            return _refuse(position, f"the DOCTYPE holds {what} this tool does not read; nothing is expanded")
        position = item.end()
        kind = item.lastgroup
        if kind == "end":
            break
        if kind != "entity":
            continue
        start = item.start()
        first = start if first < 0 else first
        problem = _check(item.group(), declared)
        if problem is not None:
            return _refuse(start, problem)
    if text.find("<!ENTITY", position) >= 0:
        return _refuse(text.find("<!ENTITY", position), "entity declarations are only read in the DOCTYPE")
    expanded = len(text)
    for match in _REFERENCE.finditer(text, position):
        value = declared.get(match.group(1))
        if value is not None:
            expanded += len(value) - len(match.group())
    if expanded > limit:
        return _refuse(first, f"expanding the entities would make the file larger than {limit // (1024 * 1024)} MiB")
    return Entities(declared, first)


def _check(declaration: str, declared: dict[str, str]) -> str | None:
    """What is wrong with one ``<!ENTITY …>`` declaration, or None (then it is recorded)."""
    match = _INTERNAL.match(declaration)
    if match is None:
        if re.match(r"<!ENTITY\s+%", declaration):
            return "parameter entities are not allowed (they rewrite the DTD)"
        if re.search(r"\s(?:SYSTEM|PUBLIC)\s", declaration):
            return "external entities are not allowed (they read other files or the network)"
        return "this entity declaration is not one this tool reads"
    name = match.group(1)
    value = match.group(2) if match.group(2) is not None else match.group(3)
    if not _NAME.match(name) or name in _PREDEFINED:
        return f"entity name {name!r} is not allowed"
    if any(character in value for character in _PLAIN_TEXT_FORBIDS):
        return f"entity {name} holds a reference or markup; only plain-text entities are expanded"
    declared.setdefault(name, value)  # the first declaration of a name binds (XML 1.0, 4.2)
    return None


def _refuse(offset: int, reason: str) -> Entities:
    return Entities({}, offset, (max(offset, 0), reason))

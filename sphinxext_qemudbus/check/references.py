"""Cross-references in doc comments, and the one resolution algorithm that both the checker and the
Sphinx domain use, so ``qemu-dbus check`` and a docs build can never disagree about a link.

Roles: ``:dbus:iface:``, ``:dbus:meth:``, ``:dbus:sig:``, ``:dbus:prop:``.  Forms::

    :dbus:meth:`org.qemu.Display1.Console.RegisterListener`   full name
    :dbus:meth:`~org.qemu.Display1.Console.RegisterListener`  shown as "RegisterListener"
    :dbus:prop:`Type`                                          member of the current interface
    :dbus:meth:`.Press`                                        current interface first, then any
                                                               interface with a unique .Press
    :dbus:meth:`the console <org.qemu.Display1.Console>`      explicit title
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from ..diagnostics.frozen import frozen
from ..model.introspection import DocComment, DocParam

ROLE_KINDS: Mapping[str, str] = {
    "iface": "interface",
    "meth": "method",
    "sig": "signal",
    "prop": "property",
}
KIND_ROLES: Mapping[str, str] = {kind: role for role, kind in ROLE_KINDS.items()}

_ROLE = re.compile(r":dbus:([A-Za-z_-]+):`([^`]*)`")


@frozen
class Reference:
    """A role in a doc comment, located by line and column (0 when the column is not known: the
    text of an ``@arg:`` line or a short description is stripped, the body keeps its lines)."""

    role: str
    target: str
    title: str | None
    line: int
    column: int = 0

    @property
    def kind(self) -> str | None:
        return ROLE_KINDS.get(self.role)


def roles_in(text: str) -> Iterator[tuple[str, str]]:
    """``(role, target)`` of every ``:dbus:*:`` role written in ``text``, in order."""
    for match in _ROLE.finditer(text):
        yield match.group(1), split_target(match.group(2))[0]


def split_target(text: str) -> tuple[str, str | None, bool]:
    """``(target, explicit title or None, shorten)`` for a role's text: ``title <target>`` has an
    explicit title (the last ``<…>``, ending the text), ``~target`` is shown shortened.

    String operations, not a regular expression: the obvious ``(.*?)\\s*<([^<>]*)>\\s*\\Z``
    retries its whitespace run at every character and takes time quadratic in a run of spaces
    (160 KB of them took 20 s).  Each step here is one linear scan."""
    if "<" not in text and "~" not in text:
        return text.strip(), None, False  # the common case
    title: str | None = None
    end = len(text.rstrip())
    if end and text[end - 1] == ">":
        opening = text.rfind("<", 0, end - 1)
        if opening >= 0 and text.find(">", opening, end - 1) < 0:
            title, text = text[:opening].rstrip(), text[opening + 1 : end - 1]
    text = text.strip()
    shorten = text.startswith("~")
    return text.lstrip("~"), title, shorten


def display_text(target: str, title: str | None, shorten: bool) -> str:
    if title is not None:
        return title
    if shorten:
        return target.rpartition(".")[2]
    return target.lstrip(".")


def references_in(doc: DocComment) -> list[Reference]:
    """Every ``:dbus:*:`` role in a doc comment's short text, ``@arg`` lines and body."""
    found: list[Reference] = []
    for param in doc.params:
        found += param_references(param)
    found += short_references(doc)
    found += body_references(doc)
    return found


def param_references(param: DocParam) -> list[Reference]:
    """The roles in an ``@arg:`` text, each at its line and column: the text joins the lines of
    the arg's description, and `DocParam.pieces` says where each line's part came from.  Both
    the roles and the pieces are in text order, so one pass over each finds every position."""
    if ":dbus:" not in param.text:
        return []
    found: list[Reference] = []
    pieces = param.pieces
    index = -1
    for match in _ROLE.finditer(param.text):
        offset = match.start()
        while index + 1 < len(pieces) and pieces[index + 1][0] <= offset:
            index += 1
        if index < 0:
            line, column = param.location.line, 0
        else:
            start, line, first = pieces[index]
            column = first + offset - start
        target, title, _ = split_target(match.group(2))
        found.append(Reference(match.group(1), target, title, line, column))
    return found


def short_references(doc: DocComment) -> list[Reference]:
    """The roles in a doc comment's short description (on its symbol line), each at its column
    when the model knows where the description starts on that line."""
    if ":dbus:" not in doc.short:
        return []
    found: list[Reference] = []
    for match in _ROLE.finditer(doc.short):
        column = doc.short_column + match.start() if doc.short_column else 0
        target, title, _ = split_target(match.group(2))
        found.append(Reference(match.group(1), target, title, doc.symbol_line, column))
    return found


def body_references(doc: DocComment) -> list[Reference]:
    """The roles in a doc comment's body, each at its line and column."""
    found: list[Reference] = []
    # The raw body, not the dedented one: same lines, and no dedent work for a scan.
    if ":dbus:" in doc.raw_body:
        _scan(found, doc.raw_body, doc.body_line, exact_columns=True)
    return found


def _scan(found: list[Reference], text: str, first_line: int, exact_columns: bool = False) -> None:
    """Add the references in ``text``, which begins on ``first_line``.  With ``exact_columns`` the
    text's lines are the file's own lines (a doc comment body), so the column is known without the
    source; otherwise it is left 0.  Lines are counted on from the previous reference, not from
    the start of the text, so many references cost one pass over it."""
    line, counted, line_start = first_line, 0, 0
    for match in _ROLE.finditer(text):
        position = match.start()
        newlines = text.count("\n", counted, position)
        if newlines:
            line += newlines
            line_start = text.rfind("\n", counted, position) + 1
        counted = position
        column = position - line_start + 1 if exact_columns else 0
        target, title, _ = split_target(match.group(2))
        found.append(Reference(match.group(1), target, title, line, column))


@frozen
class Resolution:
    """The outcome of resolving a reference: a full name, or why there is none."""

    name: str | None
    problem: str | None = None  # "unresolved" | "wrong-kind" | "ambiguous"
    detail: str = ""
    #: For an ambiguous reference, every full name it could mean, sorted.
    candidates: tuple[str, ...] = ()


def resolve(
    target: str,
    kind: str,
    current_interface: str | None,
    objects: Mapping[str, str],
    suffixes: Mapping[str, tuple[str, ...]] | None = None,
) -> Resolution:
    """Resolve ``target`` as an object of ``kind`` (interface, method, signal, property).

    ``objects`` maps full names to kinds.  ``suffixes`` maps a last name element to the full names
    ending in it (for the ``.Name`` form); build it with `suffix_index`.
    """
    fuzzy = target.startswith(".")
    if not fuzzy and (found := exact_match(target, kind, current_interface, objects)) is not None:
        return Resolution(found)
    name = target.lstrip(".")
    candidates = []
    if not fuzzy:
        candidates.append(name)
    if current_interface:
        candidates.append(f"{current_interface}.{name}")
    for candidate in candidates:
        if objects.get(candidate) == kind:
            return Resolution(candidate)
    if fuzzy:
        index = suffixes if suffixes is not None else suffix_index(objects)
        if isinstance(index, SuffixIndex):
            matches, detail = index.matching(name, kind)
        else:
            last = name.rpartition(".")[2]
            matches = tuple(
                sorted(
                    full
                    for full in index.get(last, ())
                    if objects[full] == kind and (full == name or full.endswith("." + name))
                )
            )
            detail = ", ".join(matches)
        if len(matches) == 1:
            return Resolution(matches[0])
        if len(matches) > 1:
            return Resolution(None, "ambiguous", detail, matches)
    for candidate in candidates:
        if candidate in objects:
            return Resolution(None, "wrong-kind", f"{candidate} is a {objects[candidate]}")
    return Resolution(None, "unresolved")


def exact_match(target: str, kind: str, current_interface: str | None, objects: Mapping[str, str]) -> str | None:
    """The full name a target without a leading ``.`` resolves to, or None: the target itself,
    else the target as a member of the current interface.  `resolve` starts with this, and the
    checker runs it alone where it decides most references without building a `Resolution`."""
    if objects.get(target) == kind:
        return target
    if current_interface and objects.get(member := f"{current_interface}.{target}") == kind:
        return member
    return None


def suffix_index(objects: Mapping[str, str]) -> SuffixIndex:
    """Full names by their last element, and (`SuffixIndex.matching`) by their last elements."""
    index: dict[str, list[str]] = {}
    for full in objects:
        index.setdefault(full.rpartition(".")[2], []).append(full)
    return SuffixIndex({key: tuple(value) for key, value in index.items()}, objects)


class _Tail:
    """A node of `SuffixIndex`'s tree: the names that end with the elements on its path."""

    __slots__ = ("below", "by_kind", "found")

    def __init__(self) -> None:
        self.below: dict[str, _Tail] = {}
        self.by_kind: dict[str, list[str]] = {}
        self.found: dict[str, tuple[tuple[str, ...], str]] = {}


class SuffixIndex(dict[str, tuple[str, ...]]):
    """Full names by their last element (a plain mapping, as callers have always used it), and a
    tree of the names by their elements read from the end, for the ``.Name`` form of a reference.

    Which names end with ``.A.B`` is one walk of two elements down the tree, and the answer for
    each (node, kind) is sorted and joined once.  Filtering every name that ends in ``.B`` for
    each reference instead made many references to names sharing a last element quadratic.  The
    tree holds each name once per element: linear in the names."""

    def __init__(self, by_last: dict[str, tuple[str, ...]], objects: Mapping[str, str]) -> None:
        super().__init__(by_last)
        self._objects = objects
        self._tree: _Tail | None = None

    def matching(self, name: str, kind: str) -> tuple[tuple[str, ...], str]:
        """The full names of ``kind`` that are ``name`` or end with ``.name``, sorted, and joined
        by ``", "``."""
        node: _Tail | None = self._tree if self._tree is not None else self._build()
        for element in reversed(name.split(".")):
            node = node.below.get(element) if node is not None else None
        if node is None:
            return (), ""
        found = node.found.get(kind)
        if found is None:
            matches = tuple(sorted(node.by_kind.get(kind, ())))
            found = node.found[kind] = (matches, ", ".join(matches))
        return found

    def _build(self) -> _Tail:
        root = _Tail()
        for full, kind in self._objects.items():
            node = root
            for element in reversed(full.split(".")):
                below = node.below.get(element)
                if below is None:
                    below = node.below[element] = _Tail()
                node = below
                node.by_kind.setdefault(kind, []).append(full)
        self._tree = root
        return root

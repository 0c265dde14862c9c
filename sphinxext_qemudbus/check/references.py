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
from collections.abc import Mapping

from ..diagnostics.frozen import frozen
from ..model.introspection import DocComment

ROLE_KINDS: Mapping[str, str] = {
    "iface": "interface",
    "meth": "method",
    "sig": "signal",
    "prop": "property",
}
KIND_ROLES: Mapping[str, str] = {kind: role for role, kind in ROLE_KINDS.items()}

_ROLE = re.compile(r":dbus:([A-Za-z_-]+):`([^`]*)`")
_EXPLICIT = re.compile(r"(.*?)\s*<([^<>]*)>\s*\Z", re.DOTALL)


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


def split_target(text: str) -> tuple[str, str | None, bool]:
    """``(target, explicit title or None, shorten)`` for a role's text."""
    if "<" not in text and "~" not in text:
        return text.strip(), None, False  # the common case, without the regex
    title: str | None = None
    if match := _EXPLICIT.match(text):
        title, text = match.group(1), match.group(2)
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
        if ":dbus:" in param.text:
            _scan(found, param.text, param.location.line)
    if ":dbus:" in doc.short:
        _scan(found, doc.short, doc.symbol_line)
    # The raw body, not the dedented one: same lines, and no dedent work for a scan.
    if ":dbus:" in doc.raw_body:
        _scan(found, doc.raw_body, doc.body_line, exact_columns=True)
    return found


def _scan(found: list[Reference], text: str, first_line: int, exact_columns: bool = False) -> None:
    """Add the references in ``text``, which begins on ``first_line``.  With ``exact_columns`` the
    text's lines are the file's own lines (a doc comment body), so the column is known without the
    source; otherwise it is left 0."""
    for match in _ROLE.finditer(text):
        position = match.start()
        line = first_line + text.count("\n", 0, position)
        column = position - text.rfind("\n", 0, position) if exact_columns else 0
        target, title, _ = split_target(match.group(2))
        found.append(Reference(match.group(1), target, title, line, column))


@frozen
class Resolution:
    """The outcome of resolving a reference: a full name, or why there is none."""

    name: str | None
    problem: str | None = None  # "unresolved" | "wrong-kind" | "ambiguous"
    detail: str = ""


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
        last = name.rpartition(".")[2]
        index = suffixes if suffixes is not None else suffix_index(objects)
        matches = sorted(
            full
            for full in index.get(last, ())
            if objects[full] == kind and (full == name or full.endswith("." + name))
        )
        if len(matches) == 1:
            return Resolution(matches[0])
        if len(matches) > 1:
            return Resolution(None, "ambiguous", ", ".join(matches))
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


def suffix_index(objects: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    index: dict[str, list[str]] = {}
    for full in objects:
        index.setdefault(full.rpartition(".")[2], []).append(full)
    return {key: tuple(value) for key, value in index.items()}

"""The probe's recorded results in the documentation: on each member, and as a page of their own.

``qemu-dbus probe --record`` writes ``probe-results.json`` beside the registry's XML
(`sphinxext_qemudbus.live.probe.results`).  Two things render it:

- `probe_note`, registered in `render.MEMBER_NOTES` (the hook of each member's entry) and so
  shown after a member's trust note: what a peer was found to do to QEMU with that member, per
  release, each fault with its reproduction (a `render.Note`, whose texts `describe` turns into
  text nodes);
- ``.. dbus-probe-results::``, the page "What a peer can do to QEMU": the probe version and the
  QEMU releases probed, then every fault by member (reST the directive writes, every text
  from the file escaped).

Each fault is shown as `fault_item` says, on the member and on the page.  The results are text
from a file and from QEMU's own output (an assertion message): everything goes into the page as
text or as the content of a literal block, never as markup.  Editing the file rebuilds the pages
that show it (`note_dependency`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sphinx.util.docutils import SphinxDirective

from ..live.probe.results import RecordedFault, Results, load_results, results_path
from ..model.names import interface_name_error, member_name_error
from .render import MEMBER_NOTES, Note, NoteItem, escape, one_line
from .rst import parse_generated

INDENT = "   "

#: What each kind of fault means, for a reader who does not know the probe.
KIND_WORDS = {
    "crash": "QEMU exits (the VM is gone)",
    "hang": "QEMU stops answering for good (the VM is frozen)",
    "stall": "QEMU stands still for a while (the VM with it)",
    "contract": "QEMU breaks the registry's contract",
    "undocumented-error": "QEMU returns an error name the registry does not give",
}


def results_for(xml_path: str) -> Results:
    """The results recorded beside the XML file at ``xml_path`` (cached per file version)."""
    folder = os.path.dirname(os.path.abspath(xml_path))
    path = results_path(folder)
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        return Results()
    return _load(folder, stamp)


@functools.lru_cache(maxsize=8)
def _load(folder: str, stamp: int) -> Results:
    return load_results(folder)


def probe_note(path: str, interface: str, member: str, line: int) -> list[tuple[str, Note]]:
    """The ``dbus-probe`` note of one member of the XML file at ``path``: what the probe found
    it lets a peer do."""
    faults = results_for(path).for_member(f"{interface}.{member}")
    if not faults:
        return []
    summary = one_line(_summary(faults))
    items = tuple(fault_item(fault) for fault in faults)
    return [("dbus-probe", Note("What a peer can do (qemu-dbus probe):", summary, line, items))]


def _summary(faults: Sequence[RecordedFault]) -> str:
    kinds = sorted({f.kind for f in faults})
    releases = sorted({f.release for f in faults}, key=_release_key)
    return f"{', '.join(KIND_WORDS.get(k, k) for k in kinds)}; found on QEMU {', '.join(releases)}."


def _release_key(text: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in text.split("."))


def fault_item(fault: RecordedFault) -> NoteItem:
    """One fault as a list item: release, kind, call and threshold; the evidence; the command."""
    return NoteItem(
        f"QEMU {one_line(fault.release)}, {one_line(fault.kind)}: ",
        _literal(fault.call),
        f" ({one_line(fault.threshold)})" if fault.threshold else "",
        one_line(fault.evidence),
        one_line(fault.command),
        "shell",
    )


def _literal(text: str) -> str:
    """Text for an inline literal: one line, and no backquotes (which would end it in reST)."""
    return one_line(text).replace("`", "'") or " "


class _Lines:
    """The page's reST, line by line (all at the directive's line)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.indent = ""

    def add(self, text: str = "") -> None:
        self.lines.append(self.indent + text if text else "")

    @contextmanager
    def indented(self) -> Iterator[None]:
        saved = self.indent
        self.indent += INDENT
        try:
            yield
        finally:
            self.indent = saved

    def item(self, item: NoteItem) -> None:
        """A `fault_item` as a list item ("-" and two spaces: its body is indented by INDENT)."""
        self.add(f"-  {_escaped(item.before)}``{item.code}``{_escaped(item.after)}")
        with self.indented():
            self.add()
            self.add(escape(item.text))
            self.add()
            self.add(f".. code-block:: {item.language}")
            self.add()
            self.add(INDENT + item.command)
            self.add()


def _escaped(text: str) -> str:
    """`escape`, keeping a space at either end (where the text meets an inline literal)."""
    core = escape(text)
    if not core:
        return ""
    return (" " if text[0].isspace() else "") + core + (" " if text[-1].isspace() else "")


def _reference(kind: str, qualified: str) -> str:
    """A member of the results as a reference to its entry; a name that is not a member's (the
    file says what it holds, nothing vouches for it) as escaped text."""
    interface, _dot, member = qualified.rpartition(".")
    if interface_name_error(interface) is None and member_name_error(member) is None:
        return f":dbus:{kind}:`{qualified}`"
    return escape(qualified)


class DBusProbeResultsDirective(SphinxDirective):
    """``.. dbus-probe-results::``: the page "What a peer can do to QEMU", generated from the
    registry's recorded probe results."""

    has_content = False

    def run(self) -> list[Any]:
        folder = str(self.config.dbus_registry_path)
        self.env.note_dependency(results_path(folder))
        results = load_results(folder)
        page = _Lines()
        for problem in results.problems:
            page.add(f".. warning:: {escape(problem)}")
            page.add()
        if not results.releases:
            page.add("No probe results are recorded in the registry yet (``qemu-dbus probe --record``).")
            return parse_generated(self, page.lines)
        page.add(".. list-table::")
        page.add("   :header-rows: 1")
        page.add("   :class: dbus-table")
        page.add()
        page.add("   * - QEMU release")
        page.add("     - probed with")
        page.add("     - members probed")
        page.add("     - calls")
        page.add("     - faults")
        for entry in results.releases:
            page.add(f"   * - {escape(entry.qemu or entry.release)}")
            page.add(f"     - qemu-dbus probe {escape(entry.probe_version or '?')}")
            page.add(f"     - {len(entry.probed)}")
            page.add(f"     - {entry.calls}")
            page.add(f"     - {len(entry.faults)}")
        page.add()
        members: dict[str, list[RecordedFault]] = {}
        for entry in results.releases:
            for fault in entry.faults:
                members.setdefault(fault.qualified, []).append(fault)
        if not members:
            page.add("The probe found nothing on the releases above.")
        for qualified in sorted(members):
            faults = members[qualified]
            kind = "prop" if faults[0].call.startswith("Set(") else "meth"
            page.add(_reference(kind, qualified))
            page.add()
            with page.indented():
                page.add(escape(_summary(faults)))
                page.add()
                for fault in faults:
                    page.item(fault_item(fault))
            page.add()
        return parse_generated(self, page.lines)


DIRECTIVES = {"dbus-probe-results": DBusProbeResultsDirective}
MEMBER_NOTES.append(probe_note)

"""The probe's recorded results in the documentation: on each member, and as a page of their own.

``qemu-dbus probe --record`` writes ``probe-results.json`` beside the registry's XML
(`sphinxext_qemudbus.live.probe.results`).  Two things render it:

- `probe_note`, registered in `render.MEMBER_NOTES` (the hook of each member's entry) and so
  written after a member's trust note: what a peer was found to do to QEMU with that member, per
  release, each fault with its reproduction;
- ``.. dbus-probe-results::``, the page "What a peer can do to QEMU": the probe version and the
  QEMU releases probed, then every fault by member.

The results are text from a file and from QEMU's own output (an assertion message): everything
goes into the page as escaped text or as the content of a literal block, never as markup.
Editing the file rebuilds the pages that show it (`note_dependency`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

from sphinx.util.docutils import SphinxDirective

from ..live.probe.results import RecordedFault, Results, load_results, results_path
from .render import INDENT, MEMBER_NOTES, RestWriter, escape, one_line
from .rst import parse_generated

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


def probe_note(writer: RestWriter, interface: str, member: str, line: int) -> None:
    """The ``dbus-probe`` container of one member: what the probe found it lets a peer do."""
    results = results_for(writer.path)
    faults = results.for_member(f"{interface}.{member}")
    if not faults:
        return
    writer.add(".. container:: dbus-probe", line)
    writer.blank(line)
    with writer.indented():
        writer.add(f"**What a peer can do (qemu-dbus probe):** {escape(_summary(faults))}", line)
        writer.blank(line)
        for fault in faults:
            _fault_item(writer, fault, line)
    writer.blank(line)


def _summary(faults: Sequence[RecordedFault]) -> str:
    kinds = sorted({f.kind for f in faults})
    releases = sorted({f.release for f in faults}, key=_release_key)
    return f"{', '.join(KIND_WORDS.get(k, k) for k in kinds)}; found on QEMU {', '.join(releases)}."


def _release_key(text: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in text.split("."))


def _fault_item(writer: RestWriter, fault: RecordedFault, line: int) -> None:
    """One fault as a list item: release, kind, call and threshold; the evidence; the command."""
    threshold = f" ({escape(fault.threshold)})" if fault.threshold else ""
    # "-" and two spaces: the item's body is indented like the writer's blocks.
    writer.add(f"-  QEMU {escape(fault.release)}, {escape(fault.kind)}: ``{_literal(fault.call)}``{threshold}", line)
    with writer.indented():
        writer.blank(line)
        writer.add(escape(one_line(fault.evidence)), line)
        writer.blank(line)
        writer.add(".. code-block:: shell", line)
        writer.blank(line)
        writer.add(INDENT + one_line(fault.command), line)
        writer.blank(line)


def _literal(text: str) -> str:
    """Text for an inline literal: one line, and no backquotes (which would end it)."""
    return one_line(text).replace("`", "'") or " "


class DBusProbeResultsDirective(SphinxDirective):
    """``.. dbus-probe-results::``: the page "What a peer can do to QEMU", generated from the
    registry's recorded probe results."""

    has_content = False

    def run(self) -> list[Any]:
        folder = str(self.config.dbus_registry_path)
        self.env.note_dependency(results_path(folder))
        results = load_results(folder)
        source, line = self.get_source_info()
        writer = RestWriter(source or "", ())
        at = line or 1
        for problem in results.problems:
            writer.add(f".. warning:: {escape(problem)}", at)
            writer.blank(at)
        if not results.releases:
            writer.add("No probe results are recorded in the registry yet (``qemu-dbus probe --record``).", at)
            return parse_generated(self.state, writer.lines)
        writer.add(".. list-table::", at)
        writer.add("   :header-rows: 1", at)
        writer.add("   :class: dbus-table", at)
        writer.blank(at)
        writer.add("   * - QEMU release", at)
        writer.add("     - probed with", at)
        writer.add("     - members probed", at)
        writer.add("     - calls", at)
        writer.add("     - faults", at)
        for entry in results.releases:
            writer.add(f"   * - {escape(entry.qemu or entry.release)}", at)
            writer.add(f"     - qemu-dbus probe {escape(entry.probe_version or '?')}", at)
            writer.add(f"     - {len(entry.probed)}", at)
            writer.add(f"     - {entry.calls}", at)
            writer.add(f"     - {len(entry.faults)}", at)
        writer.blank(at)
        members: dict[str, list[RecordedFault]] = {}
        for entry in results.releases:
            for fault in entry.faults:
                members.setdefault(fault.qualified, []).append(fault)
        if not members:
            writer.add("The probe found nothing on the releases above.", at)
        for qualified in sorted(members):
            faults = members[qualified]
            kind = "prop" if faults[0].call.startswith("Set(") else "meth"
            writer.add(f":dbus:{kind}:`{qualified}`", at)
            writer.blank(at)
            with writer.indented():
                writer.add(escape(_summary(faults)), at)
                writer.blank(at)
                for fault in faults:
                    _fault_item(writer, fault, at)
            writer.blank(at)
        return parse_generated(self.state, writer.lines)


DIRECTIVES = {"dbus-probe-results": DBusProbeResultsDirective}
MEMBER_NOTES.append(probe_note)

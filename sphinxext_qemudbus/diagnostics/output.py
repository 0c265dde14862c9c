"""Render diagnostics for people and machines: text, JSON, SARIF 2.1.0, GitHub annotations.

Names in messages come from XML files and from peers on a bus, and both may be hostile: a name
holding a newline would print a second, forged diagnostic line, and bidi controls (U+202E) reorder
what a terminal shows.  Every line the tools print as text goes through `printable`; JSON and SARIF
escape through ``json``, and GitHub annotations through their own escapes and `printable`.
"""

from __future__ import annotations

import bisect
import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from itertools import groupby
from typing import Any

from .diagnostic import Diagnostic, Severity
from .rules import GROUPS, RULES

FORMATS = ("text", "json", "sarif", "github")

_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}
_GITHUB_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}


def printable(text: str) -> str:
    """``text`` with every character that is not printable escaped as Python writes it
    (``\\n``, ``\\x1b``, ``\\u202e``): control characters, bidi and other format characters,
    separators, surrogates (a file name that is not UTF-8), unassigned code points.  A line
    printed through this is one line, shown as written; printable text is returned as it is."""
    if text.isprintable():
        return text
    return "".join(character if character.isprintable() else _escape(character) for character in text)


def _escape(character: str) -> str:
    code = ord(character)
    if character in _NAMED:
        return _NAMED[character]
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def render(diagnostics: Sequence[Diagnostic], fmt: str, tool: str = "qemu-dbus", version: str = "") -> str:
    if fmt == "json":
        return json.dumps([as_json(d) for d in diagnostics], indent=2) + "\n"
    if fmt == "sarif":
        return json.dumps(as_sarif(diagnostics, tool, version), indent=2) + "\n"
    if fmt == "github":
        return "".join(printable(as_github(d)) + "\n" for d in diagnostics)
    return "".join(printable(d.format()) + "\n" for d in diagnostics)


#: Where each rule group comes in a scope's findings: the XML, the D-Bus specification and the
#: reserved prefix first (an interface outside ``org.qemu.`` makes its missing metadata moot),
#: then metadata, design, documentation, references...: the order of the rule table.
_GROUP_ORDER = {letter: index for index, letter in enumerate(GROUPS)}


def grouped_text(diagnostics: Sequence[Diagnostic], scopes: Mapping[str, Sequence[tuple[int, str]]]) -> str:
    """The text report of ``qemu-dbus check``: each file's findings interface by interface, under
    a heading line ``PATH: in interface NAME:`` (as compilers say "In function"), the findings
    about the file itself first.  Within each, the errors that make the rest moot come first
    (errors, then warnings, then notes; in each, by rule group: a name outside the reserved
    prefix before the metadata it lacks), then by place.  After a finding comes its hint, on an
    indented line, the first time the file has it, with the command that says more.

    ``diagnostics`` sorted by file; ``scopes`` gives, by path, the first line (the doc comment's)
    and name of each interface.  Every line is `printable`; the work is linear in the findings."""
    return "".join(printable(line) + "\n" for line in _grouped_lines(diagnostics, scopes))


def _grouped_lines(diagnostics: Sequence[Diagnostic], scopes: Mapping[str, Sequence[tuple[int, str]]]) -> Iterator[str]:
    for path, found in groupby(diagnostics, key=lambda d: d.location.path):
        spans = sorted(scopes.get(path, ()))
        starts = [first for first, _name in spans]
        by_scope: dict[int, list[Diagnostic]] = {}
        for d in found:
            index = bisect.bisect_right(starts, d.location.line) - 1 if d.location.line else -1
            by_scope.setdefault(index, []).append(d)
        hinted: set[tuple[str, str]] = set()
        for index in sorted(by_scope):
            if index >= 0:
                yield f"{path}: in interface {spans[index][1]}:"
            for d in sorted(by_scope[index], key=_mooting_first):
                yield d.format()
                if d.hint and (d.code, d.hint) not in hinted:
                    hinted.add((d.code, d.hint))
                    more = "" if f"qemu-dbus rules {d.code}" in d.hint else f"  (more: qemu-dbus rules {d.code})"
                    yield f"    hint: {d.hint}{more}"


def _mooting_first(d: Diagnostic) -> tuple[int, int, int, int, str]:
    return (
        -d.severity.rank,
        _GROUP_ORDER.get(d.code[:1], len(_GROUP_ORDER)),
        d.location.line,
        d.location.column,
        d.code,
    )


def as_json(d: Diagnostic) -> dict[str, Any]:
    return {
        "path": d.location.path,
        "line": d.location.line,
        "column": d.location.column,
        "severity": d.severity.value,
        "code": d.code,
        "message": d.message,
        "hint": d.hint,
    }


def as_github(d: Diagnostic) -> str:
    def escape(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def escape_property(text: str) -> str:
        return escape(text).replace(":", "%3A").replace(",", "%2C")

    loc = d.location
    props = [f"file={escape_property(loc.path)}"]
    if loc.line:
        props.append(f"line={loc.line}")
    if loc.column:
        props.append(f"col={loc.column}")
    props.append(f"title={d.code}")
    return f"::{_GITHUB_LEVEL[d.severity]} {','.join(props)}::{escape(d.message)} [{d.code}]"


def as_sarif(diagnostics: Sequence[Diagnostic], tool: str, version: str) -> dict[str, Any]:
    used = sorted({d.code for d in diagnostics})
    rules = [
        {
            "id": code,
            "name": RULES[code].name,
            "shortDescription": {"text": RULES[code].doc},
            "help": {"text": RULES[code].hint or RULES[code].doc},
            "defaultConfiguration": {"level": _SARIF_LEVEL[RULES[code].severity]},
        }
        for code in used
    ]
    index = {code: i for i, code in enumerate(used)}
    results = []
    for d in diagnostics:
        region: dict[str, int] = {}
        if d.location.line:
            region["startLine"] = d.location.line
        if d.location.column:
            region["startColumn"] = d.location.column
        physical: dict[str, Any] = {"artifactLocation": {"uri": d.location.path}}
        if region:
            physical["region"] = region
        results.append(
            {
                "ruleId": d.code,
                "ruleIndex": index[d.code],
                "level": _SARIF_LEVEL[d.severity],
                "message": {"text": d.message},
                "locations": [{"physicalLocation": physical}],
            }
        )
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": tool,
                        "version": version,
                        "informationUri": "https://www.qemu.org/docs/master/interop/dbus.html",
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }


def plural(count: int, noun: str) -> str:
    """``1 interface``, ``2 interfaces``: a count and its noun, in the number that agrees (every
    noun the tools count takes an ``s``)."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def counted(diagnostics: Sequence[Diagnostic]) -> str:
    """``2 errors, 1 warning``: the findings by severity, worst first; empty when there are none."""
    counts = Counter(d.severity for d in diagnostics)
    return ", ".join(plural(counts[s], s.value) for s in (Severity.ERROR, Severity.WARNING, Severity.NOTE) if counts[s])


def fails(diagnostics: Sequence[Diagnostic], strict: bool) -> bool:
    """Whether findings fail a run: any error, or with ``strict`` any warning too."""
    threshold = Severity.WARNING.rank if strict else Severity.ERROR.rank
    return any(d.severity.rank >= threshold for d in diagnostics)


def error_line(command: str, message: str) -> str:
    """``qemu-dbus CMD: error: MESSAGE``, printable: messages quote paths and names."""
    return printable(f"qemu-dbus {command}: error: {message}")


def summary(diagnostics: Sequence[Diagnostic], files: int) -> str:
    return f"{plural(files, 'file')} checked: {counted(diagnostics) or 'no problems'}"

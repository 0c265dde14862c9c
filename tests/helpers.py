"""Shared helpers for tests that check inline XML."""

from __future__ import annotations

import re
import sys
import textwrap
import zlib
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from sphinxext_qemudbus.check.checker import check_files
from sphinxext_qemudbus.check.summary import CheckOptions
from sphinxext_qemudbus.diagnostics.diagnostic import Diagnostic
from sphinxext_qemudbus.model.parser import parse_string

REGISTRY_METADATA = """\
    <annotation name="org.qemu.Registry.Implementers" value="qemu"/>
    <annotation name="org.qemu.Registry.Callers" value="client"/>
    <annotation name="org.qemu.Registry.Connection" value="bus"/>
    <annotation name="org.qemu.Registry.BusName" value="org.qemu"/>
    <annotation name="org.qemu.Registry.ObjectPath" value="/org/qemu/Test1"/>
    <annotation name="org.qemu.Registry.Stability" value="stable"/>
    <annotation name="org.qemu.Registry.Since" value="9.0"/>
"""


def check_xml(xml: str, profile: str = "generic", path: str | None = None, **files: str) -> list[Diagnostic]:
    """Check one inline document (dedented), plus optional extra files by name."""
    text = textwrap.dedent(xml).lstrip("\n")
    parsed = [parse_string(text, path or "org.example.Test1.xml")]
    parsed += [parse_string(textwrap.dedent(body).lstrip("\n"), name) for name, body in files.items()]
    return check_files(parsed, CheckOptions(profile))


def codes(diagnostics: list[Diagnostic]) -> list[tuple[str, int]]:
    return [(d.code, d.location.line) for d in diagnostics]


def count_work(function: Callable[[], object]) -> int:
    """How many lines of Python ``function`` runs, in every frame it calls: a deterministic
    measure of work (wall time on a shared machine is not).  C-level work (a regex, ``str.find``)
    counts as the one line that calls it, so a scaling test built on this catches algorithms
    that loop in Python; the fuzz test's time bounds and `make bench` cover the rest."""
    lines = 0

    def local(frame: FrameType, event: str, arg: object) -> Callable[..., object] | None:
        nonlocal lines
        if event == "line":
            lines += 1
        return local

    def tracer(frame: FrameType, event: str, arg: object) -> Callable[..., object] | None:
        return local

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        function()
    finally:
        sys.settrace(previous)
    return lines


def read_inventory(path: Path) -> list[tuple[str, str, int, str]]:
    """An ``objects.inv`` (version 2) as ``(name, domain:type, priority, uri)`` rows, read the way
    intersphinx reads it (``$`` in a URI stands for the name)."""
    data = path.read_bytes()
    body = zlib.decompress(data.split(b"\n", 4)[4]).decode("utf-8")
    rows = []
    for line in body.splitlines():
        match = re.match(r"(.+?)\s+(\S+:\S+)\s+(-?\d+)\s+(\S+)", line)
        if match:
            name = match.group(1)
            rows.append((name, match.group(2), int(match.group(3)), match.group(4).replace("$", name)))
    return rows

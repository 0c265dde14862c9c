"""A finding inside a doc comment is reported at the same line and column by a docs build and by
``qemu-dbus check``: the place of the ``:dbus:`` role it is about.

`tests/roots/test-positions/positions.xml` puts references everywhere a doc comment has text: a
short description on the line of ``<!--`` and on its own line, ``@arg:`` descriptions whose text
starts after leading spaces or on a continuation line, a body paragraph whose reference is on
its third line (as QEMU's display XML has it: Sphinx used to report that one at the paragraph's
first line), a list, two references on one line, and roles that are only text (inside literal
text and a literal block).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sphinxext_qemudbus.check.checker import check_files
from sphinxext_qemudbus.check.summary import CheckOptions
from sphinxext_qemudbus.model.parser import parse_file

ROOT = Path(__file__).parent / "roots" / "test-positions"
WARNING = re.compile(r"SRC/positions\.xml:(\d+):(\d+): WARNING: (.*) \[dbus\.(R60\d)\]\Z")


def checker_findings(path: Path) -> set[tuple[int, int, str, str]]:
    diagnostics = check_files([parse_file(path)], CheckOptions("generic"))
    return {(d.location.line, d.location.column, d.message, d.code) for d in diagnostics if d.code.startswith("R60")}


def test_every_finding_points_at_its_role() -> None:
    lines = (ROOT / "positions.xml").read_text(encoding="utf-8").splitlines()
    findings = checker_findings(ROOT / "positions.xml")
    assert len(findings) == 14
    for line, column, _message, _code in findings:
        assert lines[line - 1][column - 1 :].startswith(":dbus:"), (line, column)


@pytest.mark.sphinx("html", testroot="positions", freshenv=True)
def test_sphinx_reports_each_finding_where_the_checker_does(app: Any, built: Callable[[Any], Any]) -> None:
    app.build()
    warnings = built(app).warnings()
    in_xml = {(int(m[1]), int(m[2]), m[3], m[4]) for w in warnings if (m := WARNING.match(w))}
    # Every warning about the XML has a column...
    assert len(in_xml) == len([w for w in warnings if w.startswith("SRC/positions.xml")]) == 12
    # ... and is the checker's finding at the same place.  The checker reads roles in the raw
    # text, so it also reports the two that are only text (in ``literal text`` and a literal
    # block); the docs build makes no reference of them.
    only_text = {(18, 11), (24, 11)}
    expected = {f for f in checker_findings(Path(app.srcdir) / "positions.xml") if f[:2] not in only_text}
    assert in_xml == expected
    # QEMU's case: the reference on the third line of its paragraph, not the first
    assert (16, 9, "reference to method 'org.example.Positions1.Register' does not resolve", "R601") in in_xml
    # A reference of a reST page keeps its node's place (the page has no columns)
    assert "SRC/index.rst:6: WARNING: reference to method 'org.example.Positions1.Missing' does not resolve" in (
        " ".join(warnings)
    )

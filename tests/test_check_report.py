"""What ``qemu-dbus check`` says first: a file's findings interface by interface, the errors that
make the rest moot before the rest, the missing metadata keys in one finding, and each hint in the
text output too, pointing at ``qemu-dbus rules CODE``, which shows a rule in full."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sphinxext_qemudbus.check.checker import check_files
from sphinxext_qemudbus.cli import main
from sphinxext_qemudbus.diagnostics.diagnostic import Diagnostic, Location, Severity
from sphinxext_qemudbus.diagnostics.output import grouped_text
from sphinxext_qemudbus.model.metadata import KEYS
from sphinxext_qemudbus.model.parser import parse_string

#: An interface outside the reserved prefix, with no metadata at all: the first finding must be
#: the one that makes the others moot.
OUTSIDE = """\
<node>
  <!--
      org.qemux.Foo1:

      A thing.
  -->
  <interface name="org.qemux.Foo1">
    <!--
        Do:

        Do it.

        Since: 1.0
    -->
    <method name="Do"/>
  </interface>
</node>
"""

#: Two interfaces in one file, each with a finding in its doc comment: each is reported under its
#: own interface, even the one above the second interface's element.
TWO = """\
<node>
  <!--
      org.example.One1:

      One.
  -->
  <interface name="org.example.One1">
    <method name="Undocumented"/>
  </interface>
  <!--
      org.example.Two1:

      Two, with a dangling :dbus:meth:`org.example.Two1.Nope`.
  -->
  <interface name="org.example.Two1"/>
</node>
"""


@pytest.fixture(autouse=True)
def _run_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the CLI keeps its cache in the working directory


def test_missing_metadata_is_one_finding_naming_every_key() -> None:
    found = [d for d in check_files([parse_string(OUTSIDE, "org.qemux.Foo1.xml")]) if d.code == "M301"]
    assert [d.message for d in found] == [
        "interface org.qemux.Foo1 lacks 7 of the org.qemu.Registry.* annotations: "
        "Implementers, Callers, Connection, Kind, ObjectPath, Stability, Since"
    ]


def test_the_error_that_makes_the_rest_moot_comes_first_with_its_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "org.qemux.Foo1.xml"
    path.write_text(OUTSIDE)
    assert main(["check", "--no-cache", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{path}: in interface org.qemux.Foo1:",
        f"{path}:7:14: error: interface org.qemux.Foo1 is not under the reserved prefix org.qemu. [P201]",
        "    hint: Name the interface org.qemu.<Name><version>; to check a project of your own, use --profile "
        "generic.  (more: qemu-dbus rules P201)",
        f"{path}:7:3: error: interface org.qemux.Foo1 lacks 7 of the org.qemu.Registry.* annotations: "
        "Implementers, Callers, Connection, Kind, ObjectPath, Stability, Since [M301]",
        "    hint: Add the annotations it names; qemu-dbus rules M301 lists every key, its values and what it means.",
    ]
    assert err == "1 file checked: 2 errors\n"


def test_findings_are_grouped_by_interface_doc_comments_included(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "two.xml"
    path.write_text(TWO)
    main(["check", "--no-cache", "--profile", "generic", "--select", "D502,R601,F801", str(path)])
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("    hint: ")]
    assert lines == [
        f"{path}: in interface org.example.One1:",
        f"{path}:8:5: warning: method Undocumented is not documented [D502]",
        f"{path}: in interface org.example.Two1:",
        f"{path}:13:28: error: reference to method 'org.example.Two1.Nope' does not resolve [R601]",
        f"{path}:15:3: warning: file defines 2 interfaces (org.example.One1, org.example.Two1); use one file per "
        "interface [F801]",
    ]


def test_a_hint_is_shown_once_per_file() -> None:
    def finding(line: int) -> Diagnostic:
        return Diagnostic(
            "D502", Severity.WARNING, Location("a.xml", line, 1), f"method M{line} is not documented", "Document it."
        )

    text = grouped_text(
        [finding(3), finding(4), Diagnostic("D502", Severity.WARNING, Location("b.xml", 3, 1), "m", "Document it.")], {}
    )
    assert text.splitlines() == [
        "a.xml:3:1: warning: method M3 is not documented [D502]",
        "    hint: Document it.  (more: qemu-dbus rules D502)",
        "a.xml:4:1: warning: method M4 is not documented [D502]",
        "b.xml:3:1: warning: m [D502]",
        "    hint: Document it.  (more: qemu-dbus rules D502)",
    ]


def test_a_hostile_interface_name_in_a_heading_is_escaped() -> None:
    text = grouped_text(
        [Diagnostic("G401", Severity.WARNING, Location("a.xml", 7, 1), "x")], {"a.xml": ((7, "org.x.A\n\u202eB"),)}
    )
    assert text.splitlines()[0] == "a.xml: in interface org.x.A\\n\\u202eB:"
    assert all(line.isprintable() for line in text.splitlines())


def test_json_keeps_the_order_of_places_and_every_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "org.qemux.Foo1.xml"
    path.write_text(OUTSIDE)
    main(["check", "--no-cache", "--format", "json", str(path)])
    rows = json.loads(capsys.readouterr().out)
    assert [(row["line"], row["column"], row["code"]) for row in rows] == [(7, 3, "M301"), (7, 14, "P201")]
    assert all(row["hint"] for row in rows)


def test_rules_code_shows_the_rule_in_full_and_the_metadata_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "M301"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("M301  missing-metadata  (error, qemu profile only; Registry metadata)\n")
    assert "  Fix: Add the annotations it names" in out
    for key in KEYS:
        assert f"    {key.key}  (on " in out
    assert "``" not in out
    assert main(["rules", "D502", "--format", "json"]) == 0
    assert [row["code"] for row in json.loads(capsys.readouterr().out)] == ["D502"]
    assert main(["rules", "Z999"]) == 2
    assert "qemu-dbus rules: error: unknown rule code or name: 'Z999'" in capsys.readouterr().err

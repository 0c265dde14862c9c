"""Output that cannot be forged: a name from an XML file or a peer is printed as one line, as it is
written, whatever characters it holds; libxml2's messages are one line and give no advice the tool
cannot take."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sphinxext_qemudbus.check.checker import check_files
from sphinxext_qemudbus.check.summary import CheckOptions
from sphinxext_qemudbus.cli import main
from sphinxext_qemudbus.diagnostics.diagnostic import Diagnostic, Location, Severity
from sphinxext_qemudbus.diagnostics.output import grouped_text, printable, render
from sphinxext_qemudbus.live.conform import compare_object, parse_reply
from sphinxext_qemudbus.model.parser import parse_bytes, parse_string
from sphinxext_qemudbus.model.registry import Registry

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).parent / "corpus"


def char_refs(text: str) -> str:
    """``text`` as XML attribute content: every character as a character reference."""
    return "".join(f"&#{ord(c)};" for c in text)


# Characters XML 1.0 allows in a document (as character references too).
XML_CHARACTERS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\ufffe\uffff").filter(
    lambda c: c in "\t\n\r" or ord(c) >= 0x20
)


@given(name=st.text(XML_CHARACTERS, min_size=1, max_size=12))
@settings(max_examples=300, deadline=None)
def test_a_hostile_name_is_one_printable_line(name: str) -> None:
    xml = (
        f'<node><interface name="{char_refs(name)}"><method name="{char_refs(name)}"/>'
        f'<property name="{char_refs(name)}" type="u" access="read"/></interface></node>'
    )
    diagnostics = check_files([parse_string(xml, "f.xml")], CheckOptions("generic"))
    text = render(diagnostics, "text")
    lines = text.splitlines()
    assert len(lines) == len(diagnostics)
    assert all(line.isprintable() for line in lines), lines
    # check's report: a heading per interface (the name escaped too) and hints, each one line.
    grouped = grouped_text(diagnostics, {"f.xml": ((1, name),)}).splitlines()
    assert all(line.isprintable() for line in grouped), grouped
    headings = [line for line in grouped if line.startswith("f.xml: in interface ")]
    hints = [line for line in grouped if line.startswith("    hint: ")]
    assert len(grouped) == len(diagnostics) + len(headings) + len(hints)
    github = render(diagnostics, "github").splitlines()
    assert len(github) == len(diagnostics)
    assert all(line.isprintable() for line in github)
    assert [row["message"] for row in json.loads(render(diagnostics, "json"))] == [d.message for d in diagnostics]


def test_a_newline_in_a_name_cannot_forge_a_diagnostic(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    forged = "X&#10;/etc/passwd:1:1: error: all fine [S101]"
    path = tmp_path / "f.xml"
    path.write_text(f'<node><interface name="org.example.A1"><method name="{forged}"/></interface></node>')
    main(["check", "--no-cache", "--profile", "generic", "--select", "D502", str(path)])
    assert capsys.readouterr().out.splitlines()[:2] == [
        f"{path}: in interface org.example.A1:",
        f"{path}:1:40: warning: method X\\n/etc/passwd:1:1: error: all fine [S101] is not documented [D502]",
    ]


def test_bidi_controls_are_escaped(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "f.xml"
    path.write_text('<node><interface name="org.example.A\u202e1gnp.exe"/></node>')
    main(["check", "--no-cache", "--profile", "generic", str(path)])
    captured = capsys.readouterr()
    assert "\u202e" not in captured.out + captured.err
    assert "org.example.A\\u202e1gnp.exe" in captured.out


def test_a_peer_member_name_cannot_forge_a_conform_line() -> None:
    registry = Registry.load([ROOT / "interfaces"])
    reply = (
        '<node><interface name="org.qemu.Display1.VM">'
        '<method name="Evil&#10;org.qemu:/x:1: error: forged [L001]"/></interface></node>'
    )
    live = parse_reply("org.qemu", "/org/qemu/Display1/VM", reply)
    findings = compare_object(registry, "org.qemu", live, "unix")
    lines = render(findings, "text").splitlines()
    assert len(lines) == len(findings)
    assert not [line for line in lines if line.startswith("org.qemu:/x")]


def test_printable_keeps_printable_text_and_escapes_the_rest() -> None:
    assert printable("plain: é 日本 ✓") == "plain: é 日本 ✓"
    assert printable("a\nb\r\tc\x1b[31m\x7f\u202e\u2066\u200b\udcff\U000e0001") == (
        "a\\nb\\r\\tc\\x1b[31m\\x7f\\u202e\\u2066\\u200b\\udcff\\U000e0001"
    )


def test_an_undecodable_file_name_prints_instead_of_raising(tmp_path: Path) -> None:
    # A file name that is not UTF-8 reaches Python as surrogate escapes; printed raw it would
    # raise UnicodeEncodeError on a UTF-8 stdout.
    name = "bad-\udcff.xml"
    diagnostic = Diagnostic("X001", Severity.ERROR, Location(str(tmp_path / name), 1, 1), "broken")
    for fmt in ("text", "github", "json", "sarif"):
        render([diagnostic], fmt).encode("utf-8")


# --- libxml2's messages -------------------------------------------------------------------------


def test_x001_messages_are_one_line_without_parser_option_advice() -> None:
    for path in sorted(CORPUS.glob("*.xml")):
        for d in parse_bytes(path.read_bytes(), path.name).diagnostics:
            if d.code == "X001":
                assert "\n" not in d.message, (path.name, d.message)
                assert d.message == d.message.strip()
                assert "XML_PARSE_HUGE" not in d.message, (path.name, d.message)


def test_the_nesting_limit_is_said_plainly() -> None:
    (error,) = parse_bytes((CORPUS / "deep-nesting.xml").read_bytes(), "deep.xml").diagnostics
    assert error.code == "X001"
    assert error.message == "elements nested deeper than 256 levels"


@given(st.binary(max_size=300).map(lambda tail: b"<node><interface name='a.b1'>" + tail))
@settings(max_examples=200, deadline=None)
def test_every_syntax_message_is_one_clean_line(data: bytes) -> None:
    for d in parse_bytes(data, "f.xml").diagnostics:
        assert "\n" not in d.message
        assert "XML_PARSE_HUGE" not in d.message

"""Internal entities: plain-text ones are expanded (real files declare them: PackageKit's), with the
expansion bounded; external and parameter entities, entities holding references or markup, and
anything that is not plainly one of those are refused before lxml sees the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sphinxext_qemudbus.check.checker import check_files
from sphinxext_qemudbus.check.summary import CheckOptions
from sphinxext_qemudbus.model.files import MAX_FILE_SIZE
from sphinxext_qemudbus.model.parser import parse_bytes, parse_file, parse_string

REALWORLD = Path(__file__).parent / "realworld"
PACKAGEKIT = REALWORLD / "org.freedesktop.PackageKit.xml"


def test_packagekit_is_read_with_a_note() -> None:
    parsed = parse_file(PACKAGEKIT)
    assert [(d.code, d.location.line, d.location.column) for d in parsed.diagnostics] == [("X023", 4, 3)]
    assert parsed.diagnostics[0].message == "the file declares entity ERROR_GENERAL, expanded as plain text"
    assert [i.name for i in parsed.interfaces] == ["org.freedesktop.PackageKit", "org.freedesktop.PackageKit.Offline"]
    members = {m.name for m in parsed.interfaces[0].members}
    assert {"VersionMajor", "CreateTransaction", "SetProxy", "TransactionListChanged"} <= members


def test_packagekit_checks_without_xml_errors_and_renders_in_a_real_build(tmp_path: Path) -> None:
    found = check_files([parse_file(PACKAGEKIT)], CheckOptions("generic"))
    assert not [d for d in found if d.code.startswith("X") and d.code != "X023"]
    source = tmp_path / "docs"
    source.mkdir()
    (source / "conf.py").write_text('extensions = ["sphinxext_qemudbus"]\n')
    (source / PACKAGEKIT.name).write_bytes(PACKAGEKIT.read_bytes())
    (source / "index.rst").write_text(f"PackageKit\n==========\n\n.. dbus-doc:: {PACKAGEKIT.name}\n")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "--no-color", "-b", "html", "-q", str(source), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "out" / "index.html").read_text()
    assert "org.freedesktop.PackageKit.Offline" in page
    assert "CreateTransaction" in page


def test_an_entity_expands_in_attribute_values_and_not_in_comments() -> None:
    xml = (
        '<!DOCTYPE node [\n  <!ENTITY IFACE "org.example.Test1">\n  <!ENTITY WHO \'the "peer"\'>\n]>\n'
        '<node>\n<!--\n  org.example.Test1:\n\n  Called by &WHO;.\n-->\n<interface name="&IFACE;">\n'
        '<annotation name="org.example.Who" value="&WHO;"/>\n</interface>\n</node>\n'
    )
    parsed = parse_string(xml, "t.xml")
    assert [d.code for d in parsed.diagnostics] == ["X023"]
    assert parsed.diagnostics[0].message == "the file declares entities IFACE, WHO, expanded as plain text"
    (interface,) = parsed.interfaces
    assert interface.name == "org.example.Test1"
    assert interface.location.line == 11
    assert [a.value for a in interface.annotations] == ['the "peer"']
    # XML never expands a reference inside a comment: the doc comment reads as written.
    assert interface.doc is not None
    assert interface.doc.raw_body.strip() == "Called by &WHO;."


REFUSED = {
    "external": ('<!ENTITY e SYSTEM "file:///etc/passwd">', "external entities are not allowed"),
    "external public": ('<!ENTITY e PUBLIC "-//x//y" "http://example.com/x">', "external entities are not allowed"),
    "parameter": ('<!ENTITY % p "x">', "parameter entities are not allowed"),
    "nested": ('<!ENTITY a "x"><!ENTITY b "&a;&a;">', "entity b holds a reference or markup"),
    "markup": ("<!ENTITY m \"<method name='X'/>\">", "entity m holds a reference or markup"),
    "character reference": ('<!ENTITY c "&#60;method/>">', "entity c holds a reference or markup"),
    "parameter reference": ('<!ENTITY % p "x"> %p;', "parameter entities are not allowed"),
    "predefined name": ('<!ENTITY lt "x">', "entity name 'lt' is not allowed"),
    "unparsed": ('<!ENTITY u SYSTEM "x.png" NDATA png>', "external entities are not allowed"),
    "malformed": ("<!ENTITY e>", "not one this tool reads"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_everything_else_is_refused_before_lxml_sees_it(case: str) -> None:
    declaration, reason = REFUSED[case]
    xml = f'<!DOCTYPE node [\n{declaration}\n]>\n<node><interface name="org.example.A1">&e;</interface></node>'
    parsed = parse_string(xml, "t.xml")
    assert parsed.node is None
    assert [(d.code, d.location.line) for d in parsed.diagnostics] == [("X003", 2)]
    assert reason in parsed.diagnostics[0].message


def test_a_declaration_outside_the_internal_subset_is_refused() -> None:
    for xml in (
        '<!-- <!ENTITY e "x"> --><node/>',
        '<!DOCTYPE node [<!ENTITY e "x">]><node><!-- <!ENTITY f SYSTEM "/etc/passwd"> --></node>',
    ):
        assert [d.code for d in parse_string(xml, "t.xml").diagnostics] == ["X003"], xml


def test_expansion_is_bounded_by_the_file_size_bound() -> None:
    value = "x" * 1000
    references = "&e;" * (MAX_FILE_SIZE // 1000 + 1)
    xml = f'<!DOCTYPE node [<!ENTITY e "{value}">]><node><interface name="a.b1">{references}</interface></node>'
    parsed = parse_string(xml, "t.xml")
    assert parsed.node is None
    assert [d.code for d in parsed.diagnostics] == ["X003"]
    assert "larger than 4 MiB" in parsed.diagnostics[0].message


def test_a_reference_to_an_undeclared_entity_is_still_an_error() -> None:
    parsed = parse_string('<!DOCTYPE node [<!ENTITY e "x">]><node name="&f;"/>', "t.xml")
    assert [d.code for d in parsed.diagnostics] == ["X001"]


def test_text_inside_a_documentation_extension_is_not_stray() -> None:
    xml = (
        '<node xmlns:doc="http://www.freedesktop.org/dbus/1.0/doc.dtd"><interface name="org.example.A1">'
        "<doc:doc><doc:para>Words <doc:tt>code</doc:tt>.</doc:para></doc:doc>stray</interface></node>"
    )
    parsed = parse_string(xml, "t.xml")
    assert [(d.code, d.message) for d in parsed.diagnostics] == [("X014", "unexpected text 'stray' inside <interface>")]


# Plain text: what an entity may hold (no "&", "%" or "<"), quotes and newlines included.
PLAIN = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="&%<\x00\ufffe\uffff").filter(
        lambda c: c in "\t\n\r" or ord(c) >= 0x20
    ),
    max_size=20,
)
NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,8}", fullmatch=True).filter(
    lambda n: n not in {"lt", "gt", "amp", "quot", "apos"}
)


@given(st.dictionaries(NAMES, PLAIN, min_size=1, max_size=4))
@example({"A": "\r\n"})  # libxml2 expanded a CR LF in an entity's text into two spaces
@settings(max_examples=150, deadline=None)
def test_expansion_is_textual_substitution(entities: dict[str, str]) -> None:
    # Any set of plain-text entities, used in attribute values, reads as the same file with their
    # text written out (escaped as an attribute value needs).
    def declare(name: str, value: str) -> str:
        return f"<!ENTITY {name} {quoted(value)}>"

    def quoted(value: str) -> str:
        return f"'{value}'" if '"' in value else f'"{value}"'

    declarable = {name: value for name, value in entities.items() if not ('"' in value and "'" in value)}
    if not declarable:
        return
    subset = "".join(declare(name, value) for name, value in declarable.items())
    uses = " ".join(f"&{name};" for name in declarable)
    written = " ".join(declarable.values()).replace('"', "&quot;")

    def document(head: str, value: str) -> str:
        return f'{head}<node><interface name="a.b1"><annotation name="x.y" value="{value}"/></interface></node>'

    expanded = parse_string(document(f"<!DOCTYPE node [{subset}]>", uses), "t.xml")
    plain = parse_string(document("", written), "t.xml")
    assert [d.code for d in expanded.diagnostics] == ["X023"]
    assert not plain.diagnostics
    assert expanded.interfaces[0].annotations[0].value == plain.interfaces[0].annotations[0].value


@given(st.binary(max_size=200))
@settings(max_examples=200, deadline=None)
def test_any_internal_subset_is_expanded_or_refused_never_raised(subset: bytes) -> None:
    data = b"<!DOCTYPE node [<!ENTITY " + subset + b"]><node/>"
    parsed = parse_bytes(data, "t.xml")
    assert parsed.node is not None or parsed.errors

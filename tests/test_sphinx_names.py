"""D-Bus names are hostile: whatever an XML file or a hand-written description calls an object,
it becomes text and a sanitized id, never markup, and an invalid name is a located warning.

Real builds; the HTML is parsed and compared with what a page with valid names holds.
"""

from __future__ import annotations

import html
import re
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sphinxext_qemudbus.model.names import interface_name_error, member_name_error
from sphinxext_qemudbus.sphinx.render import directive_argument
from sphinxext_qemudbus.sphinx.untrusted import unsafe_scheme

from .test_sphinx_untrusted import Page

XML = "SRC/names.xml"
HOSTILE_WARNINGS = [
    f'{XML}:5: WARNING: invalid method name \'X" onmouseover="alert(1)" data-x="\': method name may only hold '
    "[A-Za-z0-9_] [dbus.S102]",
    f"{XML}:6: WARNING: invalid method name 'A<U+000A>B': method name may only hold [A-Za-z0-9_] [dbus.S102]",
    f"{XML}:7: WARNING: invalid method name '<U+0020>Padded<U+0020>': method name may only hold [A-Za-z0-9_] "
    "[dbus.S102]",
    f"{XML}:8: WARNING: invalid method name 'Call<U+0028><U+0029>': method name may only hold [A-Za-z0-9_] [dbus.S102]",
    f"{XML}:9: WARNING: invalid signal name '<img src=x onerror=alert(2)>': signal name may only hold "
    "[A-Za-z0-9_] [dbus.S102]",
    f"{XML}:10: WARNING: invalid property name 'p<b>': property name may only hold [A-Za-z0-9_] [dbus.S103]",
    f"{XML}:12: WARNING: invalid interface name 'org.example.Bad\" onclick=\"alert(3)': interface name element "
    "'Bad\" onclick=\"alert(3)' may only hold [A-Za-z0-9_] [dbus.S101]",
    'SRC/index.rst:10: WARNING: invalid method name \'Y" onclick="alert(4)" data-y="\': method name may only '
    "hold [A-Za-z0-9_] [dbus.S102]",
    "SRC/index.rst:12: WARNING: invalid property name '<script>alert(5)</script>': property name may only hold "
    "[A-Za-z0-9_] [dbus.S103]",
]
# What an id of a page holds: make_id keeps [A-Za-z0-9._-]; Sphinx's index keys are letters, "_".
SAFE_ID = re.compile(r"[\w.-]+\Z")
# Sphinx's own reading of an objects.inv line (sphinx.util.inventory): names may hold spaces.
INVENTORY_LINE = re.compile(r"(.+?)\s+(\S+)\s+(-?\d+)\s+?(\S*)\s+(.*)\Z")


def inventory_names(outdir: Path) -> list[str]:
    """The names of the ``dbus`` objects in ``objects.inv`` (the hidden bare-name aliases aside);
    every line must read as one entry."""
    body = zlib.decompress((outdir / "objects.inv").read_bytes().split(b"\n", 4)[4]).decode("utf-8")
    names = []
    for line in body.splitlines():
        match = INVENTORY_LINE.match(line)
        assert match, f"objects.inv line does not parse: {line!r}"
        if match.group(2).startswith("dbus:") and int(match.group(3)) >= 0:
            names.append(match.group(1))
    return names


def page_shape(outdir: Path) -> tuple[set[str], set[str]]:
    """Every element and every attribute name of every page; checks each id and link on the way."""
    tags: set[str] = set()
    attributes: set[str] = set()
    for path in outdir.rglob("*.html"):
        for tag, attrs in Page(path.read_text(encoding="utf-8")).elements:
            tags.add(tag)
            attributes.update(attrs)
            if attrs.get("id") is not None:
                assert SAFE_ID.match(attrs["id"] or ""), (path.name, tag, attrs)
            href = attrs.get("href") or ""
            assert unsafe_scheme(href) is None, (path.name, tag, attrs)
            if "#" in href:
                assert SAFE_ID.match(href.rsplit("#", 1)[1] or "x"), (path.name, tag, attrs)
    return tags, attributes


# --- a fixed example ---------------------------------------------------------------------------


@pytest.mark.sphinx("html", testroot="hostile-names", freshenv=True)
def test_hostile_names_are_text_and_warnings(app: Any, built: Callable[[Any], Any]) -> None:
    app.build()
    result = built(app)
    assert sorted(result.warnings()) == sorted(HOSTILE_WARNINGS)
    _tags, attributes = page_shape(result.outdir)
    assert not {"onmouseover", "onclick", "onerror", "data-x", "data-y"} & attributes
    for path in result.outdir.rglob("*.html"):
        for tag, attrs in Page(path.read_text(encoding="utf-8")).elements:
            assert tag != "img" or (attrs.get("src") or "").startswith("_static/"), (path.name, attrs)
    page = Page(result.html("index"))
    assert sum(1 for tag, _ in page.elements if tag == "script") == sum(
        1 for tag, _ in Page(result.html("genindex")).elements if tag == "script"
    )  # the theme's scripts, nothing more
    text = "".join(page.text)
    for name in ('X" onmouseover="alert(1)" data-x="', "<img src=x onerror=alert(2)>", "<script>alert(5)</script>"):
        assert name in text
    # ids: make_id's for every object; QEMU's bare-name anchors for valid names only
    anchors = {anchor for _page, anchor in result.anchors()}
    assert {"org.example.Names1", "org.example.Names1.Valid", "org.example.Names1-section"} <= anchors
    assert {"org.example.Hand1.Valid", "org.example.Hand1-section"} <= anchors
    assert "dbus-org.example.Names1.X-onmouseover-alert-1-data-x" in anchors
    assert not [a for a in anchors if "Bad" in a and not a.startswith("dbus-")]
    # one object per XML member, whatever its name holds; objects.inv reads back line by line
    names = inventory_names(result.outdir)
    assert len(names) == len(set(names)) == 14
    assert "org.example.Names1.A<U+000A>B" in names
    assert 'org.example.Names1.X" onmouseover="alert(1)" data-x="' in names


# --- generated names ---------------------------------------------------------------------------

# Characters that break markup, ids, lines or attributes, and some that are valid in names.
_ALPHABET = st.sampled_from(list("aZ_9.-\"'<>&=/\\:`*|()[]{}! \t\n\u202e\u00e9\u200b"))
_PAYLOADS = st.sampled_from(
    ['X" onmouseover="alert(1)" data-x="', "<script>alert(1)</script>", "a'><img src=x onerror=alert(1)>", ""]
)
_NAMES = st.one_of(_PAYLOADS, st.text(_ALPHABET, max_size=12))


@st.composite
def projects(draw: st.DrawFn) -> dict[str, Any]:
    """An interface name and distinct names for its methods, signals and properties (and their
    arg names and types), used in an XML file and in hand-written markup."""
    interface = draw(st.one_of(st.just("org.example.Fuzz1"), _NAMES))
    members = draw(st.lists(st.tuples(st.sampled_from(["method", "signal", "property"]), _NAMES), max_size=5))
    members = list({name: (kind, name) for kind, name in members}.values())  # one member per name
    args = draw(st.lists(st.tuples(_NAMES, _NAMES), min_size=len(members), max_size=len(members)))
    return {"interface": interface, "members": [(*member, *arg) for member, arg in zip(members, args)]}


def _xml(project: dict[str, Any]) -> str:
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        "<node>",
        f"  <interface name={quoteattr(project['interface'])}>",
    ]
    for kind, name, arg, code in project["members"]:
        if kind == "property":
            lines.append(f'    <property name={quoteattr(name)} type={quoteattr(code)} access="read"/>')
        else:
            lines.append(
                f"    <{kind} name={quoteattr(name)}><arg name={quoteattr(arg)} type={quoteattr(code)}/></{kind}>"
            )
    return "\n".join([*lines, "  </interface>", "</node>", ""])


def _hand_written(name: str) -> str | None:
    """A name as a hand-written directive argument (one line), or None when it cannot be one
    (empty, or read as an option)."""
    line = " ".join(name.split())
    return line if line and not line.startswith(":") else None


def _rst(project: dict[str, Any]) -> str:
    """The same objects by hand, under another interface name."""
    interface = _hand_written(f"H{project['interface']}")
    lines = ["Names", "=====", "", ".. dbus-doc:: names.xml", "", f".. dbus:interface:: {interface}", ""]
    for kind, name, _arg, _code in project["members"]:
        if (written := _hand_written(name)) is not None:
            lines += [f"   .. dbus:{kind}:: {written}", ""]
    return "\n".join(lines)


def _invalid_names(project: dict[str, Any]) -> tuple[int, int]:
    """How many S101-S103 warnings the build owes, in the XML and in the reST: one per object
    with an invalid name (of a hand-written one, what the domain reads: stripped, without a
    trailing ``()``)."""
    in_xml = interface_name_error(project["interface"]) is not None
    in_rst = interface_name_error(str(_hand_written(f"H{project['interface']}"))) is not None
    for _kind, name, _arg, _code in project["members"]:
        in_xml += member_name_error(directive_argument(name, member=True)) is not None
        if (written := _hand_written(name)) is not None:
            read = written[:-2] if written.endswith("()") else written
            in_rst += member_name_error(read.strip()) is not None
    return in_xml, in_rst


def _build(make_app: Any, rootdir: Any, folder: Path, project: dict[str, Any]) -> Any:
    folder.mkdir()
    (folder / "conf.py").write_text('extensions = ["sphinxext_qemudbus"]\nexclude_patterns = ["_build"]\n')
    (folder / "names.xml").write_text(_xml(project), encoding="utf-8")
    (folder / "index.rst").write_text(_rst(project), encoding="utf-8")
    app = make_app("html", srcdir=type(rootdir)(str(folder)), freshenv=True)
    app.build()
    return app


_VALID = {
    "interface": "org.example.Fuzz1",
    "members": [("method", "Do", "arg", "s"), ("signal", "Done", "arg", "a{sv}"), ("property", "Level", "", "u")],
}


_SHAPES: dict[str, tuple[set[str], set[str]]] = {}


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="qemu-dbus-names-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


# Found by make check before it was derandomized: the arg name and type were read as markup
# (`:arg `9 :`:` gave a <cite> element) and the arg left out of the signature.
_MARKUP_ARG = {"interface": "org.example.Fuzz1", "members": [("method", "Do", ":`", "`9")]}


@given(project=projects())
@example(project=_MARKUP_ARG)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_generated_names_add_no_element_or_attribute(
    project: dict[str, Any], make_app: Any, rootdir: Any, workdir: Path, built: Callable[[Any], Any]
) -> None:
    """Whatever the names, the pages hold only elements and attributes that the pages of the
    same project with valid names hold, ids are make_id's, objects.inv reads back, and every
    invalid name has its warning."""
    if "valid" not in _SHAPES:
        _SHAPES["valid"] = page_shape(Path(_build(make_app, rootdir, workdir / "valid", _VALID).outdir))
    valid_tags, valid_attributes = _SHAPES["valid"]
    folder = workdir / f"p{len(list(workdir.iterdir()))}"
    app = _build(make_app, rootdir, folder, project)
    tags, attributes = page_shape(Path(app.outdir))
    assert tags <= valid_tags
    assert attributes <= valid_attributes
    warnings = built(app).warnings()
    in_xml = [w for w in warnings if w.startswith("SRC/names.xml:") and re.search(r"\[dbus\.S10[123]\]$", w)]
    in_rst = [w for w in warnings if w.startswith("SRC/index.rst:") and re.search(r"\[dbus\.S10[123]\]$", w)]
    assert (len(in_xml), len(in_rst)) == _invalid_names(project), warnings
    inventory_names(Path(app.outdir))


def test_names_and_types_from_xml_are_text_in_the_signature_and_the_fields(
    make_app: Any, rootdir: Any, workdir: Path, built: Callable[[Any], Any]
) -> None:
    """Every arg is in the signature and in the fields, whatever its name and type hold: they
    are text, never markup (only doc comments are reST)."""
    project = {
        "interface": "org.example.Fuzz1",
        "members": [
            ("method", "Do", ":`", "`9"),
            ("signal", "Done", "*a* b_", "|s|"),
            ("method", "Call", "x``y", "a{sv}"),
        ],
    }
    app = _build(make_app, rootdir, workdir / "markup-args", project)
    page = built(app).html("index")
    tags, _attributes = page_shape(Path(app.outdir))
    assert "cite" not in tags
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())
    assert "method Do ( `9 :` ) → ( )" in text
    assert ":` ( `9 )" in text  # the field: name, then the type (invalid: no readable form)
    assert "signal Done ( |s| *a*<U+0020>b_ )" in text
    assert "method Call ( a{sv} x``y ) → ( )" in text
    assert "x``y ( a{sv} , dict of string to variant )" in text
    assert "<cite>" not in page


@given(name=st.one_of(_NAMES, st.text(max_size=12)), member=st.booleans())
def test_a_name_becomes_one_directive_line_that_keeps_it_invalid(name: str, member: bool) -> None:
    """What render writes for a name: one printable line the directive reads back as it is
    (stripped, and for a member without a trailing ``()``); a valid name unchanged, an invalid
    one still invalid."""
    text = directive_argument(name, member=member)
    assert text
    assert text.isprintable()
    assert text == text.strip()
    assert not text.startswith(":")
    assert not (member and text.endswith("()"))
    check = member_name_error if member else interface_name_error
    if check(name) is None:
        assert text == name
    else:
        assert check(text) is not None

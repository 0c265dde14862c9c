"""Doc comments are untrusted text: they may not read files, write raw HTML or link to scripts.

Real builds of `tests/roots/test-untrusted` (a reST page and a MyST page, each rendering a doc
comment that tries everything) whose project otherwise allows raw HTML and file insertion; the
HTML is parsed, and every file of the output is searched for the secrets the XML tried to read.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sphinxext_qemudbus.sphinx.untrusted import ALLOWED_DIRECTIVES, SAFE_SCHEMES, unsafe_scheme

SECRET = "TOPSECRET-7f3c0a"  # what ../secret.txt holds: no output file may contain it
XML = "SRC/hostile.xml"

EXPECTED_WARNINGS = [
    f"{XML}:6: WARNING: the 'raw' directive is not allowed in documentation from XML; it is left out [dbus.doc-markup]",
    f"{XML}:10: WARNING: the 'include' directive is not allowed in documentation from XML; it is left out "
    "[dbus.doc-markup]",
    f"{XML}:12: WARNING: the 'include' directive is not allowed in documentation from XML; it is left out "
    "[dbus.doc-markup]",
    f"{XML}:15: WARNING: the 'literalinclude' directive is not allowed in documentation from XML; it is left out "
    "[dbus.doc-markup]",
    f"{XML}:17: WARNING: the 'csv-table' directive is not allowed in documentation from XML; it is left out "
    "[dbus.doc-markup]",
    f"{XML}:20: WARNING: the 'csv-table' directive is not allowed in documentation from XML; it is left out "
    "[dbus.doc-markup]",
    f"{XML}:23: WARNING: the 'image' directive is not allowed in documentation from XML; it is left out "
    "[dbus.doc-markup]",
    f"{XML}:25: WARNING: the 'meta' directive is not allowed in documentation from XML; it is left out "
    "[dbus.doc-markup]",
    f"{XML}:28: WARNING: the 'role' directive is not allowed in documentation from XML; it is left out "
    "[dbus.doc-markup]",
    f"{XML}:31: WARNING: a link to a javascript: URL is not allowed in documentation from XML; its text is kept "
    "[dbus.unsafe-link]",
    f"{XML}:31: WARNING: a link to a vbscript: URL is not allowed in documentation from XML; its text is kept "
    "[dbus.unsafe-link]",
    f"{XML}:31: WARNING: downloads are not allowed in documentation from XML; the text is kept [dbus.doc-markup]",
    # a target block is located at the element whose doc comment holds it (docutils gives it no
    # XML line of its own), and named
    f"{XML}:47: WARNING: link target 'two': a link to a data: URL is not allowed in documentation from XML; "
    "its text is kept [dbus.unsafe-link]",
    f"{XML}:50: WARNING: the 'include' directive is not allowed in documentation from XML; it is left out "
    "[dbus.doc-markup]",
    f"{XML}:58: WARNING: a link to a javascript: URL is not allowed in documentation from XML; its text is kept "
    "[dbus.unsafe-link]",
    # what roles of another extension (evilroles.py) make, swept after the parse
    f"{XML}:60: WARNING: raw output is not allowed in documentation from XML; it is left out [dbus.doc-markup]",
    f"{XML}:60: WARNING: local images are not allowed in documentation from XML; it is left out [dbus.doc-markup]",
    "SRC/hostile-md.xml:6: WARNING: the 'raw' directive is not allowed in documentation from XML; it is left out "
    "[dbus.doc-markup]",
    "SRC/hostile-md.xml:10: WARNING: the 'include' directive is not allowed in documentation from XML; it is left "
    "out [dbus.doc-markup]",
    "SRC/hostile-md.xml:12: WARNING: a link to a javascript: URL is not allowed in documentation from XML; its "
    "text is kept [dbus.unsafe-link]",
]


class Page(HTMLParser):
    """Every element of a page with its attributes, and its text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []  # the text of inline scripts
        self._in_script = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data
        else:
            self.text.append(data)


@pytest.fixture
def untrusted_build(make_app: Any, copied_root: Callable[[str], Any], built: Callable[[Any], Any]) -> Any:
    srcdir = copied_root("untrusted")
    # ../secret.txt from the documents: next to the source folder, outside it
    (Path(srcdir).parent / "secret.txt").write_text(f"{SECRET}\n", encoding="utf-8")
    app = make_app("html", srcdir=srcdir, freshenv=True)
    app.build()
    return built(app)


def _passwd_first_line() -> str:
    return Path("/etc/passwd").read_text(encoding="utf-8").splitlines()[0]


def test_doc_comments_cannot_read_files_write_raw_html_or_link_scripts(untrusted_build: Any) -> None:
    assert sorted(untrusted_build.warnings()) == sorted(EXPECTED_WARNINGS)
    passwd = _passwd_first_line()
    for path in untrusted_build.outdir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data, path
            assert passwd.encode() not in data, path
    # nothing copied into the output: no image, no download
    assert not (untrusted_build.outdir / "_images").exists()
    assert not (untrusted_build.outdir / "_downloads").exists()
    for docname in ("index", "markdown"):
        html = untrusted_build.html(docname)
        assert "raw-token" not in html
        assert "raw-from-markdown" not in html
        assert "role-token" not in html
        page = Page(html)
        for tag, attributes in page.elements:
            for name in ("href", "src"):
                value = attributes.get(name)
                assert value is None or unsafe_scheme(value) is None, (tag, attributes)
            assert not (tag == "meta" and "http-equiv" in attributes), attributes
        assert not [script for script in page.scripts if "alert" in script]


def test_harmless_markup_and_the_text_of_refused_links_stay(untrusted_build: Any) -> None:
    page = Page(untrusted_build.html("index"))
    hrefs = {attributes.get("href") for _tag, attributes in page.elements}
    assert {"https://www.qemu.org/", "other.html#part"} <= hrefs
    assert any(href and href.startswith("mailto:") for href in hrefs)
    text = " ".join("".join(page.text).split())
    for kept in ("Links: one, two, JaVaScRiPt:alert(3), four, and a download.", "An admonition.", "int x = 1;"):
        assert kept in text
    assert "Poke it." in text


def test_the_projects_own_markup_keeps_raw_html_and_file_insertion(untrusted_build: Any) -> None:
    """Raw and file insertion are off while the XML is parsed, and on again after it."""
    html = untrusted_build.html("index")
    assert '<p id="own-raw">' in html
    assert "An included paragraph of the project" in html


# --- link schemes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "scheme"),
    [
        ("javascript:alert(1)", "javascript"),
        ("JaVaScRiPt:alert(1)", "javascript"),
        (" \x01javascript:alert(1)", "javascript"),  # a browser strips C0 controls and spaces first
        ("java\tscript:alert(1)", "javascript"),  # ... and tabs and line breaks anywhere
        ("java\nscr\ript:alert(1)", "javascript"),
        ("vbscript:msgbox", "vbscript"),
        ("data:text/html,<script>", "data"),
        ("file:///etc/passwd", "file"),
        ("https://www.qemu.org/", None),
        ("HTTP://example.org", None),
        ("mailto:qemu-devel@nongnu.org", None),
        ("other.html#part", None),
        ("#anchor", None),
        ("../a:b/c", None),  # a colon after a '/' is no scheme
        ("", None),
    ],
)
def test_unsafe_scheme(uri: str, scheme: str | None) -> None:
    assert unsafe_scheme(uri) == scheme


_NOISE = st.text(alphabet="".join(chr(code) for code in range(0x21)), max_size=3)


@given(
    st.sampled_from(["javascript", "vbscript", "data", "file", "blob"]),
    st.lists(st.booleans(), min_size=10, max_size=10),
    _NOISE,
    st.lists(st.sampled_from(["", "\t", "\n", "\r"]), min_size=11, max_size=11),
)
def test_no_spelling_of_a_script_scheme_passes(scheme: str, upper: list[bool], lead: str, inserted: list[str]) -> None:
    """Whatever the case, and whatever a browser would ignore around or inside it."""
    letters = [char.upper() if flag else char for char, flag in zip(scheme, upper)]
    spelled = "".join(piece + char for piece, char in zip(inserted, letters)) + inserted[-1]
    assert unsafe_scheme(f"{lead}{spelled}:payload") == scheme


@given(st.sampled_from(sorted(SAFE_SCHEMES)), st.text(alphabet=string.printable, max_size=20))
def test_safe_schemes_and_relative_urls_pass(scheme: str, rest: str) -> None:
    assert unsafe_scheme(f"{scheme}:{rest}") is None
    assert unsafe_scheme(f"/{rest}") is None


# --- dbus-doc paths ------------------------------------------------------------------------------

MINIMAL_XML = '<node><interface name="org.example.{}1"><method name="Ping"/></interface></node>\n'


def _path_project(tmp_path: Path, srctree: str | None) -> Path:
    """tmp/src (the source folder) and tmp/tree/xml (a source tree), each with XML files, and
    tmp/outside.xml next to both."""
    src, xml = tmp_path / "src", tmp_path / "tree" / "xml"
    (src / "sub").mkdir(parents=True)
    xml.mkdir(parents=True)
    (tmp_path / "outside.xml").write_text(MINIMAL_XML.format("Outside"))
    (src / "inside.xml").write_text(MINIMAL_XML.format("Inside"))
    (xml / "tree.xml").write_text(MINIMAL_XML.format("Tree"))
    setting = f"dbusdoc_srctree = {srctree!r}\n" if srctree else ""
    (src / "conf.py").write_text(f'extensions = ["sphinxext_qemudbus"]\n{setting}')
    return src


def test_dbus_doc_paths_that_leave_the_source_folder_warn(
    tmp_path: Path, make_app: Any, rootdir: Any, built: Callable[[Any], Any]
) -> None:
    src = _path_project(tmp_path, None)
    (src / "index.rst").write_text(
        "Paths\n=====\n\n.. toctree::\n\n   sub/page\n\n.. dbus-doc:: inside.xml\n\n.. dbus-doc:: ../outside.xml\n"
    )
    # in a subfolder: relative to the document; "/" is the source folder (Sphinx's rule)
    (src / "sub" / "page.rst").write_text("Sub\n===\n\n.. dbus-doc:: /inside.xml\n\n.. dbus-doc:: ../../outside.xml\n")
    app = make_app("html", srcdir=type(rootdir)(str(src)), freshenv=True)
    app.build()
    outside = os.path.realpath(tmp_path / "outside.xml")
    warnings = [w for w in built(app).warnings() if "duplicate" not in w]  # both pages render both files
    assert warnings == [
        f"SRC/index.rst:10: WARNING: dbus-doc path '../outside.xml' leads out of the source folder, to {outside} "
        "[dbus.outside-source]",
        f"SRC/sub/page.rst:6: WARNING: dbus-doc path '../../outside.xml' leads out of the source folder, to "
        f"{outside} [dbus.outside-source]",
    ]
    # still rendered: the warning says where the page reads from
    assert "org.example.Outside1" in built(app).html("index")
    assert "org.example.Inside1" in built(app).html("sub/page")


def test_dbus_doc_paths_are_judged_against_dbusdoc_srctree(
    tmp_path: Path, make_app: Any, rootdir: Any, built: Callable[[Any], Any]
) -> None:
    """QEMU's layout: the docs in one folder, the XML elsewhere in the source tree."""
    src = _path_project(tmp_path, "../tree")
    (src / "index.rst").write_text(
        "Paths\n=====\n\n.. dbus-doc:: xml/tree.xml\n\n.. dbus-doc:: /xml/tree.xml\n\n.. dbus-doc:: ../outside.xml\n"
    )
    app = make_app("html", srcdir=type(rootdir)(str(src)), freshenv=True)
    app.build()
    outside = os.path.realpath(tmp_path / "outside.xml")
    warnings = [w for w in built(app).warnings() if "duplicate" not in w]
    assert warnings == [
        f"SRC/index.rst:8: WARNING: dbus-doc path '../outside.xml' leads out of dbusdoc_srctree, to {outside} "
        "[dbus.outside-source]",
    ]
    assert "org.example.Tree1" in built(app).html("index")


def test_the_extension_page_lists_what_doc_comments_may_use() -> None:
    """The allowed directives and link schemes are written out on the extension's page."""
    page = (Path(__file__).parent.parent / "docs" / "extension.rst").read_text(encoding="utf-8")
    section = page.split("What doc comments may use", 1)[1].split("\nDescribing interfaces by hand", 1)[0]
    listed = set(re.findall(r"``([a-z:-]+)``", " ".join(section.split())))
    assert listed >= ALLOWED_DIRECTIVES
    assert listed >= SAFE_SCHEMES


# --- generated doc comments ------------------------------------------------------------------------

# Pieces of reST that try to read, run or link something, and pieces of ordinary markup.
_PIECES = [
    ".. raw:: html\n\n   <script>alert('raw')</script>\n",
    ".. include:: ../secret.txt\n",
    ".. literalinclude:: ../secret.txt\n",
    ".. csv-table:: t\n   :file: ../secret.txt\n",
    ".. image:: ../secret.txt\n",
    ".. |s| image:: ../secret.txt\n",
    ".. role:: h(raw)\n   :format: html\n",
    ":h:`<script>alert('role')</script>`",
    ":download:`f <../secret.txt>`",
    "`x <javascript:alert('link')>`_",
    "`y`_",
    ".. _y: data:text/html,<script>alert('target')</script>\n",
    "JaVaScRiPt:alert('bare')",
    "`z <https://www.qemu.org/>`_",
    ".. note::\n\n   ",
    ".. code-block:: c\n\n   int x;\n",
    "::\n\n   literal\n",
    "- item\n",
    ":dbus:meth:`Ping`",
    ".. dbus:method:: Extra\n",
    "**bold** ``code``",
    "|s|",
    "text",
    " ",
    "\n",
    "\n\n",
    "   ",
]


def _doc_comment_xml(body: str) -> str:
    text = body.replace("--", "- -")  # "--" may not appear in an XML comment
    indented = "\n".join("      " + line if line.strip() else "" for line in text.split("\n"))
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<node>\n  <!--\n      org.example.Fuzz1: fuzz\n\n'
        f"{indented}\n  -->\n"
        '  <interface name="org.example.Fuzz1">\n    <method name="Ping"/>\n  </interface>\n</node>\n'
    )


@pytest.fixture(scope="module")
def doc_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("doc-comments")
    (folder / "secret.txt").write_text(f"{SECRET}\n", encoding="utf-8")
    return folder


@given(pieces=st.lists(st.sampled_from(_PIECES), min_size=1, max_size=10))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_generated_doc_comments_never_read_run_or_link(
    pieces: list[str], make_app: Any, rootdir: Any, doc_workdir: Path
) -> None:
    """Whatever a doc comment is made of, the build finishes, reads no file into the output and
    writes no script, raw HTML or unsafe link."""
    folder = doc_workdir / f"p{len(list(doc_workdir.iterdir()))}"
    folder.mkdir()
    (folder / "conf.py").write_text('extensions = ["sphinxext_qemudbus"]\nexclude_patterns = ["_build"]\n')
    (folder / "fuzz.xml").write_text(_doc_comment_xml("".join(pieces)), encoding="utf-8")
    (folder / "index.rst").write_text("Fuzz\n====\n\n.. dbus-doc:: fuzz.xml\n", encoding="utf-8")
    app = make_app("html", srcdir=type(rootdir)(str(folder)), freshenv=True)
    app.build()
    outdir = Path(app.outdir)
    assert not (outdir / "_images").exists()
    assert not (outdir / "_downloads").exists()
    for path in outdir.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    page = Page((outdir / "index.html").read_text(encoding="utf-8"))
    assert not [script for script in page.scripts if "alert" in script]
    for tag, attributes in page.elements:
        for name in ("href", "src"):
            assert unsafe_scheme(attributes.get(name) or "") is None, (tag, attributes)

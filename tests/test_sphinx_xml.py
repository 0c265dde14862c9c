"""Directives that generate documentation from XML: located warnings, broken files, incremental
rebuilds, MyST, and what a reference entry shows."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sphinxext_qemudbus.sphinx.domain import DBusDomain


def _text(page: str) -> str:
    """The visible text of a page, whitespace collapsed (and none before a colon: Sphinx 9 puts
    field-name colons in a span of their own)."""
    page = page.replace("<wbr>", "")  # a place a long name may break, not a space
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).replace("\u2019", "'").split())
    return re.sub(r" :", ":", text)


# --- broken XML ------------------------------------------------------------------------------


@pytest.mark.sphinx("html", testroot="broken", freshenv=True)
def test_broken_file_costs_one_warning_and_one_interface(app: Any, built: Callable[[Any], Any]) -> None:
    app.build()  # no exception: the build goes on
    assert built(app).warnings() == [
        "SRC/interfaces/org.qemu.Test1.Broken.xml:5: WARNING: Opening and ending tag mismatch: method line 4 and "
        "interface [dbus.X001]",
        "SRC/multi.xml:13: WARNING: invalid access 'readonly' ('readonly' is not a D-Bus access value); expected "
        "read, write or readwrite [dbus.S108]",
    ]
    page = built(app).html("index")
    assert "org.qemu.Test1.Good" in page
    assert "org.qemu.Test1.Fine" in page  # the other interface of the half-broken file
    assert "org.qemu.Test1.BadAccess" not in page
    assert "org.qemu.Test1.Broken" not in page
    assert "The page goes on after them." in page
    assert set(built(app).inventory()) == {
        "org.qemu.Test1.Good",
        "org.qemu.Test1.Good.Ping",
        "org.qemu.Test1.Fine",
        "org.qemu.Test1.Fine.Level",
    }


@pytest.mark.sphinx("html", testroot="broken", freshenv=True, confoverrides={"show_warning_types": False})
def test_warnings_say_their_code_when_sphinx_does_not(app: Any, built: Callable[[Any], Any]) -> None:
    # Sphinx 7.x does not show warning types by default, 5.3 never does: the code is still there,
    # so that the reader knows what to suppress.
    app.build()
    assert any(line.endswith("interface [dbus.X001]") for line in built(app).warnings())


@pytest.mark.sphinx("html", testroot="broken", freshenv=True, confoverrides={"suppress_warnings": ["dbus.X001"]})
def test_parser_findings_can_be_suppressed_by_code(app: Any, built: Callable[[Any], Any]) -> None:
    app.build()
    warnings = built(app).warnings()
    assert len(warnings) == 1
    assert "S108" in warnings[0]


# --- incremental rebuilds ----------------------------------------------------------------------


def _reading(app: Any) -> list[str]:
    read: list[str] = []
    app.connect("env-before-read-docs", lambda _app, _env, docnames: read.extend(sorted(docnames)))
    return read


@pytest.mark.sphinx("html", testroot="xrefs", srcdir="xrefs-incremental", freshenv=True)
def test_editing_xml_rereads_the_pages_that_use_it(
    app: Any, make_app: Any, app_params: Any, built: Callable[[Any], Any]
) -> None:
    app.build()
    assert "Release a button." in built(app).html("mouse")
    xml = Path(app.srcdir) / "interfaces" / "org.qemu.Test1.Mouse.xml"
    xml.write_text(
        xml.read_text(encoding="utf-8").replace("Release a button.", "Let go of a button."), encoding="utf-8"
    )

    args, kwargs = app_params
    again = make_app(*args, **{**kwargs, "freshenv": False})
    read = _reading(again)
    again.build()
    # the page rendering the interface and the registry table, not the others
    assert read == ["mouse", "registry"]
    assert "Let go of a button." in built(again).html("mouse")
    assert "Release a button." not in built(again).html("mouse")


@pytest.mark.sphinx("html", testroot="xrefs", srcdir="xrefs-added", freshenv=True)
def test_adding_a_registry_file_rereads_the_registry_table(
    app: Any, make_app: Any, app_params: Any, built: Callable[[Any], Any]
) -> None:
    app.build()
    folder = Path(app.srcdir) / "interfaces"
    source = (folder / "org.qemu.Test1.Keyboard.xml").read_text(encoding="utf-8")
    (folder / "org.qemu.Test1.Keyboard2.xml").write_text(
        source.replace("Test1.Keyboard", "Test1.Keyboard2"), encoding="utf-8"
    )

    args, kwargs = app_params
    again = make_app(*args, **{**kwargs, "freshenv": False})
    read = _reading(again)
    again.build()
    assert read == ["registry"]
    assert "org.qemu.Test1.Keyboard2" in built(again).html("registry").replace("<wbr>", "")  # breaks after dots


@pytest.mark.sphinx("html", testroot="xrefs", srcdir="xrefs-unchanged", freshenv=True)
def test_nothing_is_reread_when_nothing_changed(
    app: Any, make_app: Any, app_params: Any, built: Callable[[Any], Any]
) -> None:
    app.build()
    args, kwargs = app_params
    again = make_app(*args, **{**kwargs, "freshenv": False})
    read = _reading(again)
    again.build()
    assert read == []
    assert built(again).warnings() == []


# --- MyST --------------------------------------------------------------------------------------


@pytest.mark.sphinx("html", testroot="myst", freshenv=True)
def test_myst_page_renders_the_directive_and_keeps_xml_lines(app: Any, built: Callable[[Any], Any]) -> None:
    app.build()
    assert built(app).warnings() == [
        "SRC/interfaces/org.qemu.Test1.Lamp.xml:8:7: WARNING: reference to signal 'Flicker' does not resolve [dbus.R601]"
    ]
    page = built(app).html("index")
    text = _text(page)
    assert "org.qemu.Test1.Lamp interface" in text
    assert "peer-to-peer" in text
    assert 'href="#dbus-org.qemu.Test1.Lamp.Switch"' in page  # the MyST role and the reST inside
    assert "Switch the lamp." in text


# --- what an entry shows -----------------------------------------------------------------------


@pytest.mark.sphinx("html", testroot="qemu-compat", freshenv=True, confoverrides={"nitpicky": True})
def test_qemu_markup_builds_without_warnings(app: Any, built: Callable[[Any], Any]) -> None:
    app.build()
    assert built(app).warnings() == []
    display = built(app).html("interop/dbus-display")
    # `.. contents::` lists the interfaces: each one is a section, as with QEMU's extension
    assert 'href="#dbus-interface-org.qemu.Display1.VM"' in display
    # labels inside doc comments work, and :ref: to them
    assert 'id="dbus-button-values"' in display
    assert 'href="#dbus-button-values"' in display
    # the `any` role (QEMU's default role) finds D-Bus objects
    assert 'href="dbus-display.html#dbus-org.qemu.Display1.Console"' in built(app).html("interop/handwritten")


@pytest.mark.sphinx("html", testroot="qemu-compat", freshenv=True)
def test_platform_variants_get_one_entry_with_labelled_signatures(app: Any, built: Callable[[Any], Any]) -> None:
    app.build()
    display = built(app).html("interop/dbus-display")
    entry = display[display.index('id="dbus-org.qemu.Display1.Console.RegisterListener"') :]
    entry = entry[: entry.index("</dl>")]
    text = _text(entry)
    assert "Unix method RegisterListener ( h listener )" in text
    assert "Windows method RegisterListener ( ay listener )" in text
    assert text.count("method RegisterListener") == 2  # two signature lines ...
    assert display.count('id="dbus-org.qemu.Display1.Console.RegisterListener"') == 1  # ... one entry
    assert "listener ( h , Unix file descriptor )" in text
    assert "listener ( ay , array of byte )" in text
    # a member that exists on one platform only carries a badge
    dmabuf = display[display.index('id="dbus-org.qemu.Display1.Listener.ScanoutDMABUF"') :]
    assert "Unix only" in _text(dmabuf[: dmabuf.index("</dt>")])


@pytest.mark.sphinx("html", testroot="qemu-compat", freshenv=True)
def test_hand_written_markup_shows_options_as_badges_and_fields(app: Any, built: Callable[[Any], Any]) -> None:
    app.build()
    text = _text(built(app).html("interop/handwritten"))
    assert "method Frobnicate ( s name , a{sv} options ) → ( b done ) deprecated" in text
    assert "options ( a{sv} , dict of string to variant )" in text
    assert "method Poke ( u times ) no reply" in text  # no return part, a badge
    assert "Reply: none" in text
    assert "property Level: u" in text
    assert "Access: read-only" in text
    assert "Change signal: true: PropertiesChanged is emitted with the new value when it changes" in text
    assert "signal Frobnicated ( s name )" in text


@pytest.mark.sphinx("html", testroot="myst", freshenv=True)
def test_registry_metadata_is_shown(app: Any, built: Callable[[Any], Any]) -> None:
    app.build()
    text = _text(built(app).html("index"))
    assert "Since 9.0" in text
    assert "unstable" in text
    assert "Implemented by: helper (a helper process QEMU runs beside it" in text
    assert "Called by: manager (the management tool that runs the VM" in text
    assert "Object path: /org/qemu/Test1/Lamp" in text
    # a member newer than its interface, deprecated with a reason, sent without reply
    assert "method Toggle ( ) Since 9.1 deprecated no reply" in text
    assert "Deprecated racy; use Switch ." in text
    assert "Reply: none" in text


@pytest.mark.sphinx("html", testroot="parallel", freshenv=True)
def test_validation_notes_name_the_receiver(app: Any, built: Callable[[Any], Any]) -> None:
    app.build()
    text = _text(built(app).html("page3"))
    assert "code ( u , uint32 ) \N{EN DASH} a code. Validated by qemu: QEMU checks the code." in text
    assert "Validated by: client (reading); qemu (writing): Both sides check the level is below 100." in text
    assert "Bus name: org.qemu" in text
    assert "props ( a{sv} , dict of string to variant )" in text


@pytest.mark.sphinx("html", testroot="xrefs", freshenv=True)
def test_registry_table_lists_interfaces_with_links(app: Any, built: Callable[[Any], Any]) -> None:
    app.build()
    page = built(app).html("registry")
    assert 'href="mouse.html#dbus-org.qemu.Test1.Mouse"' in page
    assert "/org/qemu/Test1/Console_{id}" in page


def test_domain_state_survives_clear_and_merge() -> None:
    """The bookkeeping behind clear_doc and merge_domaindata, without a build: removing the
    document that won a duplicate brings the other description back."""

    class _Env:
        docname = "b"

    domain = DBusDomain.__new__(DBusDomain)
    domain.data = {"objects": {}, "shadowed": {}, "documents": {}, "scans": {}}
    domain.env = _Env()  # type: ignore[assignment]
    from sphinxext_qemudbus.sphinx.domain import ObjectEntry

    domain.documents["b"] = ["x.Y"]
    domain._store("x.Y", ObjectEntry("b", "id-b", "interface", "b.rst:1"), None, frozenset({"b"}))
    other = {
        "objects": {"x.Y": ObjectEntry("a", "id-a", "interface", "a.rst:1")},
        "shadowed": {},
        "documents": {"a": ["x.Y"]},
        "scans": {},
    }
    domain.merge_domaindata({"a"}, other)
    assert domain.objects["x.Y"].docname == "a"
    domain.clear_doc("a")
    assert domain.objects["x.Y"].docname == "b"
    domain.clear_doc("b")
    assert "x.Y" not in domain.objects
    assert domain.shadowed == {}


@pytest.mark.sphinx("html", testroot="missing", freshenv=True)
def test_a_registry_folder_that_does_not_exist_is_one_warning_at_the_setting(
    app: Any, built: Callable[[Any], Any]
) -> None:
    """Not one warning per directive: one, at the line of conf.py that names the folder."""
    app.build()
    assert built(app).warnings() == [
        "SRC/conf.py:4: WARNING: dbus_registry_path SRC/no-such-folder: no such folder; name a folder of "
        "introspection XML files, or leave the setting out to use the registry installed with the extension "
        "[dbus.registry]"
    ]
    assert "The page goes on." in built(app).html("index")


def test_a_value_the_description_refuses_costs_that_value_only(
    make_app: Any, rootdir: Any, tmp_path: Path, built: Callable[[Any], Any]
) -> None:
    """A member inside contradictory conditions exists on no platform, which a description's
    ``:platform:`` cannot say: the member is still rendered, and the build says which value
    was left out and where (the parse of generated reST lost the whole member to an error)."""
    (tmp_path / "conf.py").write_text('extensions = ["sphinxext_qemudbus"]\nexclude_patterns = ["_build"]\n')
    (tmp_path / "index.rst").write_text("Nowhere\n=======\n\n.. dbus-doc:: nowhere.xml\n")
    (tmp_path / "nowhere.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<node>\n  <interface name="org.example.Nowhere1">\n'
        "    <?if $(env.HOST_OS) == windows?>\n    <?if $(env.HOST_OS) != windows?>\n"
        '    <method name="Never"/>\n    <?endif?>\n    <?endif?>\n  </interface>\n</node>\n'
    )
    app = make_app("html", srcdir=type(rootdir)(str(tmp_path)), freshenv=True)
    app.build()
    assert built(app).warnings() == [
        "SRC/nowhere.xml:6: WARNING: method Never: platform 'none' left out: unknown platform 'none'; use unix "
        "or windows [dbus.xml-value]"
    ]
    assert 'id="dbus-org.example.Nowhere1.Never"' in built(app).html("index")

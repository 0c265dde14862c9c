"""The ``dbus`` domain: objects keyed by full name, references, warnings, inventory, index."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from sphinxext_qemudbus.check.checker import check_paths
from sphinxext_qemudbus.diagnostics.rules import RULES

XREF_WARNINGS = [
    "SRC/interfaces/org.qemu.Test1.Keyboard.xml:9: WARNING: Inline emphasis start-string without end-string.",
    "SRC/interfaces/org.qemu.Test1.Mouse.xml:8:7: WARNING: reference to method 'Nope' does not resolve [dbus.R601]",
    "SRC/interfaces/org.qemu.Test1.Mouse.xml:39:9: WARNING: :dbus:prop: reference to 'Press', but "
    "org.qemu.Test1.Mouse.Press is a method [dbus.R602]",
    "SRC/refs.rst:12: WARNING: reference to method 'org.qemu.Test1.Mouse.Nope' does not resolve [dbus.R601]",
    "SRC/refs.rst:14: WARNING: :dbus:meth: reference to 'org.qemu.Test1.Mouse.IsAbsolute', but "
    "org.qemu.Test1.Mouse.IsAbsolute is a property [dbus.R602]",
    "SRC/refs.rst:16: WARNING: reference to method '.Press' is ambiguous: org.example.Hand1.Press, "
    "org.qemu.Test1.Keyboard.Press, org.qemu.Test1.Mouse.Press [dbus.R603]",
    "SRC/refs.rst:29: WARNING: reference to signal 'Missing' does not resolve [dbus.R601]",
    "SRC/refs.rst:32: WARNING: reference to method 'Press' does not resolve [dbus.R601]",
]


def _href(html: str, text: str) -> str:
    """The target of the link whose text is ``text``."""
    for match in re.finditer(r'<a class="reference internal" href="([^"]*)"[^>]*>(.*?)</a>', html, re.DOTALL):
        if re.sub(r"<[^>]+>", "", match.group(2)) == text:
            return match.group(1)
    raise AssertionError(f"no link with text {text!r}")


@pytest.mark.sphinx("html", testroot="xrefs", freshenv=True)
def test_bad_references_warn_at_the_reference_without_nitpicky(app: Any, built: Callable[[Any], Any]) -> None:
    app.build()
    assert not app.config.nitpicky
    assert sorted(built(app).warnings()) == sorted(XREF_WARNINGS)


@pytest.mark.sphinx("html", testroot="xrefs", freshenv=True, confoverrides={"nitpicky": True})
def test_nitpicky_adds_no_second_warning(app: Any, built: Callable[[Any], Any]) -> None:
    app.build()
    assert sorted(built(app).warnings()) == sorted(XREF_WARNINGS)


@pytest.mark.sphinx("html", testroot="xrefs", freshenv=True)
def test_checker_and_docs_agree_on_references_in_xml(app: Any, built: Callable[[Any], Any]) -> None:
    """``qemu-dbus check`` and the docs build resolve doc-comment references with one
    algorithm: same findings, same codes, same lines and columns."""
    app.build()
    from_docs = set()
    for line in built(app).warnings():
        if match := re.match(r"SRC/(interfaces/\S+\.xml):(\d+):(\d+): WARNING: .*\[dbus\.(R\d+)\]$", line):
            from_docs.add((match.group(1), int(match.group(2)), int(match.group(3)), match.group(4)))
    result = check_paths([built(app).srcdir / "interfaces"])
    from_checker = {
        (f"interfaces/{d.location.path.rpartition('/')[2]}", d.location.line, d.location.column, d.code)
        for d in result.diagnostics
        if d.code.startswith("R")
    }
    assert from_docs == from_checker
    assert from_docs  # the fixture does have bad references


@pytest.mark.sphinx("html", testroot="xrefs", freshenv=True)
def test_same_named_members_of_different_interfaces_link_to_their_own(app: Any, built: Callable[[Any], Any]) -> None:
    app.build()
    refs = built(app).html("refs")
    assert _href(refs, "org.qemu.Test1.Keyboard.Press") == "keyboard.html#dbus-org.qemu.Test1.Keyboard.Press"
    assert _href(refs, "org.qemu.Test1.Mouse.Press") == "mouse.html#dbus-org.qemu.Test1.Mouse.Press"
    # '~' shows the last element only; '.Release' is unique among all interfaces
    assert _href(refs, "Release") == "mouse.html#dbus-org.qemu.Test1.Mouse.Release"
    assert _href(refs, "the mouse") == "mouse.html#dbus-org.qemu.Test1.Mouse"
    # relative names in a doc comment resolve in that doc comment's interface first
    assert _href(built(app).html("keyboard"), "Press") == "#dbus-org.qemu.Test1.Keyboard.Press"
    mouse = built(app).html("mouse")
    assert _href(mouse, "Press") == "#dbus-org.qemu.Test1.Mouse.Press"
    assert _href(mouse, "IsAbsolute") == "#dbus-org.qemu.Test1.Mouse.IsAbsolute"
    # ... and in hand-written markup, inside the interface being described
    assert 'href="#dbus-org.example.Hand1.Press"' in refs


@pytest.mark.sphinx("html", testroot="xrefs", freshenv=True)
def test_wrong_kind_reference_does_not_link(app: Any, built: Callable[[Any], Any]) -> None:
    app.build()
    refs = built(app).html("refs")
    with pytest.raises(AssertionError):
        _href(refs, "org.qemu.Test1.Mouse.IsAbsolute")  # :dbus:meth: naming a property


@pytest.mark.sphinx("html", testroot="xrefs", freshenv=True, confoverrides={"suppress_warnings": ["dbus.R601"]})
def test_suppress_warnings_silences_one_code(app: Any, built: Callable[[Any], Any]) -> None:
    app.build()
    warnings = built(app).warnings()
    assert not [w for w in warnings if "R601" in w]
    assert [w for w in warnings if "R602" in w]
    assert [w for w in warnings if "R603" in w]


@pytest.mark.sphinx("html", testroot="xrefs", freshenv=True)
def test_inventory_lists_every_object_by_full_name(app: Any, built: Callable[[Any], Any]) -> None:
    app.build()
    inventory = built(app).inventory()
    assert inventory["org.qemu.Test1.Keyboard"] == ("dbus:interface", "keyboard.html#dbus-org.qemu.Test1.Keyboard")
    assert inventory["org.qemu.Test1.Keyboard.Press"] == (
        "dbus:method",
        "keyboard.html#dbus-org.qemu.Test1.Keyboard.Press",
    )
    assert inventory["org.qemu.Test1.Mouse.Press"] == ("dbus:method", "mouse.html#dbus-org.qemu.Test1.Mouse.Press")
    assert inventory["org.qemu.Test1.Mouse.IsAbsolute"][0] == "dbus:property"
    assert inventory["org.example.Hand1.Press"][0] == "dbus:method"
    assert "Press" not in inventory


@pytest.mark.sphinx("html", testroot="xrefs", freshenv=True)
def test_index_lists_interfaces_with_their_members(app: Any, built: Callable[[Any], Any]) -> None:
    app.build()
    index = built(app).html("dbus-dbusindex")
    keyboard = index.index("org.qemu.Test1.Keyboard")
    mouse = index.index("org.qemu.Test1.Mouse")
    assert keyboard < index.index("Press", keyboard) < mouse
    assert "mouse.html#dbus-org.qemu.Test1.Mouse.IsAbsolute" in index


@pytest.mark.sphinx("html", testroot="xrefs", freshenv=True)
def test_qemu_anchors_still_work(app: Any, built: Callable[[Any], Any]) -> None:
    """Links made to QEMU's pages (``#org.qemu.Display1.Console.RegisterListener``) keep
    working: every object also carries its bare full name as an id."""
    app.build()
    anchors = built(app).anchors()
    assert ("mouse.html", "org.qemu.Test1.Mouse.Press") in anchors
    assert ("mouse.html", "org.qemu.Test1.Mouse-section") in anchors


@pytest.mark.sphinx("html", testroot="duplicates", freshenv=True)
def test_duplicates_warn_with_both_locations(app: Any, built: Callable[[Any], Any]) -> None:
    app.build()
    xml = "SRC/interfaces/org.qemu.Test1.Thing.xml"
    assert built(app).warnings() == [
        f"{xml}:6: WARNING: duplicate description of D-Bus interface org.qemu.Test1.Thing in document "
        f"'z-dup'; also described in document 'a-dup' at {xml}:6 "
        "[dbus.duplicate-object]",
        f"{xml}:12: WARNING: duplicate description of D-Bus method org.qemu.Test1.Thing.Poke in document "
        f"'z-dup'; also described in document 'a-dup' at {xml}:12 "
        "[dbus.duplicate-object]",
    ]
    assert 'href="a-dup.html#dbus-org.qemu.Test1.Thing.Poke"' in built(app).html("index")


@pytest.mark.sphinx("html", testroot="duplicates", freshenv=True, parallel=2)
def test_duplicates_across_parallel_workers_warn_once_with_both_locations(
    app: Any, built: Callable[[Any], Any]
) -> None:
    app.build()
    warnings = built(app).warnings()
    assert len(warnings) == 2
    assert all("in document 'z-dup'; also described in document 'a-dup'" in w for w in warnings)
    # the first document by name wins, whatever order the workers finished in
    assert 'href="a-dup.html#dbus-org.qemu.Test1.Thing.Poke"' in built(app).html("index")


def test_every_reference_code_the_domain_uses_is_a_rule() -> None:
    for code in ("R601", "R602", "R603"):
        assert code in RULES


@pytest.mark.sphinx("html", testroot="xrefs", freshenv=True)
def test_another_project_links_through_intersphinx(
    app: Any,
    make_app: Any,
    monkeypatch: pytest.MonkeyPatch,
    built: Callable[[Any], Any],
    copied_root: Callable[[str], Any],
) -> None:
    app.build()
    monkeypatch.setenv("QEMUDBUS_TEST_INVENTORY", str(built(app).outdir / "objects.inv"))
    other = make_app("html", srcdir=copied_root("intersphinx"), freshenv=True)
    other.build()
    page = built(other).html("index")
    assert built(other).warnings() == []
    assert 'href="https://registry.invalid/mouse.html#dbus-org.qemu.Test1.Mouse.Press"' in page
    assert 'href="https://registry.invalid/mouse.html#dbus-org.qemu.Test1.Mouse"' in page

"""The diagram directives in real Sphinx builds: inline SVG linked to the reference entries in
HTML, the text equivalent elsewhere, located warnings for wrong names, names in tables that wrap
at their dots."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lxml import etree, html

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.sphinx("html", testroot="diagrams", freshenv=True)
def test_html_has_inline_svg_linked_to_the_reference(app: Any, built: Callable[[Any], Any]) -> None:
    app.build()
    page = built(app).html("index")
    figures = re.findall(r'<figure class="dbus-diagram-figure".*?</figure>', page, re.DOTALL)
    assert len(figures) == 1 + 3 + 1  # one scenario, the three side by side, the sequence
    assert page.count('<div class="dbus-diagram-row">') == 1
    svgs = [etree.fromstring(re.search(r"<svg .*?</svg>", f, re.DOTALL).group(0).encode()) for f in figures]
    ids = [svg.get("aria-labelledby") for svg in svgs]
    assert len(set(ids)) == len(ids)  # unique in the page
    links = {a.get("href") for svg in svgs for a in svg.iter(f"{SVG}a")}
    anchors = {anchor for name, anchor in built(app).anchors() if name == "reference.html"}
    inventory = built(app).inventory()
    expected = {name: uri for name, (_, uri) in inventory.items() if name.startswith("org.qemu.VMState1")}
    assert links == {
        expected[name] for name in ("org.qemu.VMState1", "org.qemu.VMState1.Save", "org.qemu.VMState1.Load")
    }
    assert all(link.split("#")[1] in anchors for link in links)
    sequence = svgs[-1]
    labels = ["".join(t.itertext()) for t in sequence.iter(f"{SVG}text")]
    assert labels.index("ListQueuedOwners()") < labels.index("VMState1.Save()") < labels.index("VMState1.Load()")
    # The text equivalent is in the page too, in a <details>.
    assert "<summary>The picture as a table</summary>" in figures[0]
    assert "the network helper" in html.fromstring(figures[0]).text_content()


@pytest.mark.sphinx("html", testroot="diagrams", freshenv=True)
def test_wrong_names_are_located_warnings(app: Any, built: Callable[[Any], Any]) -> None:
    app.build()
    warnings = [w for w in built(app).warnings() if "broken.rst" in w]
    assert any(
        "broken.rst:8:" in w and "org.qemu.VMState1.Sav is not a method" in w and "R605" in w for w in warnings
    ), warnings
    assert any("broken.rst:9:" in w and "cannot send org.qemu.VMState1.Load" in w and "R606" in w for w in warnings), (
        warnings
    )
    assert any("broken.rst:10:" in w and "no participant 'nobody'" in w and "R607" in w for w in warnings), warnings
    assert any("missing.toml" in w and "cannot read file" in w for w in warnings), warnings
    assert not [w for w in built(app).warnings() if "broken.rst" not in w]


@pytest.mark.sphinx("text", testroot="diagrams", freshenv=True)
def test_other_builders_get_the_table(app: Any) -> None:
    app.build()
    text = (app.outdir / "index.txt").read_text(encoding="utf-8")
    assert "<svg" not in text
    assert "lockdown deployment, many-uids: who may call whom" in text
    assert "QEMU" in text
    assert "the network helper" in text
    assert "org.qemu.VMState1.Save" in text


@pytest.mark.sphinx("latex", testroot="diagrams", freshenv=True)
def test_latex_gets_the_table(app: Any) -> None:
    app.build()
    tex = next(Path(app.outdir).glob("*.tex")).read_text(encoding="utf-8")
    assert "who may call whom" in tex
    assert "ListQueuedOwners" in tex


@pytest.mark.sphinx("html", testroot="diagrams", freshenv=True)
def test_names_in_tables_wrap_at_dots(app: Any, built: Callable[[Any], Any]) -> None:
    app.build()
    page = built(app).html("index")
    assert '<span class="pre">org.<wbr>qemu.<wbr>VMState1</span>' in page
    assert '<span class="pre">org.<wbr>qemu.<wbr>Display1.<wbr>AudioInListener</span>' in page
    # Each table scrolls in its own box rather than push a phone's page sideways.
    assert page.count('<div class="dbus-table-scroll"><table class="dbus-table') == page.count(
        '<table class="dbus-table'
    )


@pytest.mark.sphinx("html", testroot="diagrams", freshenv=True)
def test_names_in_signatures_references_and_reference_entries_wrap_at_dots(
    app: Any, built: Callable[[Any], Any]
) -> None:
    app.build()
    page = built(app).html("reference")
    # The signature, and a dotted literal of the doc comment (an error name).
    assert '<span class="sig-name descname"><span class="pre">org.<wbr>qemu.<wbr>VMState1</span></span>' in page
    assert re.search(
        r'<code class="[^"]*\bdbus-name\b[^"]*"><span class="pre">org\.<wbr>qemu\.<wbr>VMState1</span>', page
    )
    # Text outside the reference entries is left alone.
    assert '<span class="pre">org.<wbr>qemu.<wbr>VMState1</span>' not in built(app).html("broken")

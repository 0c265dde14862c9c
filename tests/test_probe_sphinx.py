"""The probe's recorded results in the documentation: on the member's entry and on the page of
their own, as text (never markup), rebuilt when the results file changes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from docutils import nodes


@pytest.mark.sphinx("html", testroot="probe", freshenv=True)
def test_results_on_the_member_and_on_their_page(app: Any, built: Callable[[Any], Any]) -> None:
    app.build()
    result = built(app)
    assert result.warnings() == []
    html = result.html("index")
    # The member's entry: a dbus-probe container after the trust note, per release.
    assert 'class="dbus-probe' in html
    assert "What a peer can do (qemu-dbus probe):" in html
    assert "QEMU exits (the VM is gone); found on QEMU 7.2.22, 10.0.2." in html
    assert "crashes for every value &gt;= 9 of button" in html
    assert "crashes for every value &gt;= 10 of button" in html
    # The page: the releases probed, with the probe's version.
    assert "QEMU emulator version 7.2.22" in html
    assert "qemu-dbus probe 0.1" in html
    # Hostile text stays text: no element, no directive, the command verbatim.
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert ".. raw:: html" in html
    assert "Assertion `val &lt; *size*` failed" in html
    blocks = [node.astext() for node in app.env.get_doctree("index").findall(nodes.literal_block)]
    command = 'busctl --address="$BUS" call org.qemu /org/qemu/Display1/Console_0 org.qemu.Display1.Mouse Press u 9'
    assert blocks.count(command) == 4  # two faults, each on the member and on the page


@pytest.mark.sphinx("html", testroot="probe", freshenv=True)
def test_a_new_results_file_rebuilds_the_page(
    app: Any, built: Callable[[Any], Any], copied_root: Callable[[str], Any]
) -> None:
    app.build()
    path = Path(app.srcdir) / "registry" / "probe-results.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    del document["releases"]["7.2.22"]
    path.write_text(json.dumps(document), encoding="utf-8")
    app.build()
    html = built(app).html("index")
    assert "QEMU emulator version 7.2.22" not in html
    assert "found on QEMU 10.0.2." in html

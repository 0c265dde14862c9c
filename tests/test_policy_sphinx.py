"""The ``dbus-policy``, ``dbus-trust-table`` and ``dbus-deployment`` directives: the documentation
shows byte for byte what ``qemu-dbus policy`` writes, and bad input warns instead of failing."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from docutils import nodes

from sphinxext_qemudbus.cli import main
from sphinxext_qemudbus.model.registry import Registry
from sphinxext_qemudbus.security.deployment import SCENARIOS, builtin_deployment, load_deployment
from sphinxext_qemudbus.security.policy import build_config, generate_policy, snippet
from sphinxext_qemudbus.security.trust import member_trust_notes
from sphinxext_qemudbus.sphinx.policy import trust_note_nodes, trust_note_rest

from .test_policy import REGISTRY

ROOT = Path(__file__).parent / "roots" / "test-policy"


def literal_blocks(app: Any, docname: str) -> list[str]:
    doctree = app.env.get_doctree(docname)
    return [node.astext() for node in doctree.findall(nodes.literal_block) if "dbus-policy" in node["classes"]]


@pytest.mark.sphinx("html", testroot="policy", freshenv=True)
def test_policies_in_the_docs_are_the_cli_output(app: Any, built: Callable[[Any], Any]) -> None:
    app.build()
    registry = Registry.load([REGISTRY])
    full, part = literal_blocks(app, "index")
    assert full == generate_policy(registry, builtin_deployment("lockdown"), "many-uids")
    tiny = load_deployment(str(ROOT / "tiny.toml"))
    assert part == snippet(build_config(registry, tiny, "two-uids"), "bus")
    assert part.startswith('<!-- bus (7000): helper (peer helper, role helper). -->\n<policy user="7000">\n')
    html = built(app).html("index")
    assert "dbus-trust-table" in html
    assert "In the single-uid scenario no message of the default deployment crosses a trust boundary" in html
    assert "dbus-deployment" in html
    assert not [w for w in built(app).warnings() if "broken" not in w]


@pytest.mark.sphinx("html", testroot="policy", freshenv=True)
def test_every_scenario_in_the_docs_is_byte_identical_to_the_command(
    app: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app.build()
    shown = literal_blocks(app, "default")
    assert len(shown) == len(SCENARIOS)
    monkeypatch.chdir(Path(REGISTRY).parent)  # the command's default registry is ./interfaces/
    for scenario, text in zip(SCENARIOS, shown):
        assert main(["policy", "--scenario", scenario]) == 0
        assert capsys.readouterr().out == text


@pytest.mark.sphinx("html", testroot="policy", freshenv=True)
def test_trust_table_rows(app: Any) -> None:
    app.build()
    doctree = app.env.get_doctree("index")
    tables = [t for t in doctree.findall(nodes.table) if "dbus-trust-table" in t["classes"]]
    (table,) = tables
    rows = [[entry.astext() for entry in row.findall(nodes.entry)] for row in table.findall(nodes.row)][1:]
    assert [row[0] for row in rows] == ["org.qemu.VMState1.Id", "org.qemu.VMState1.Load", "org.qemu.VMState1.Save"]
    load = rows[1]
    assert load[1] == "QEMU → the network helper; QEMU → the TPM helper"
    assert load[2].startswith("the network helper, the TPM helper: data (in-arg, ay): QEMU only forwards at most 1 MiB")


@pytest.mark.sphinx("html", testroot="policy", freshenv=True)
def test_bad_input_warns_at_the_directive(app: Any, built: Callable[[Any], Any]) -> None:
    app.build()
    warnings = [w for w in built(app).warnings() if "broken.rst" in w]
    assert any("broken.toml:9:" in w and "TOML syntax" in w for w in warnings), warnings
    assert any("no <policy> for 'nobody'" in w for w in warnings), warnings
    assert any("unknown.toml: error: cannot read file" in w for w in warnings), warnings
    assert all("[dbus." in w or "dbus." in w for w in warnings), warnings


def test_trust_note_nodes_for_the_renderer() -> None:
    registry = Registry.load([REGISTRY])
    paragraph, items = trust_note_nodes(member_trust_notes(registry, "org.qemu.VMState1", "Load"))
    assert paragraph.astext() == (
        "Crosses a trust boundary in two-uids and many-uids: QEMU → the network helper and QEMU → the TPM helper."
    )
    assert items.astext().startswith("The network helper and the TPM helper validate data (in-arg): QEMU only forwards")
    # an interface no peer of the deployment uses: worked out between the registry's roles
    lockdown = builtin_deployment("lockdown")
    paragraph, items = trust_note_nodes(member_trust_notes(registry, "org.qemu.Vnc1.Server", "SetPassword", lockdown))
    assert paragraph.astext() == (
        "No peer of the lockdown deployment uses this method; between its roles (the manager → a client) "
        "it crosses a trust boundary in many-uids."
    )
    assert items.astext().startswith("A client validates password (in-arg): ")


def test_trust_note_rest_for_the_renderer() -> None:
    registry = Registry.load([REGISTRY])
    lines = trust_note_rest(member_trust_notes(registry, "org.qemu.VMState1", "Save"))
    assert lines == [
        ".. container:: dbus-trust",
        "",
        "   **Trust:** Crosses a trust boundary in two-uids and many-uids: QEMU → the network helper and "
        "QEMU → the TPM helper. QEMU validates data (out-arg).",
        "",
    ]


@pytest.mark.sphinx("html", testroot="policy", srcdir="policy-incremental", freshenv=True)
def test_editing_the_deployment_rereads_the_pages_that_use_it(app: Any, make_app: Any, app_params: Any) -> None:
    app.build()
    deployment = Path(app.srcdir) / "tiny.toml"
    deployment.write_text(deployment.read_text(encoding="utf-8").replace("uid = 7000", "uid = 7010"), encoding="utf-8")
    os.utime(deployment, (time.time() + 5, time.time() + 5))  # newer than the pickled environment

    args, kwargs = app_params
    again = make_app(*args, **{**kwargs, "freshenv": False})
    read: list[str] = []
    again.connect("env-before-read-docs", lambda _app, _env, docnames: read.extend(sorted(docnames)))
    again.build()
    # index uses tiny.toml; default does not; broken names a missing file, so it is always read
    assert read == ["broken", "index"]
    assert literal_blocks(again, "index")[1].startswith("<!-- bus (7010): ")


@pytest.mark.sphinx("html", testroot="policy", srcdir="policy-parallel", freshenv=True, parallel=2)
def test_parallel_build(app: Any, built: Callable[[Any], Any]) -> None:
    app.build()
    assert len(literal_blocks(app, "default")) == len(SCENARIOS)
    assert not [w for w in built(app).warnings() if "broken" not in w]

"""The project's own documentation: QEMU's D-Bus interop pages built from the registry.

Built with the ``sphinx-build`` command line, the way ``make docs`` and readers do, once serially
and once with ``-j 2``, both with warnings as errors."""

from __future__ import annotations

import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from sphinxext_qemudbus.diagnostics.rules import RULES
from sphinxext_qemudbus.model.metadata import KEYS
from sphinxext_qemudbus.model.registry import Registry
from sphinxext_qemudbus.sphinx.config import CONFIG_VALUES

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _sphinx_build(out: Path, *options: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-b",
        "html",
        "-W",
        "-n",
        "--keep-going",
        "-q",
        *options,
        str(DOCS),
        str(out),
    ]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)


def _anchors(out: Path) -> set[tuple[str, str]]:
    result = set()
    for page in out.rglob("*.html"):
        name = page.relative_to(out).as_posix()
        if name not in {"search.html", "genindex.html"}:
            result |= {(name, a) for a in re.findall(r'\sid="([^"]+)"', page.read_text(encoding="utf-8"))}
    return result


def _inventory(out: Path) -> dict[str, str]:
    body = zlib.decompress((out / "objects.inv").read_bytes().split(b"\n", 4)[4]).decode("utf-8")
    return {line.split()[0]: line.split()[1] for line in body.splitlines() if " dbus:" in line}


@pytest.fixture(scope="module")
def serial_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs-serial")
    result = _sphinx_build(out)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return out


def test_docs_build_without_warnings_and_list_every_registry_object(serial_build: Path) -> None:
    inventory = _inventory(serial_build)
    registry = Registry.load([ROOT / "interfaces"])
    expected = {name: f"dbus:{kind}" for name, kind in registry.objects().items()}
    assert {name: inventory[name] for name in expected if name in inventory} == expected


def test_parallel_docs_build_has_the_same_anchors(serial_build: Path, tmp_path: Path) -> None:
    result = _sphinx_build(tmp_path, "-j", "2")
    assert result.returncode == 0, result.stderr
    assert _anchors(tmp_path) == _anchors(serial_build)
    assert _inventory(tmp_path) == _inventory(serial_build)


def test_extension_page_is_generated_from_the_tables(serial_build: Path) -> None:
    # Names in tables may break after a dot (<wbr>): the text is the same without it.
    page = (serial_build / "extension.html").read_text(encoding="utf-8").replace("<wbr>", "")
    for code in RULES:
        assert f">{code}<" in page, code
    for value in CONFIG_VALUES:
        assert value.name in page
    for key in KEYS:
        assert key.name in page


def test_registry_page_is_markdown_with_the_registry_table(serial_build: Path) -> None:
    assert (DOCS / "registry.md").exists()
    page = (serial_build / "registry.html").read_text(encoding="utf-8")
    for entry in Registry.load([ROOT / "interfaces"]):
        assert entry.interface.name in page
    assert 'href="interop/dbus-display.html#dbus-org.qemu.Display1.Console"' in page


def test_every_vmstate_and_display_member_shows_its_trust_note(serial_build: Path) -> None:
    """Issue: every method, signal and property of org.qemu.VMState1 and the display interfaces
    shows, on its reference entry, where its messages cross a user boundary and who validates."""
    from lxml import html

    registry = Registry.load([ROOT / "interfaces"])
    pages = [
        html.parse(str(serial_build / "interop" / f"{page}.html")).getroot()
        for page in ("dbus-vmstate", "dbus-display")
    ]
    checked = 0
    for entry in registry:
        name = entry.interface.name
        if not (name == "org.qemu.VMState1" or name.startswith("org.qemu.Display1.")):
            continue
        for member in {m.name for m in entry.interface.members}:
            anchor = f"dbus-{name}.{member}"
            found = [element for page in pages for element in page.xpath(f'//*[@id="{anchor}"]')]
            assert found, anchor
            description = found[0].getparent()  # the <dl> of the entry: signature and body
            notes = description.xpath('.//div[contains(@class, "dbus-trust")]')
            assert len(notes) == 1, anchor
            assert "Trust (default deployment):" in notes[0].text_content(), anchor
            checked += 1
    assert checked >= 70

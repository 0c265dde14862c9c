"""Release views: what a given QEMU exported, according to the registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from sphinxext_qemudbus.model.parser import parse_string
from sphinxext_qemudbus.model.registry import Registry
from sphinxext_qemudbus.model.releases import interface_at_release, newer_than, parse_release, release_text

ROOT = Path(__file__).resolve().parent.parent

XML = """<node>
  <interface name="org.qemu.Test1.Thing">
    <annotation name="org.qemu.Registry.Since" value="7.0"/>
    <method name="Old"/>
    <!--
        New:

        Added later.

        Since: 8.1
    -->
    <method name="New"/>
    <!--
        Newest:

        Since: 10.0.1
    -->
    <property name="Newest" type="u" access="read"/>
  </interface>
  <interface name="org.qemu.Test1.Later">
    <annotation name="org.qemu.Registry.Since" value="9.2"/>
  </interface>
</node>
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7.2", (7, 2, 0)),
        ("8.2.1", (8, 2, 1)),
        (" 10.0 ", (10, 0, 0)),
        ("7", None),
        ("7.x", None),
        ("", None),
        ("1.2.3.4", None),
    ],
)
def test_parse_release(text: str, expected: tuple[int, int, int] | None) -> None:
    assert parse_release(text) == expected


def test_releases_compare_as_numbers() -> None:
    assert parse_release("7.10") > parse_release("7.2")  # type: ignore[operator]
    assert parse_release("7.2") == parse_release("7.2.0")
    assert release_text((7, 2, 0)) == "7.2"
    assert release_text((8, 2, 1)) == "8.2.1"
    assert newer_than("8.1", (8, 0, 5))
    assert not newer_than("8.1", (8, 1, 0))
    assert not newer_than(None, (1, 0, 0))


def test_interface_at_release_drops_what_came_later() -> None:
    thing, later = parse_string(XML).interfaces
    assert [m.name for m in interface_at_release(thing, (7, 2, 0)).members] == ["Old"]  # type: ignore[union-attr]
    assert [m.name for m in interface_at_release(thing, (8, 1, 0)).members] == ["Old", "New"]  # type: ignore[union-attr]
    assert [m.name for m in interface_at_release(thing, (10, 0, 0)).members] == ["Old", "New"]  # type: ignore[union-attr]
    assert interface_at_release(thing, (10, 0, 1)) is thing
    assert interface_at_release(later, (9, 1, 0)) is None
    assert interface_at_release(later, (9, 2, 0)) is later


def test_the_registry_declares_its_release_and_answers_for_older_ones() -> None:
    registry = Registry.load([ROOT / "interfaces"])
    assert registry.release is not None
    assert parse_release(registry.release) is not None
    qemu72 = registry.at_release((7, 2, 0))
    assert "org.qemu.Display1.Console" in qemu72
    assert "org.qemu.Display1.MultiTouch" not in qemu72  # 8.1
    audio = [m.name for m in qemu72.interface("org.qemu.Display1.Audio").members]
    assert "NSamples" not in audio
    assert "Interfaces" not in audio
    assert len(registry.at_release(parse_release(registry.release))) == len(registry)  # type: ignore[arg-type]


def test_a_broken_release_file_is_a_located_registry_error(tmp_path: Path) -> None:
    (tmp_path / "registry.toml").write_text('qemu-release = "next"\n')
    registry = Registry.load([tmp_path])
    assert registry.release is None
    assert [(d.code, Path(d.location.path).name) for d in registry.errors] == [("M303", "registry.toml")]
    (tmp_path / "registry.toml").write_text("qemu-release = [\n")
    assert [d.code for d in Registry.load([tmp_path]).errors] == ["M303"]

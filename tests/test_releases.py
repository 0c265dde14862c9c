"""Release views: what a given QEMU exported, according to the registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from sphinxext_qemudbus.model.introspection import Method, interface_for_platform, platforms_of
from sphinxext_qemudbus.model.parser import parse_string
from sphinxext_qemudbus.model.registry import Registry
from sphinxext_qemudbus.model.releases import (
    feature_release,
    interface_at_release,
    newer_than,
    parse_release,
    previous_release,
    release_text,
    since_on,
    variant_dates,
)

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


VARIANTS = """<node>
  <interface name="org.qemu.Test1.Display">
    <annotation name="org.qemu.Registry.Since" value="7.0"/>
    <?if $(env.HOST_OS) == windows?>
    <annotation name="org.qemu.Registry.Since" value="8.1"/>
    <?endif?>
    <method name="Register">
      <?if $(env.HOST_OS) == windows?>
      <arg type="ay" name="listener" direction="in">
        <annotation name="org.qemu.Registry.Since" value="9.0"/>
      </arg>
      <?else?>
      <arg type="h" name="listener" direction="in"/>
      <?endif?>
    </method>
    <method name="Plain"><arg type="u" name="value" direction="in"/></method>
  </interface>
</node>
"""


def test_a_variant_has_its_own_date_on_its_platform() -> None:
    (display,) = parse_string(VARIANTS).interfaces
    register = display.members[0]
    assert (since_on(display, "unix"), since_on(display, "windows")) == ("7.0", "8.1")
    assert (since_on(register, "unix"), since_on(register, "windows")) == (None, "9.0")
    assert variant_dates(register) == {"windows": "9.0"}
    assert variant_dates(display) == {"windows": "8.1"}
    assert variant_dates(display.members[1]) == {}


def test_a_release_view_per_platform_follows_the_variants_dates() -> None:
    (display,) = parse_string(VARIANTS).interfaces
    assert interface_at_release(display, (7, 2, 0), "windows") is None  # no display on Windows yet
    at_8_1 = interface_at_release(display, (8, 1, 0), "windows")
    assert at_8_1 is not None
    assert [m.name for m in at_8_1.members] == ["Plain"]  # Register's Windows form is 9.0
    assert interface_at_release(display, (9, 0, 0), "windows") is display
    assert interface_at_release(display, (7, 0, 0), "unix") is display


def test_an_unprojected_release_view_keeps_each_item_where_it_existed() -> None:
    (display,) = parse_string(VARIANTS).interfaces
    at_7_2 = interface_at_release(display, (7, 2, 0))
    assert at_7_2 is not None
    assert platforms_of(at_7_2.conditions) == {"unix"}
    for member in at_7_2.members:
        assert platforms_of(member.conditions) == {"unix"}
    register, plain = at_7_2.members
    assert isinstance(register, Method)
    assert [arg.type for arg in register.args] == ["h"]
    assert isinstance(plain, Method)
    assert [arg.type for arg in plain.args] == ["u"]
    windows = interface_for_platform(at_7_2, "windows")
    assert windows.members == ()
    at_8_1 = interface_at_release(display, (8, 1, 0))
    assert at_8_1 is not None
    assert platforms_of(at_8_1.conditions) == {"unix", "windows"}
    register = at_8_1.members[0]
    assert platforms_of(register.conditions) == {"unix"}
    assert [arg.type for arg in register.args] == ["h"]


def test_the_registry_dates_qemus_windows_display_to_8_1() -> None:
    """QEMU built its D-Bus display on Unix only until 8.1 (meson: '-display dbus is not available
    on Windows'); the Windows forms of the registration methods came with it."""
    registry = Registry.load([ROOT / "interfaces"])
    assert "org.qemu.Display1.Console" not in registry.at_release((7, 2, 0), "windows")
    assert "org.qemu.Display1.Console" in registry.at_release((7, 2, 0), "unix")
    console = registry.at_release((8, 1, 0), "windows").interface("org.qemu.Display1.Console")
    assert "RegisterListener" in [m.name for m in console.members]
    for name, member in (("Console", "RegisterListener"), ("Audio", "RegisterOutListener"), ("Chardev", "Register")):
        interface = registry.interface(f"org.qemu.Display1.{name}")
        found = next(m for m in interface.members if m.name == member)
        assert since_on(found, "windows") == "8.1"
        assert since_on(found, "unix") == "7.0"


@pytest.mark.parametrize(
    ("release", "expected"),
    [((8, 1, 0), (8, 0, 0)), ((8, 0, 0), (7, 2, 0)), ((10, 0, 0), (9, 2, 0)), ((10, 1, 0), (10, 0, 0))],
)
def test_the_release_before(release: tuple[int, int, int], expected: tuple[int, int, int]) -> None:
    assert previous_release(release) == expected
    assert feature_release((10, 0, 2)) == (10, 0, 0)

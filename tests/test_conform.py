"""`qemu-dbus conform`: the comparison of introspected objects with the registry.

The comparison is pure, so it is tested here on introspection XML written the way GDBus replies
(no doc comments, no platform conditionals); ``test_conform_live.py`` runs the command against a
real bus.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sphinxext_qemudbus.diagnostics.diagnostic import Diagnostic
from sphinxext_qemudbus.diagnostics.rules import RULES
from sphinxext_qemudbus.live.conform import BusFacts, LiveObject, compare_object, detect_release, parse_reply
from sphinxext_qemudbus.model.registry import Registry

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = Registry.load([ROOT / "interfaces"])
DEST = "org.qemu"

VM = """
<node>
  <interface name="org.freedesktop.DBus.Properties">
    <method name="Get"><arg type="s" direction="in"/><arg type="s" direction="in"/><arg type="v" direction="out"/></method>
  </interface>
  <interface name="org.qemu.Display1.VM">
    <property type="s" name="Name" access="read"/>
    <property type="s" name="UUID" access="read"/>
    <property type="au" name="ConsoleIDs" access="read"/>
    <property type="as" name="Interfaces" access="read"/>
  </interface>
</node>
"""

# The registry's Console as QEMU on Unix introspects it: RegisterListener takes a file descriptor.
CONSOLE = """
<node>
  <interface name="org.qemu.Display1.Console">
    <method name="RegisterListener"><arg type="h" name="listener" direction="in"/></method>
    <method name="SetUIInfo">
      <arg type="q" name="width_mm" direction="in"/>
      <arg type="q" name="height_mm" direction="in"/>
      <arg type="i" name="xoff" direction="in"/>
      <arg type="i" name="yoff" direction="in"/>
      <arg type="u" name="width" direction="in"/>
      <arg type="u" name="height" direction="in"/>
    </method>
    <property type="s" name="Label" access="read"/>
    <property type="u" name="Head" access="read"/>
    <property type="s" name="Type" access="read"/>
    <property type="u" name="Width" access="read"/>
    <property type="u" name="Height" access="read"/>
    <property type="s" name="DeviceAddress" access="read"/>
    <property type="as" name="Interfaces" access="read"/>
  </interface>
</node>
"""


def conform(xml: str, path: str = "/org/qemu/Display1/VM", platform: str = "unix") -> list[Diagnostic]:
    return compare_object(REGISTRY, DEST, parse_reply(DEST, path, xml), platform)


def codes(findings: list[Diagnostic]) -> list[str]:
    return [d.code for d in findings]


def registry_line(interface: str, marker: str) -> int:
    text = (ROOT / "interfaces" / f"{interface}.xml").read_text().splitlines()
    return next(number for number, line in enumerate(text, 1) if marker in line)


def test_console_fixture_matches_the_registry() -> None:
    # Guards the fixture itself: it must list what the registry has on Unix, member for member.
    console = REGISTRY.interface("org.qemu.Display1.Console")
    assert {m.name for m in console.members} == {
        "RegisterListener",
        "SetUIInfo",
        "Label",
        "Head",
        "Type",
        "Width",
        "Height",
        "DeviceAddress",
        "Interfaces",
    }


def test_a_conforming_object_has_no_findings() -> None:
    assert conform(VM) == []
    assert conform(CONSOLE, "/org/qemu/Display1/Console_0") == []


def test_the_registry_file_itself_conforms() -> None:
    # Doc comments and annotations in the reply change nothing.
    text = (ROOT / "interfaces" / "org.qemu.Display1.VM.xml").read_text()
    assert conform(text) == []


def test_platform_variants_are_compared_on_the_peers_platform() -> None:
    findings = conform(CONSOLE, "/org/qemu/Display1/Console_0", platform="windows")
    assert codes(findings) == ["L003"]
    assert "takes (h)" in findings[0].message
    assert "the registry says (ay)" in findings[0].message
    assert "(windows)" in findings[0].message


def test_missing_member_is_located_in_the_registry() -> None:
    findings = conform(VM.replace('<property type="s" name="UUID" access="read"/>', ""))
    assert codes(findings) == ["L001"]
    (finding,) = findings
    assert finding.location.path.endswith("interfaces/org.qemu.Display1.VM.xml")
    assert finding.location.line == registry_line("org.qemu.Display1.VM", '<property name="UUID"')
    assert finding.message == "property org.qemu.Display1.VM.UUID is missing from /org/qemu/Display1/VM (unix)"


def test_extra_member_is_located_in_the_reply() -> None:
    xml = VM.replace("</interface>\n</node>", '  <method name="Quit"/>\n  </interface>\n</node>')
    findings = conform(xml)
    assert codes(findings) == ["L101"]
    assert str(findings[0].location) == f"org.qemu:/org/qemu/Display1/VM:{xml.lstrip().count(chr(10)) - 1}"
    assert findings[0].format().startswith("org.qemu:/org/qemu/Display1/VM:")


@pytest.mark.parametrize(
    ("old", "new", "code", "words"),
    [
        ('type="u" name="Head" access="read"', 'type="i" name="Head" access="read"', "L004", "has type 'i'"),
        ('type="s" name="Label" access="read"', 'type="s" name="Label" access="readwrite"', "L005", "is readwrite"),
        (
            '<arg type="i" name="yoff" direction="in"/>',
            '<arg type="i" name="yoff" direction="in"/><arg type="b" name="extra" direction="out"/>',
            "L003",
            "returns (b)",
        ),
        (
            '<method name="RegisterListener"><arg type="h" name="listener" direction="in"/></method>',
            '<signal name="RegisterListener"><arg type="h" name="listener"/></signal>',
            "L002",
            "is a method in the registry but a signal",
        ),
        (
            '<property type="u" name="Width" access="read"/>',
            '<property type="u" name="Width" access="read">'
            '<annotation name="org.freedesktop.DBus.Property.EmitsChangedSignal" value="false"/></property>',
            "L104",
            "EmitsChangedSignal=false",
        ),
        (
            '<method name="SetUIInfo">',
            '<method name="SetUIInfo"><annotation name="org.freedesktop.DBus.Method.NoReply" value="true"/>',
            "L104",
            "is marked Method.NoReply",
        ),
    ],
)
def test_member_differences(old: str, new: str, code: str, words: str) -> None:
    assert old in CONSOLE
    findings = conform(CONSOLE.replace(old, new), "/org/qemu/Display1/Console_0")
    assert codes(findings) == [code]
    assert words in findings[0].message


def test_unregistered_interfaces() -> None:
    xml = VM.replace(
        "</node>",
        '<interface name="org.qemu.Display1.Secret"><method name="Tell"/></interface>'
        '<interface name="org.example.Other1"><method name="Any"/></interface></node>',
    )
    findings = conform(xml)
    assert codes(findings) == ["L102"]
    assert "org.qemu.Display1.Secret, which is not in the registry" in findings[0].message


def test_interface_at_another_path_than_registered() -> None:
    findings = conform(VM, "/org/qemu/Display1/Elsewhere")
    assert codes(findings) == ["L103"]
    assert "the registry places it at /org/qemu/Display1/VM" in findings[0].message
    # A placeholder matches one path element.
    assert conform(CONSOLE, "/org/qemu/Display1/Console_12") == []
    assert codes(conform(CONSOLE, "/org/qemu/Display1/Console_1/x")) == ["L103"]


@pytest.mark.parametrize(
    ("names", "found"),
    [
        (BusFacts(":1.7", {"org.qemu": (":1.7",)}), []),
        # org.qemu is QEMU's alone: queued behind another owner, QEMU gets none of the calls;
        # another connection queued behind QEMU takes the name over when QEMU leaves
        (BusFacts(":1.7", {"org.qemu": (":1.3", ":1.7")}), ["L105"]),
        (BusFacts(":1.7", {"org.qemu": (":1.7", ":1.3")}), ["L105"]),
        (BusFacts(":1.7", {"org.qemu": (":1.3",)}), ["L105"]),
        (BusFacts(":1.7", {"org.qemu": ()}), ["L105"]),
        (BusFacts(":1.7", {}), []),  # the bus would not say
        (BusFacts(None, {"org.qemu": (":1.3",)}), []),
    ],
)
def test_the_bus_name_the_registry_gives(names: BusFacts, found: list[str]) -> None:
    assert codes(conform_with(VM, names)) == found


def test_a_name_only_qemu_holds_names_who_else_is_in_its_queue() -> None:
    (queued,) = conform_with(VM, BusFacts(":1.7", {"org.qemu": (":1.3", ":1.7")}))
    assert "org.qemu only queues for org.qemu" in queued.message
    assert "its owner :1.3 gets every call made to org.qemu" in queued.message
    (behind,) = conform_with(VM, BusFacts(":1.7", {"org.qemu": (":1.7", ":1.3", ":1.4")}))
    assert ":1.3 and :1.4 queue for org.qemu behind org.qemu" in behind.message
    # Console_0 exports four registry interfaces reached at org.qemu: said once for the object
    facts = BusFacts(":1.7", {"org.qemu": (":1.7", ":1.3")})
    console = compare_object(REGISTRY, DEST, parse_reply(DEST, "/org/qemu/Display1/Console_0", CONSOLE), "unix", facts)
    assert codes(console) == ["L105"]


VM_TYPES = {"Name": "s", "UUID": "s", "ConsoleIDs": "au", "Interfaces": "as"}


@pytest.mark.parametrize(
    ("values", "found", "words"),
    [
        (VM_TYPES, [], ""),
        ({**VM_TYPES, "ConsoleIDs": "ai"}, ["L006"], "ConsoleIDs is sent as 'ai' at /org/qemu/Display1/VM"),
        ({k: v for k, v in VM_TYPES.items() if k != "UUID"}, ["L106"], "leaves out readable property UUID"),
        ("GetAll failed with org.freedesktop.DBus.Error.AccessDenied", ["L106"], "cannot read the properties"),
    ],
)
def test_property_values(values: dict[str, str] | str, found: list[str], words: str) -> None:
    facts = BusFacts(values={("/org/qemu/Display1/VM", "org.qemu.Display1.VM"): values})
    findings = conform_with(VM, facts)
    assert codes(findings) == found
    assert all(words in d.message for d in findings)


def test_a_property_the_object_lacks_is_reported_once() -> None:
    xml = VM.replace('<property type="s" name="UUID" access="read"/>', "")
    facts = BusFacts(values={("/org/qemu/Display1/VM", "org.qemu.Display1.VM"): VM_TYPES})
    assert codes(conform_with(xml, facts)) == ["L001"]


def conform_with(xml: str, facts: BusFacts) -> list[Diagnostic]:
    return compare_object(REGISTRY, DEST, parse_reply(DEST, "/org/qemu/Display1/VM", xml), "unix", facts)


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        ("<node><interface name='org.qemu.Display1.VM'>", "X001"),
        ('<!DOCTYPE node [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><node/>', "X003"),
        ("", "X005"),
        ("<busconfig/>", "X013"),
    ],
)
def test_a_hostile_reply_is_a_finding_not_a_crash(reply: str, code: str) -> None:
    live = parse_reply(DEST, "/org/qemu/Display1/VM", reply)
    assert live.node is None
    findings = compare_object(REGISTRY, DEST, live, "unix")
    assert code in codes(findings)
    assert all(d.location.path == "org.qemu:/org/qemu/Display1/VM" for d in findings)


def test_introspection_against_an_older_release() -> None:
    # VM.Interfaces is Since 8.1: QEMU 7.2 does not export it, and a peer that does is newer.
    without = VM.replace('<property type="as" name="Interfaces" access="read"/>', "")
    assert conform_at(without, (7, 2, 0)) == []
    assert codes(conform_at(without, (8, 1, 0))) == ["L001"]
    findings = conform_at(VM, (7, 2, 0))
    assert codes(findings) == ["L107"]
    assert "VM.Interfaces, which the registry dates to 8.1, after QEMU 7.2" in findings[0].message
    # An interface newer than the release: MultiTouch is Since 8.1.
    touch = '<node><interface name="org.qemu.Display1.MultiTouch"><method name="SendEvent"/></interface></node>'
    found = compare_object(
        REGISTRY, DEST, parse_reply(DEST, "/org/qemu/Display1/Console_0", touch), "unix", None, (7, 2, 0)
    )
    assert codes(found) == ["L107"]
    assert "exports org.qemu.Display1.MultiTouch, which the registry dates to 8.1" in found[0].message


def conform_at(xml: str, release: tuple[int, int, int]) -> list[Diagnostic]:
    return compare_object(REGISTRY, DEST, parse_reply(DEST, "/org/qemu/Display1/VM", xml), "unix", None, release)


# --- which release the peer runs ---------------------------------------------------------------

AUDIO_72 = """
<node>
  <interface name="org.qemu.Display1.Audio">
    <method name="RegisterOutListener"><arg type="h" name="listener" direction="in"/></method>
    <method name="RegisterInListener"><arg type="h" name="listener" direction="in"/></method>
  </interface>
</node>
"""


def peer_objects(**objects: str) -> list[LiveObject]:
    return [parse_reply(DEST, f"/org/qemu/Display1/{name}", xml) for name, xml in objects.items()]


VM_72 = VM.replace('<property type="as" name="Interfaces" access="read"/>', "")
CONSOLE_72 = CONSOLE.replace('<property type="as" name="Interfaces" access="read"/>', "")
AUDIO_10 = AUDIO_72.replace(
    "</interface>",
    '<property type="u" name="NSamples" access="read"/><property type="as" name="Interfaces" access="read"/></interface>',
)


def test_a_peer_that_lacks_what_8_1_added_is_7_0_to_8_0() -> None:
    match = detect_release(REGISTRY, peer_objects(VM=VM_72, Console_0=CONSOLE_72, Audio=AUDIO_72), "unix")
    assert match is not None
    assert (match.oldest, match.newest, match.checked, match.matched) == ((7, 0, 0), (8, 0, 0), (8, 0, 0), True)
    assert match.range_text == "QEMU 7.0 to 8.0"


def test_a_peer_with_what_10_0_added_is_10_0_up_to_the_registry() -> None:
    match = detect_release(REGISTRY, peer_objects(VM=VM, Console_0=CONSOLE, Audio=AUDIO_10), "unix")
    assert match is not None
    assert (match.oldest, match.newest, match.matched) == ((10, 0, 0), (11, 1, 0), True)
    # Without Audio the peer could be any release since 8.1 (Interfaces).
    match = detect_release(REGISTRY, peer_objects(VM=VM, Console_0=CONSOLE), "unix")
    assert match is not None
    assert match.range_text == "QEMU 8.1 to 11.1"


def test_a_peer_that_matches_no_release_is_checked_against_the_closest() -> None:
    # NSamples (10.0) without the Interfaces properties (8.1): no release had that.
    audio = AUDIO_10.replace('<property type="as" name="Interfaces" access="read"/>', "")
    match = detect_release(REGISTRY, peer_objects(VM=VM_72, Console_0=CONSOLE_72, Audio=audio), "unix")
    assert match is not None
    assert not match.matched
    assert match.checked == (8, 0, 0)  # one difference (NSamples) against three at 10.0
    assert match.conflict is not None
    assert "exports org.qemu.Display1.Audio.NSamples, which the registry dates to 10.0" in match.conflict
    assert "but lacks org.qemu.Display1." in match.conflict


def test_a_member_that_came_with_its_interface_says_nothing_of_the_release() -> None:
    # Console without Label (7.0, like the interface): broken, not older (L001 says so).
    console = CONSOLE.replace('<property type="s" name="Label" access="read"/>', "")
    match = detect_release(REGISTRY, peer_objects(VM=VM, Console_0=console), "unix")
    assert match is not None
    assert match.matched


def test_nothing_dated_nothing_detected() -> None:
    other = '<node><interface name="org.example.Thing"><method name="Frob"/></interface></node>'
    assert detect_release(REGISTRY, peer_objects(Thing=other), "unix") is None


def test_the_platform_variant_dates_count_on_their_platform() -> None:
    # On Windows, QEMU's D-Bus display exists since 8.1.
    console = CONSOLE_72.replace('type="h"', 'type="ay"')
    match = detect_release(REGISTRY, peer_objects(Console_0=console), "windows")
    assert match is not None
    assert (match.oldest, match.newest, match.matched) == ((8, 1, 0), (11, 1, 0), True)


#: Where each live rule has its case: the pure comparison here, the traffic check on built
#: messages, and what needs real processes (a bus, a peer, QEMU's side of a listener socket).
LIVE_CASES = {
    **dict.fromkeys(
        (
            "L001",
            "L002",
            "L003",
            "L004",
            "L005",
            "L006",
            "L101",
            "L102",
            "L103",
            "L104",
            "L105",
            "L106",
            "L107",
            "L110",
        ),
        "test_conform",
    ),
    **dict.fromkeys(("L007", "L008", "L009", "L011", "L012", "L108", "L109"), "test_traffic"),
    **dict.fromkeys(("L010", "L013", "L014", "L017", "L018"), "test_conform_live"),
    "L015": "test_conform_qemu",
    # qemu-dbus probe: each kind of fault planted in a fake peer
    **dict.fromkeys(("L201", "L202", "L203", "L204", "L205"), "test_probe"),
}


def test_every_live_rule_has_a_case() -> None:
    assert {code for code in RULES if code.startswith("L")} == set(LIVE_CASES)
    for code, module in LIVE_CASES.items():
        text = (ROOT / "tests" / f"{module}.py").read_text()
        assert f'"{code}"' in text, f"{code} has no case in tests/{module}.py"

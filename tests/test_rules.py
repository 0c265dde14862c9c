"""One case per rule: inline XML that triggers it, and the line it must point at."""

from __future__ import annotations

import pytest

from sphinxext_qemudbus.check.summary import CheckOptions
from sphinxext_qemudbus.diagnostics.rules import RULES, expand_selection

from .helpers import REGISTRY_METADATA, check_xml, codes
from .test_diagrams import SEQUENCE_CASES


def doc(name: str, *params: str) -> str:
    lines = [f"<!--\n  {name}:"] + [f"  @{p}: the {p}." for p in params] + ["\n  Text.\n-->"]
    return "\n".join(lines)


def generic(body: str, name: str = "org.example.Test1") -> str:
    return f'<node>\n<!--\n  {name}:\n\n  Text.\n-->\n<interface name="{name}">\n{body}\n</interface>\n</node>\n'


# The shared metadata, with the Kind every registry interface now states.
METADATA = REGISTRY_METADATA + '    <annotation name="org.qemu.Registry.Kind" value="peer"/>\n'


def registry(body: str, name: str = "org.qemu.Test1", metadata: str = METADATA) -> str:
    return (
        f'<node>\n<!--\n  {name}:\n\n  Text.\n-->\n<interface name="{name}">\n{metadata}{body}\n</interface>\n</node>\n'
    )


# code -> (profile, xml, line of the finding).  Interfaces start on line 7 in `generic`/`registry`.
CASES: dict[str, tuple[str, str, int]] = {
    "X010": ("generic", generic("<bogus/>"), 8),
    "X011": ("generic", generic(doc("Foo") + '\n<method name="Foo" async="yes"/>'), 13),
    "X012": ("generic", generic('<property name="P" type="u"/>'), 8),
    "X013": ("generic", "<interface name='a.b1'/>\n", 1),
    "X014": ("generic", generic("stray words"), 8),
    "X015": ("generic", "<node>\n<method name='Foo'/>\n</node>\n", 2),
    "X020": ("generic", generic("<?else?>"), 8),
    "X021": ("generic", generic("<?include other.xml?>"), 8),
    "X022": ("generic", generic("<?if weird?>\n<?endif?>"), 8),
    "X023": ("generic", '<!DOCTYPE node [\n<!ENTITY e "x">\n]>\n' + generic(""), 2),
    "X024": ("generic", generic("<?if $(env.HOST_OS) == windows?>\n" * 17 + "<?endif?>\n" * 17), 24),
    "S101": ("generic", generic("", name="org..Test1"), 7),
    "S102": ("generic", generic(doc("Foo-1") + '\n<method name="Foo-1"/>'), 13),
    "S103": ("generic", generic(doc("P.x") + '\n<property name="P.x" type="u" access="read"/>'), 13),
    "S104": ("generic", "<node name='/org/'>\n<node name='/abs'/>\n</node>\n", 1),
    "S105": ("generic", generic(doc("P") + '\n<property name="P" type="a{vs}" access="read"/>'), 13),
    "S106": ("generic", generic(doc("P") + '\n<property name="P" type="uu" access="read"/>'), 13),
    "S107": (
        "generic",
        generic(doc("Foo", "x") + '\n<method name="Foo">\n<arg name="x" type="u" direction="up"/>\n</method>'),
        15,
    ),
    "S108": ("generic", generic(doc("P") + '\n<property name="P" type="u" access="rw"/>'), 13),
    "S109": (
        "generic",
        generic(doc("Foo", "x") + '\n<signal name="Foo">\n<arg name="x" type="u" direction="in"/>\n</signal>'),
        15,
    ),
    "S110": ("generic", generic('<annotation name="org.freedesktop.DBus.Deprecated" value="1"/>'), 8),
    "S111": (
        "generic",
        generic(
            doc("Foo", "x")
            + '\n<method name="Foo">\n<annotation name="org.freedesktop.DBus.Method.NoReply" value="true"/>\n<arg name="x" type="u" direction="out"/>\n</method>'
        ),
        14,
    ),
    "S112": ("generic", generic('<annotation name="NotDotted" value="x"/>'), 8),
    "S113": (
        "generic",
        generic(
            doc("Foo")
            + '\n<signal name="Foo">\n<annotation name="org.freedesktop.DBus.Method.NoReply" value="true"/>\n</signal>'
        ),
        14,
    ),
    "P201": ("qemu", registry("", name="org.qemux.Test1"), 7),
    "P202": (
        "qemu",
        registry("", metadata=METADATA.replace('value="org.qemu"', 'value="com.example.Vm"')),
        11,
    ),
    "M301": ("qemu", registry("", metadata=METADATA.replace("Stability", "Stable")), 7),
    "M302": ("qemu", registry('<annotation name="org.qemu.Registry.Owner" value="qemu"/>'), 16),
    "M303": ("qemu", registry("", metadata=METADATA.replace('value="client"', 'value="guest"')), 9),
    "M304": (
        "qemu",
        registry(
            doc("Foo")
            + '\n<method name="Foo">\n<annotation name="org.qemu.Registry.ObjectPath" value="/a"/>\n</method>'
        ),
        22,
    ),
    "M305": ("qemu", registry(doc("P") + '\n<property name="P" type="u" access="read"/>'), 21),
    "M306": ("qemu", registry("", metadata=METADATA.replace('value="bus"', 'value="peer-to-peer"')), 11),
    "M307": (
        "qemu",
        registry("<!--\n  P:\n\n  Text.\n\n  Since: 8.0\n-->\n" + '<property name="P" type="b" access="read"/>'),
        23,
    ),
    "M308": ("qemu", registry(doc("P") + '\n<property name="P" type="b" access="read"/>'), 21),
    "M309": ("qemu", registry("").replace("Text.\n-->", "Text.\n\n  Since: 6.2\n-->", 1), 2),
    "G401": ("generic", generic("", name="org.example.Test"), 7),
    "G402": ("qemu", registry("", metadata=METADATA.replace("/org/qemu/Test1", "/org/qemu/Other")), 12),
    "G403": ("generic", generic(doc("get_size") + '\n<method name="get_size"/>'), 13),
    "G404": (
        "generic",
        generic(doc("Foo", "Size") + '\n<method name="Foo">\n<arg name="Size" type="u"/>\n</method>'),
        15,
    ),
    "G405": (
        "generic",
        generic(doc("Foo", "s_name") + '\n<method name="Foo">\n<arg name="s_name" type="s"/>\n</method>'),
        15,
    ),
    "G406": (
        "generic",
        generic(
            doc("GetSize")
            + '\n<method name="GetSize"/>\n'
            + doc("Size")
            + '\n<property name="Size" type="u" access="read"/>'
        ),
        13,
    ),
    "G407": (
        "generic",
        generic(
            doc("SizeChanged")
            + '\n<signal name="SizeChanged"/>\n'
            + doc("Size")
            + '\n<property name="Size" type="u" access="read"/>'
        ),
        13,
    ),
    "G408": (
        "generic",
        generic(
            doc("ItemAdded", "item")
            + '\n<signal name="ItemAdded"><arg name="item" type="o"/></signal>\n'
            + doc("ItemRemoved", "item")
            + '\n<signal name="ItemRemoved"><arg name="item" type="o"/></signal>'
        ),
        14,
    ),
    "G409": (
        "generic",
        generic(doc("Foo", "enable") + '\n<method name="Foo">\n<arg name="enable" type="b"/>\n</method>'),
        15,
    ),
    "G410": (
        "generic",
        generic(
            doc("Foo", "names", "sizes")
            + '\n<method name="Foo">\n<arg name="names" type="as"/>\n<arg name="sizes" type="au"/>\n</method>'
        ),
        17,
    ),
    "M320": (
        "qemu",
        registry("", metadata=METADATA.replace('Kind" value="peer"', 'Kind" value="management"')),
        15,
    ),
    "G411": (
        "generic",
        generic(
            doc("Foo", "data", "data_len")
            + '\n<method name="Foo">\n<arg name="data" type="ay"/>\n<arg name="data_len" type="u"/>\n</method>'
        ),
        17,
    ),
    "G412": (
        "generic",
        generic(
            doc("Foo", "success") + '\n<method name="Foo">\n<arg name="success" type="b" direction="out"/>\n</method>'
        ),
        15,
    ),
    "G413": ("generic", generic(doc("ScanDone") + '\n<signal name="ScanDone"/>'), 13),
    "D501": ("generic", '<node>\n<interface name="org.example.Test1"/>\n</node>\n', 2),
    "D502": ("generic", generic('<method name="Foo"/>'), 8),
    "D503": ("generic", generic(doc("Foo") + '\n<method name="Foo">\n<arg name="x" type="u"/>\n</method>'), 14),
    "D504": ("generic", generic(doc("Foo") + '\n<method name="Foo">\n<arg type="u"/>\n</method>'), 14),
    "D505": ("generic", generic(doc("Foo", "y") + '\n<method name="Foo"/>'), 10),
    "D506": ("generic", generic(doc("Ghost")), 8),
    "D507": ("generic", generic(doc("Bar") + '\n<method name="Foo"/>'), 8),
    "D508": ("generic", generic(doc("Foo", "x", "x") + '\n<method name="Foo"><arg name="x" type="u"/></method>'), 11),
    "D509": ("generic", generic("<!--\n  Foo:\n\n  Text.\n\n  Since: soon\n-->\n" + '<method name="Foo"/>'), 8),
    "D510": ("generic", generic(doc("P", "x") + '\n<property name="P" type="u" access="read"/>'), 10),
    "R601": ("generic", generic("<!--\n  Foo:\n\n  See :dbus:meth:`Nope`.\n-->\n" + '<method name="Foo"/>'), 11),
    "R602": ("generic", generic("<!--\n  Foo:\n\n  See :dbus:sig:`Foo`.\n-->\n" + '<method name="Foo"/>'), 11),
    "R603": ("generic", generic("<!--\n  Foo:\n\n  See :dbus:meth:`.Bar`.\n-->\n" + '<method name="Foo"/>'), 11),
    "R604": ("generic", generic("<!--\n  Foo:\n\n  See :dbus:member:`Foo`.\n-->\n" + '<method name="Foo"/>'), 11),
    "U701": (
        "generic",
        '<node>\n<!--\n  org.example.Test1:\n\n  Text.\n-->\n<interface name="org.example.Test1"/>\n<interface name="org.example.Test1"/>\n</node>\n',
        8,
    ),
    "U702": ("generic", generic(doc("Foo") + '\n<method name="Foo"/>\n' + doc("Foo") + '\n<signal name="Foo"/>'), 19),
    "U703": (
        "generic",
        generic(
            doc("Foo", "x") + '\n<method name="Foo">\n<arg name="x" type="u"/>\n<arg name="x" type="u"/>\n</method>'
        ),
        16,
    ),
    "F801": (
        "generic",
        '<node>\n<interface name="org.example.Test1"/>\n<interface name="org.example.Other1"/>\n</node>\n',
        3,
    ),
    "F802": ("generic", generic("", name="org.example.Other1"), 7),
    "F803": ("generic", "<node/>\n", 1),
}
# Rules that inline XML cannot trigger: they concern bytes and files (the corpus covers them),
# compatibility (test_diff.py) or a tool bug.
NOT_INLINE = {"X001", "X002", "X003", "X004", "X005", "X006", "X007", "X008", "X099"}

# For R603: two other interfaces that both have a member Bar.
AMBIGUOUS = {
    "org.example.A1.xml": '<node><interface name="org.example.A1"><method name="Bar"/></interface></node>',
    "org.example.B1.xml": '<node><interface name="org.example.B1"><method name="Bar"/></interface></node>',
}


def test_every_rule_has_a_case() -> None:
    # C (qemu-dbus diff) and L (qemu-dbus conform) rules have their cases in test_diff and test_conform.
    # The sequence rules (R605-R609) check dbus-sequence descriptions, not XML: test_diagrams has theirs.
    missing = {code for code in RULES if code[0] not in "CL"} - set(CASES) - NOT_INLINE - set(SEQUENCE_CASES)
    assert not missing


@pytest.mark.parametrize("code", sorted(CASES))
def test_rule_fires_at_its_line(code: str) -> None:
    profile, xml, line = CASES[code]
    extra = AMBIGUOUS if code == "R603" else {}
    path = "org.qemu.Test1.xml" if profile == "qemu" else None
    if code == "P201":
        path = "org.qemux.Test1.xml"
    found = codes(check_xml(xml, profile, path, **extra))
    assert (code, line) in found, found


@pytest.mark.parametrize("code", sorted(code for code in CASES if not RULES[code].fatal))
def test_rule_can_be_ignored(code: str) -> None:
    profile, xml, _ = CASES[code]
    extra = AMBIGUOUS if code == "R603" else {}
    from sphinxext_qemudbus.check.checker import check_files
    from sphinxext_qemudbus.model.parser import parse_string

    files = [parse_string(xml, "org.example.Test1.xml")] + [parse_string(b, n) for n, b in extra.items()]
    assert code not in {d.code for d in check_files(files, CheckOptions(profile, ignore=frozenset({code})))}


def test_qemu_only_rules_do_not_fire_in_generic_profile() -> None:
    xml = registry("", name="org.qemux.Test1", metadata="")
    found = {c for c, _ in codes(check_xml(xml, "generic", "org.qemux.Test1.xml"))}
    assert not found & {"P201", "M301"}


def test_selection_by_prefix_name_and_code() -> None:
    assert expand_selection(["G4"]) == {c for c in RULES if c.startswith("G4")}
    assert expand_selection(["unresolved-reference"]) == {"R601"}
    assert expand_selection(["D501,D502"]) == {"D501", "D502"}
    with pytest.raises(ValueError, match="unknown rule"):
        expand_selection(["Z42"])


def test_waiver_silences_guideline_on_element_and_children() -> None:
    body = (
        doc("Foo", "enable")
        + '\n<method name="Foo">\n<annotation name="org.qemu.Registry.Waive" value="G409: frozen API"/>\n'
        + '<arg name="enable" type="b"/>\n</method>'
    )
    assert "G409" not in {d.code for d in check_xml(registry(body), "qemu", "org.qemu.Test1.xml")}
    bad = body.replace("G409: frozen API", "G409")
    assert "M303" in {d.code for d in check_xml(registry(bad), "qemu", "org.qemu.Test1.xml")}


def test_child_node_names() -> None:
    found = codes(check_xml("<node>\n<node/>\n<node name='/abs'/>\n<node name='ok/child'/>\n</node>\n"))
    assert ("X012", 2) in found
    assert ("S104", 3) in found
    assert not [c for c, line in found if line == 4]


def test_signal_arg_written_out_is_fine() -> None:
    xml = generic(doc("Foo", "x") + '\n<signal name="Foo">\n<arg name="x" type="u" direction="out"/>\n</signal>')
    assert not check_xml(xml)


def test_platform_variants_are_not_duplicates() -> None:
    body = (
        doc("Foo", "fd")
        + '\n<method name="Foo">\n<?if $(env.HOST_OS) == windows?>\n<arg name="fd" type="ay"/>\n<?else?>\n'
        + '<arg name="fd" type="h"/>\n<?endif?>\n</method>'
    )
    assert not check_xml(generic(body))


def test_duplicate_member_on_one_platform_only() -> None:
    body = doc("Foo") + '\n<method name="Foo"/>\n<?if $(env.HOST_OS) == windows?>\n<method name="Foo"/>\n<?endif?>'
    found = [d for d in check_xml(generic(body)) if d.code.startswith("U")]
    assert [d.code for d in found] == ["U702"]
    assert "on windows" in found[0].message


def test_clean_registry_interface_has_no_findings() -> None:
    body = (
        "<!--\n  Press:\n  @keycode: a key.\n\n  Press a key.\n\n  Since: 9.0\n-->\n"
        '<method name="Press">\n<arg name="keycode" type="u" direction="in">\n'
        '<annotation name="org.qemu.Registry.Validate" value="QEMU ignores unknown keys."/>\n</arg>\n</method>'
    )
    assert not check_xml(registry(body), "qemu", "org.qemu.Test1.xml")


def test_references_resolve_relative_then_absolute_and_across_files() -> None:
    body = (
        "<!--\n  Foo:\n\n  See :dbus:meth:`Foo`, :dbus:meth:`~org.example.Test1.Foo`,"
        " :dbus:meth:`.Foo`, :dbus:iface:`org.example.A1` and :dbus:meth:`org.example.A1.Bar`.\n-->\n"
        '<method name="Foo"/>'
    )
    found = {d.code for d in check_xml(generic(body), **{"org.example.A1.xml": AMBIGUOUS["org.example.A1.xml"]})}
    assert not found & {"R601", "R602", "R603", "R604"}


def test_design_findings_are_checked_on_every_platform_variant() -> None:
    body = (
        doc("Foo", "names", "sizes")
        + '\n<method name="Foo">\n<arg name="names" type="as"/>\n<?if $(env.HOST_OS) == windows?>\n'
        + '<arg name="sizes" type="au"/>\n<?else?>\n<arg name="sizes" type="(su)"/>\n<?endif?>\n</method>'
    )
    assert [(c, line) for c, line in codes(check_xml(generic(body))) if c.startswith("G")] == [("G410", 18)]


def test_reference_resolved_in_its_own_file_is_checked_again_when_another_file_shares_the_name() -> None:
    # Each file resolves the references to its own members; a name that another file defines too
    # (first definition wins) makes the cross-file step resolve them all again.
    body = "<!--\n  Foo:\n\n  See :dbus:prop:`Foo`.\n-->\n" + '<property name="Foo" type="s" access="read"/>'
    alone = check_xml(generic(body))
    assert not {d.code for d in alone} & {"R601", "R602"}
    earlier = '<node><interface name="org.example.Test1"><method name="Foo"/></interface></node>'
    found = check_xml(generic(body), path="org.example.Test1.xml", **{"org.example.Other.xml": earlier})
    assert "R602" not in {d.code for d in found}  # this file comes first: its own property wins
    found = check_xml(earlier, path="a.xml", **{"org.example.Test1.xml": generic(body)})
    assert [(d.code, d.location.path, d.location.line) for d in found if d.code.startswith("R")] == [
        ("R602", "org.example.Test1.xml", 11)
    ]


def test_member_name_that_is_also_an_interface_name_elsewhere() -> None:
    body = "<!--\n  Foo:\n\n  See :dbus:meth:`org.example.Test1.Foo`.\n-->\n" + '<method name="Foo"/>'
    iface = '<node><interface name="org.example.Test1.Foo"/></node>'
    found = check_xml(iface, path="a.xml", **{"org.example.Test1.xml": generic(body)})
    assert [d.code for d in found if d.code.startswith("R")] == ["R602"]


def test_since_compares_releases_as_numbers() -> None:
    """7.2 and 7.2.0 are one release, and 9.10 comes after 9.2 (M307 compares releases, not
    strings or unequal tuples)."""

    def member_since(interface: str, member: str) -> set[str]:
        xml = registry(
            f"<!--\n  P:\n\n  Text.\n\n  Since: {member}\n-->\n" + '<property name="P" type="b" access="read"/>',
            metadata=METADATA.replace('Since" value="9.0"', f'Since" value="{interface}"'),
        )
        return {code for code, _ in codes(check_xml(xml, "qemu"))} & {"M307", "M308"}

    assert member_since("9.0.0", "9.0") == set()
    assert member_since("9.2", "9.10") == set()
    assert member_since("9.10", "9.2") == {"M307"}

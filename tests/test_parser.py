"""The parser and the model: doc comments, conditionals, defaults and exact locations."""

from __future__ import annotations

import pickle
import textwrap

from sphinxext_qemudbus.diagnostics.diagnostic import Location
from sphinxext_qemudbus.model.doccomment import is_doc_comment, parse_doc_comment
from sphinxext_qemudbus.model.introspection import (
    Access,
    Direction,
    EmitsChanged,
    Interface,
    Method,
    Property,
    Signal,
    interface_for_platform,
    platform_label,
    platforms_of,
    signature_variants,
)
from sphinxext_qemudbus.model.parser import parse_string


def parse(xml: str, *expected: str) -> Interface:
    parsed = parse_string(textwrap.dedent(xml).lstrip("\n"), "t.xml")
    assert [d.code for d in parsed.diagnostics] == list(expected)
    return parsed.interfaces[0]


def test_doc_comment_parts() -> None:
    text = """
        SetUIInfo: short text
        @width_mm: the physical width,
          in millimetres.
        @height_mm: the height.

        Body paragraph one
        continues here.

          literal block

        Since: 7.1
        Deprecated: use
          SetUIInfo2.
    """
    doc = parse_doc_comment(text, Location("f.xml", 10, 3))
    assert doc.symbol == "SetUIInfo"
    assert doc.short == "short text"
    assert doc.symbol_line == 11
    assert [(p.name, p.text, p.location.line) for p in doc.params] == [
        ("width_mm", "the physical width, in millimetres.", 12),
        ("height_mm", "the height.", 14),
    ]
    assert doc.body == "Body paragraph one\ncontinues here.\n\n  literal block"
    assert doc.body_line == 16
    assert doc.since == "7.1"
    assert doc.deprecated == "use SetUIInfo2."


def test_since_in_prose_stays_prose() -> None:
    doc = parse_doc_comment(
        "\n  Foo:\n\n  Works since: the start of time, Since: 7.0 is mentioned.\n", Location("f", 1)
    )
    assert doc.since is None
    assert "Since: 7.0" in doc.body


def test_tags_only_at_a_paragraph_start_and_the_body_indentation() -> None:
    text = """
        Foo: short

        First paragraph.
        Since: 1.0 is prose here: not at a paragraph start.

          Since: 2.0 is indented deeper: prose too.

        Since: 8.0
        Stability: stable
        Deprecated: use
          Bar instead.

        Last paragraph, line 12.
    """
    doc = parse_doc_comment(text, Location("f.xml", 1))
    assert (doc.since, doc.deprecated) == ("8.0", "use Bar instead.")
    assert doc.body == (
        "First paragraph.\nSince: 1.0 is prose here: not at a paragraph start.\n\n"
        "  Since: 2.0 is indented deeper: prose too.\n\n\n\n\n\n\nLast paragraph, line 12."
    )
    # Tag paragraphs are blanked, not removed: body lines keep their file lines.
    assert doc.body_line == 4
    assert doc.body.split("\n").index("Last paragraph, line 12.") + doc.body_line == 14


def test_a_body_of_tags_only_is_empty() -> None:
    doc = parse_doc_comment("\n  Foo:\n\n  Since: 7.0\n  Deprecated: yes\n", Location("f", 1))
    assert (doc.since, doc.deprecated, doc.body, doc.is_empty) == ("7.0", "yes", "", True)


def test_doc_comment_with_crlf_line_ends() -> None:
    text = "\r\n  Foo: short\r\n  @a: the a.\r\n\r\n  Body.\r\n\r\n  Since: 7.0\r\n"
    doc = parse_doc_comment(text, Location("f", 1))
    assert (doc.short, doc.since, doc.body) == ("short", "7.0", "Body.")
    assert [(p.name, p.text) for p in doc.params] == [("a", "the a.")]


def test_is_doc_comment() -> None:
    assert is_doc_comment("\n   org.qemu.Display1.VM:\n")
    assert is_doc_comment(" Foo: short ")
    assert not is_doc_comment(" xywh? ")
    assert not is_doc_comment(" Since: 7.0 ")
    assert not is_doc_comment("")


LOCATED = """
<node>
  <!--
      org.example.Test1:

      Text.
  -->
  <interface
      name="org.example.Test1">
    <method name="A">
      <arg name="x" type="u"/>
    </method>
  </interface>
</node>
"""


def test_locations_lines_in_the_model_exact_columns_on_demand() -> None:
    parsed = parse_string(textwrap.dedent(LOCATED).lstrip("\n"), "t.xml")
    iface = parsed.interfaces[0]
    source = parsed.source
    assert source is not None
    assert iface.doc is not None
    # A comment's start line is exact; lxml gives the line where a start tag ends.
    assert iface.doc.location == Location("t.xml", 2, 0)
    assert source.refine(iface.doc.location, "<!--") == Location("t.xml", 2, 3)
    assert iface.location == Location("t.xml", 8, 0)
    assert source.refine(iface.location, "<interface") == Location("t.xml", 7, 3)
    method = iface.members[0]
    assert isinstance(method, Method)
    assert source.refine(method.location, "<method") == Location("t.xml", 9, 5)
    assert source.refine(method.args[0].location, "<arg") == Location("t.xml", 10, 7)


def test_a_line_with_several_nodes_locates_every_node_exactly() -> None:
    # Two args on one line: the line cannot tell them apart, so every node of the file is
    # located exactly at parse time, in one pass.
    text = (
        textwrap.dedent(LOCATED)
        .lstrip("\n")
        .replace('<arg name="x" type="u"/>', '<arg name="x" type="u"/><!-- y: --><arg name="y" type="u"/>')
    )
    parsed = parse_string(text, "t.xml")
    iface = parsed.interfaces[0]
    assert iface.doc is not None
    assert iface.doc.location == Location("t.xml", 2, 3)
    assert iface.location == Location("t.xml", 7, 3)
    method = iface.members[0]
    assert isinstance(method, Method)
    assert method.location == Location("t.xml", 9, 5)
    first, second = method.args
    assert first.location == Location("t.xml", 10, 7)
    assert second.location == Location("t.xml", 10, 42)
    assert not parsed.diagnostics


def test_nested_elements_of_one_tag_on_one_line_are_located_in_document_order() -> None:
    # The builder meets <node name="c"> (a child of the root) before <node name="b"> (a
    # grandchild), though b comes first on the line: positions come from the text, not the count.
    parsed = parse_string('<node>\n<node name="a">\n<node name="b"/></node><node name="c"/>\n</node>', "t.xml")
    assert parsed.node is not None
    a, c = parsed.node.nodes
    (b,) = a.nodes
    assert (a.location, b.location, c.location) == (
        Location("t.xml", 2, 1),
        Location("t.xml", 3, 1),
        Location("t.xml", 3, 24),
    )


def test_defaults_and_emits_changed_inheritance() -> None:
    iface = parse(
        """
        <node>
          <interface name="org.example.Test1">
            <annotation name="org.freedesktop.DBus.Property.EmitsChangedSignal" value="const"/>
            <method name="M"><arg name="a" type="u"/><arg name="b" type="u" direction="out"/></method>
            <signal name="S"><arg name="c" type="u"/></signal>
            <property name="P" type="u" access="readwrite"/>
            <property name="Q" type="u" access="read">
              <annotation name="org.freedesktop.DBus.Property.EmitsChangedSignal" value="invalidates"/>
            </property>
          </interface>
        </node>
        """
    )
    method, signal, p, q = iface.members
    assert isinstance(method, Method)
    assert isinstance(signal, Signal)
    assert [a.direction for a in method.args] == [Direction.IN, Direction.OUT]
    assert signal.args[0].direction is Direction.OUT
    assert isinstance(p, Property)
    assert isinstance(q, Property)
    assert p.access is Access.READWRITE
    assert p.emits_changed is EmitsChanged.CONST
    assert q.emits_changed is EmitsChanged.INVALIDATES


def test_gdbus_docstring_annotations_are_documentation() -> None:
    iface = parse(
        """
        <node>
          <interface name="org.example.Test1">
            <annotation name="org.gtk.GDBus.DocString" value="Body text."/>
            <annotation name="org.gtk.GDBus.DocString.Short" value="Short."/>
          </interface>
        </node>
        """
    )
    assert iface.doc is not None
    assert (iface.doc.short, iface.doc.body) == ("Short.", "Body text.")


QEMU_STYLE = """
    <node>
      <interface name="org.example.Test1">
        <method name="RegisterListener">
          <?if $(env.HOST_OS) == windows?>
          <arg type="ay" name="listener" direction="in"/>
          <?else?>
          <arg type="h" name="listener" direction="in"/>
          <?endif?>
        </method>
        <?if $(env.HOST_OS) != windows?>
        <method name="ScanoutDMABUF"><arg type="h" name="dmabuf"/></method>
        <?endif?>
        <?ifdef CONFIG_X?>
        <method name="OnlyWithX"/>
        <?elseif $(env.HOST_OS) == windows?>
        <method name="WindowsWithoutX"/>
        <?else?>
        <method name="Otherwise"/>
        <?endif?>
      </interface>
    </node>
"""


def test_platform_variants_are_kept_per_branch() -> None:
    iface = parse(QEMU_STYLE, "X022")
    register = iface.members[0]
    assert isinstance(register, Method)
    variants = signature_variants(register)
    assert [(sorted(p), [a.type for a in args]) for p, args in variants] == [(["unix"], ["h"]), (["windows"], ["ay"])]
    dmabuf = iface.members[1]
    assert platforms_of(dmabuf.conditions) == {"unix"}
    assert platform_label(platforms_of(dmabuf.conditions)) == "Unix"


def test_elseif_and_ifdef_branches() -> None:
    iface = parse(QEMU_STYLE, "X022")
    only_x, windows_without_x, otherwise = iface.members[2:]
    assert [str(c) for c in only_x.conditions] == ["ifdef CONFIG_X"]
    assert [str(c) for c in windows_without_x.conditions] == ["not (ifdef CONFIG_X)", "$(env.HOST_OS) == windows"]
    assert [str(c) for c in otherwise.conditions] == ["not (ifdef CONFIG_X)", "not ($(env.HOST_OS) == windows)"]
    # CONFIG_X is a build-configuration variable the platform builds do not decide: the branch
    # that tests it is kept everywhere (and X022 says so); later branches narrow as usual.
    assert platforms_of(only_x.conditions) == {"unix", "windows"}
    assert platforms_of(windows_without_x.conditions) == {"windows"}
    assert platforms_of(otherwise.conditions) == {"unix"}


def test_projection_onto_one_platform() -> None:
    iface = parse(QEMU_STYLE, "X022")
    windows = interface_for_platform(iface, "windows")
    assert [m.name for m in windows.members] == ["RegisterListener", "OnlyWithX", "WindowsWithoutX"]
    register = windows.members[0]
    assert isinstance(register, Method)
    assert [a.type for a in register.args] == ["ay"]
    unix = interface_for_platform(iface, "unix")
    assert [m.name for m in unix.members] == ["RegisterListener", "ScanoutDMABUF", "OnlyWithX", "Otherwise"]


def test_model_is_immutable_and_hashable() -> None:
    iface = parse(QEMU_STYLE, "X022")
    assert hash(iface) == hash(parse(QEMU_STYLE, "X022"))
    try:
        iface.name = "x"  # type: ignore[misc]
    except AttributeError:
        pass
    else:  # pragma: no cover
        raise AssertionError("model objects must be frozen")


def test_model_pickles_to_equal_objects() -> None:
    # The checker's worker processes send results by pickle; `frozen` pickles by field values.
    iface = parse(QEMU_STYLE, "X022")
    copy = pickle.loads(pickle.dumps(iface))
    assert copy == iface
    assert copy.members[0].location == iface.members[0].location
    assert type(copy.members[0]) is type(iface.members[0])


def test_conditional_diagnostics_point_at_their_own_instruction() -> None:
    parsed = parse_string(
        '<node>\n<interface name="org.example.Test1">\n<?if $(env.HOST_OS) == windows?>\n'
        "<?elseif $(env.ARCH) == x86?>\n<?endif?>\n</interface>\n</node>\n",
        "t.xml",
    )
    assert [(d.code, d.location.line, d.location.column) for d in parsed.diagnostics] == [("X022", 4, 1)]

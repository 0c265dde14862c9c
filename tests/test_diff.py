"""``qemu-dbus diff``: one case per change class in both directions, platform variants, stability,
the CLI's exit codes and the git baseline."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from sphinxext_qemudbus.cli import main
from sphinxext_qemudbus.compat.diff import diff_interfaces, successor_name
from sphinxext_qemudbus.compat.gitbaseline import BaselineError, read_baseline_file
from sphinxext_qemudbus.diagnostics.diagnostic import Diagnostic, Severity
from sphinxext_qemudbus.diagnostics.rules import RULES
from sphinxext_qemudbus.model.introspection import Interface
from sphinxext_qemudbus.model.parser import parse_string
from sphinxext_qemudbus.model.registry import Registry

from .helpers import REGISTRY_METADATA

ROOT = Path(__file__).parent.parent
INTERFACES = (ROOT / "interfaces").resolve()

# Line numbers matter: the expectations below point at them.
BASE = """\
<node>
  <interface name="org.example.Test1">
    <method name="Frob">
      <arg name="width" type="u" direction="in"/>
      <arg name="height" type="u" direction="in"/>
      <arg name="result" type="s" direction="out"/>
    </method>
    <method name="Poke"/>
    <signal name="Changed">
      <arg name="value" type="i"/>
    </signal>
    <property name="Size" type="u" access="readwrite"/>
  </interface>
</node>
"""


def parse_both(old: str, new: str) -> tuple[list[Interface], list[Interface]]:
    old_file, new_file = parse_string(old, "old.xml"), parse_string(new, "new.xml")
    for parsed in (old_file, new_file):
        assert not [d for d in parsed.diagnostics if d.severity is Severity.ERROR], parsed.diagnostics
    return list(old_file.interfaces), list(new_file.interfaces)


def diff(old: str, new: str) -> list[Diagnostic]:
    return diff_interfaces(*parse_both(old, new))


def found(diagnostics: list[Diagnostic]) -> list[tuple[str, str, str, int]]:
    return [(d.code, d.severity.value, d.location.path, d.location.line) for d in diagnostics]


def edit(*replacements: tuple[str, str], base: str = BASE) -> str:
    text = base
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


FROB_ARGS = '      <arg name="width" type="u" direction="in"/>\n      <arg name="height" type="u" direction="in"/>\n'
NO_REPLY = (
    '<method name="Poke">\n      <annotation name="org.freedesktop.DBus.Method.NoReply" value="true"/>\n    </method>'
)
EMITS = '<property name="Size" type="u" access="readwrite">\n      <annotation name="org.freedesktop.DBus.Property.EmitsChangedSignal" value="invalidates"/>\n    </property>'
DEPRECATED = (
    '<method name="Poke">\n      <annotation name="org.freedesktop.DBus.Deprecated" value="true"/>\n    </method>'
)

# name -> (NEW as an edit of BASE, findings of BASE -> NEW, findings of NEW -> BASE).
# A finding is (code, severity, file, line): the line is in NEW, or in OLD for a removal.
CASES: dict[str, tuple[str, list[tuple[str, str, str, int]], list[tuple[str, str, str, int]]]] = {
    "interface": (
        "<node/>\n",
        [("C001", "error", "old.xml", 2)],
        [("C101", "warning", "new.xml", 2)],
    ),
    "method": (
        edit(('    <method name="Poke"/>\n', "")),
        [("C002", "error", "old.xml", 8)],
        [("C102", "warning", "new.xml", 8)],
    ),
    "signal": (
        edit(('    <signal name="Changed">\n      <arg name="value" type="i"/>\n    </signal>\n', "")),
        [("C002", "error", "old.xml", 9)],
        [("C102", "warning", "new.xml", 9)],
    ),
    "property": (
        edit(('    <property name="Size" type="u" access="readwrite"/>\n', "")),
        [("C002", "error", "old.xml", 12)],
        [("C102", "warning", "new.xml", 12)],
    ),
    "method-arg": (
        edit((FROB_ARGS, FROB_ARGS + '      <arg name="depth" type="u" direction="in"/>\n')),
        [("C003", "error", "new.xml", 6)],
        [("C004", "error", "old.xml", 6)],
    ),
    "signal-arg": (
        edit(('<arg name="value" type="i"/>', '<arg name="value" type="i"/><arg name="old" type="i"/>')),
        [("C003", "error", "new.xml", 10)],
        [("C004", "error", "old.xml", 10)],
    ),
    "arg-type": (
        edit(('name="width" type="u"', 'name="width" type="i"')),
        [("C005", "error", "new.xml", 4)],
        [("C005", "error", "new.xml", 4)],
    ),
    "arg-direction": (
        edit(('name="height" type="u" direction="in"', 'name="height" type="u" direction="out"')),
        [("C006", "error", "new.xml", 5)],
        [("C006", "error", "new.xml", 5)],
    ),
    "property-type": (
        edit(('name="Size" type="u"', 'name="Size" type="t"')),
        [("C007", "error", "new.xml", 12)],
        [("C007", "error", "new.xml", 12)],
    ),
    "property-access": (
        edit(('access="readwrite"', 'access="read"')),
        [("C008", "error", "new.xml", 12)],
        [("C103", "warning", "new.xml", 12)],
    ),
    "no-reply": (
        edit(('<method name="Poke"/>', NO_REPLY)),
        [("C009", "error", "new.xml", 8)],
        [("C009", "error", "new.xml", 8)],
    ),
    "emits-changed": (
        edit(('<property name="Size" type="u" access="readwrite"/>', EMITS)),
        [("C010", "error", "new.xml", 12)],
        [("C104", "warning", "new.xml", 12)],
    ),
    "member-kind": (
        edit(('<method name="Poke"/>', '<property name="Poke" type="b" access="read"/>')),
        [("C011", "error", "new.xml", 8)],
        [("C011", "error", "new.xml", 8)],
    ),
    "arg-order": (
        edit(
            (
                FROB_ARGS,
                '      <arg name="height" type="u" direction="in"/>\n      <arg name="width" type="u" direction="in"/>\n',
            )
        ),
        [("C012", "error", "new.xml", 4)],
        [("C012", "error", "new.xml", 4)],
    ),
    "arg-name": (
        edit(('name="result"', 'name="answer"')),
        [("C201", "note", "new.xml", 6)],
        [("C201", "note", "new.xml", 6)],
    ),
    "deprecation": (
        edit(('<method name="Poke"/>', DEPRECATED)),
        [("C202", "note", "new.xml", 8)],
        [("C203", "note", "new.xml", 8)],
    ),
    "documentation": (
        edit(
            ('    <method name="Poke"/>', '    <!--\n      Poke:\n\n      Poke it.\n    -->\n    <method name="Poke"/>')
        ),
        [("C204", "note", "new.xml", 13)],
        [("C204", "note", "new.xml", 8)],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_change_class_forwards(case: str) -> None:
    new, forwards, _ = CASES[case]
    assert found(diff(BASE, new)) == forwards


@pytest.mark.parametrize("case", sorted(CASES))
def test_change_class_backwards(case: str) -> None:
    new, _, backwards = CASES[case]
    assert found(diff(new, BASE)) == backwards


def test_every_compatibility_code_has_a_case() -> None:
    seen = {f[0] for _, forwards, backwards in CASES.values() for f in forwards + backwards}
    seen |= {"C301", "C013"}  # test_unstable_interface_gives_only_notes, test_stability_cannot_be_withdrawn
    assert {code for code in RULES if code.startswith("C")} == seen


def test_identical_inputs_report_nothing() -> None:
    assert diff(BASE, BASE) == []


def test_whitespace_attribute_order_and_member_order_are_not_changes() -> None:
    reordered = """\
<?xml version="1.0"?>
<node>

  <interface   name="org.example.Test1" >
    <property access="readwrite" type="u" name="Size"></property>
    <signal name="Changed"><arg type="i" name="value" direction="out"/></signal>
    <method name="Poke">
    </method>
    <method name="Frob"><arg direction="in" type="u" name="width"/><arg type="u" name="height"/>
      <arg direction="out" name="result" type="s"/></method>
  </interface>
</node>
"""
    assert diff(BASE, reordered) == []
    assert diff(reordered, BASE) == []


def test_reindented_documentation_is_not_a_change() -> None:
    doc = "    <!--\n      Poke:\n      @x: the x\n\n      Pokes the\n      thing.\n    -->\n"
    reflowed = "<!--\n  Poke:\n  @x:   the   x\n\n  Pokes the thing.\n-->\n"
    old = edit(('    <method name="Poke"/>\n', doc + '    <method name="Poke"/>\n'))
    new = edit(('    <method name="Poke"/>\n', reflowed + '    <method name="Poke"/>\n'))
    assert diff(old, new) == []


def test_documentation_change_says_what_changed() -> None:
    old = edit(
        ('    <method name="Poke"/>\n', "<!--\n  Poke:\n  @x: the x\n\n  Pokes.\n-->\n" + '    <method name="Poke"/>\n')
    )
    new = edit(
        ('    <method name="Poke"/>\n', "<!--\n  Poke:\n  @x: the y\n\n  Pokes.\n-->\n" + '    <method name="Poke"/>\n')
    )
    (note,) = diff(old, new)
    assert note.code == "C204"
    assert note.message == "documentation of method org.example.Test1.Poke changed (@x)"


def test_deprecation_in_a_doc_comment_counts() -> None:
    doc = "<!--\n  Poke:\n\n  Pokes.\n\n  Deprecated: use Prod.\n-->\n"
    plain = "<!--\n  Poke:\n\n  Pokes.\n-->\n"
    old = edit(('    <method name="Poke"/>\n', plain + '    <method name="Poke"/>\n'))
    new = edit(('    <method name="Poke"/>\n', doc + '    <method name="Poke"/>\n'))
    assert [d.code for d in diff(old, new)] == ["C202"]
    assert [d.code for d in diff(new, old)] == ["C203"]


def test_signal_arg_written_direction_out_is_no_change() -> None:
    explicit = edit(('<arg name="value" type="i"/>', '<arg name="value" type="i" direction="out"/>'))
    assert diff(BASE, explicit) == []
    assert diff(explicit, BASE) == []


def test_inserted_arg_is_one_change_not_a_cascade() -> None:
    new = edit(
        (
            '<arg name="height" type="u" direction="in"/>',
            '<arg name="depth" type="s" direction="in"/>\n      <arg name="height" type="u" direction="in"/>',
        )
    )
    (change,) = diff(BASE, new)
    assert change.code == "C003"
    assert change.location.line == 5
    assert "in arg 1 'depth' (s) was added to method org.example.Test1.Frob" in change.message
    assert "in signature 'uu' became 'usu'" in change.message


def test_arg_order_change_with_different_types_is_reported() -> None:
    old = edit(('name="width" type="u"', 'name="width" type="s"'))
    new = edit(
        (
            '<arg name="width" type="s" direction="in"/>\n      <arg name="height" type="u" direction="in"/>',
            '<arg name="height" type="u" direction="in"/>\n      <arg name="width" type="s" direction="in"/>',
        ),
        base=old,
    )
    changes = diff(old, new)
    assert [d.code for d in changes] == ["C012"]
    assert "in signature 'su' became 'us'" in changes[0].message


def test_swapping_args_of_one_type_is_an_error_though_the_signature_stays() -> None:
    (change,) = diff(BASE, CASES["arg-order"][0])
    assert change.severity is Severity.ERROR
    assert "in signature 'uu' is unchanged, but values are matched by position" in change.message


def test_out_arg_added_is_reported_with_out_signature() -> None:
    new = edit(
        (
            '<arg name="result" type="s" direction="out"/>',
            '<arg name="result" type="s" direction="out"/><arg name="more" type="b" direction="out"/>',
        )
    )
    (change,) = diff(BASE, new)
    assert change.code == "C003"
    assert "out arg 1 'more' (b)" in change.message
    assert "out signature 's' became 'sb'" in change.message


def test_access_read_to_write_is_narrowed() -> None:
    old = edit(('access="readwrite"', 'access="read"'))
    new = edit(('access="readwrite"', 'access="write"'))
    assert [d.code for d in diff(old, new)] == ["C008"]


def test_interface_level_emits_changed_default_applies() -> None:
    new = edit(
        (
            '<interface name="org.example.Test1">',
            '<interface name="org.example.Test1">\n'
            '    <annotation name="org.freedesktop.DBus.Property.EmitsChangedSignal" value="false"/>',
        )
    )
    (change,) = diff(BASE, new)
    assert change.code == "C010"
    assert change.location.line == 13
    assert "weakened from true to false" in change.message


def test_arg_renamed_from_unnamed() -> None:
    old = edit(('name="result" ', ""))
    (change,) = diff(old, BASE)
    assert change.code == "C201"
    assert "is now named 'result'" in change.message


# --- messages ------------------------------------------------------------------------------------


def test_stable_error_names_interface_member_and_fix() -> None:
    old = registry_xml('<method name="SetUIInfo"/>\n<method name="Other"/>', "org.qemu.Display1.Console")
    new = registry_xml('<method name="Other"/>', "org.qemu.Display1.Console")
    (error,) = diff(old, new)
    assert error.format() == (
        "old.xml:10: error: method org.qemu.Display1.Console.SetUIInfo was removed; this breaks clients of "
        "stable interface org.qemu.Display1.Console: keep it (deprecate it) and put the new API in "
        "org.qemu.Display2.Console [C002]"
    )
    assert error.hint == "keep it (deprecate it) and put the new API in org.qemu.Display2.Console"


def test_interface_without_stability_metadata_is_stable() -> None:
    (error,) = diff(BASE, edit(('name="Size" type="u"', 'name="Size" type="s"')))
    assert error.severity is Severity.ERROR
    assert error.message == (
        "property org.example.Test1.Size changed type from 'u' to 's'; this breaks clients of stable interface "
        "org.example.Test1: restore type 'u' and put the new property in org.example.Test2 (or give it a new name)"
    )


@pytest.mark.parametrize(
    ("name", "successor"),
    [
        ("org.qemu.Display1.Console", "org.qemu.Display2.Console"),
        ("org.qemu.Display1.Listener.Unix.ScanoutDMABUF2", "org.qemu.Display1.Listener.Unix.ScanoutDMABUF3"),
        ("org.qemu.VMState1", "org.qemu.VMState2"),
        ("org.example.Foo", "org.example.Foo2"),
        ("org.example9.Foo", "org.example10.Foo"),
        ("com.Foo99", "com.Foo100"),
    ],
)
def test_successor_name(name: str, successor: str) -> None:
    assert successor_name(name) == successor


def registry_xml(body: str, name: str = "org.qemu.Test1", stability: str = "stable") -> str:
    metadata = REGISTRY_METADATA.replace('value="stable"', f'value="{stability}"')
    return f'<node>\n<interface name="{name}">\n{metadata}{body}\n</interface>\n</node>\n'


def test_unstable_interface_gives_only_notes() -> None:
    old = registry_xml(
        '<method name="Foo"><arg name="x" type="u"/></method>\n<property name="P" type="u" access="read"/>',
        stability="unstable",
    )
    new = registry_xml(
        '<method name="Foo"><arg name="y" type="s"/></method>\n<method name="Bar"/>', stability="unstable"
    )
    changes = diff(old, new)
    assert {d.severity for d in changes} == {Severity.NOTE}
    assert [d.code for d in changes] == ["C201", "C301", "C301", "C301"]
    messages = "\n".join(d.message for d in changes)
    assert "in arg 0 'x' (u) of method org.qemu.Test1.Foo changed type to 's'" in messages
    assert "a C005 arg-type-changed change, allowed because org.qemu.Test1 is unstable" in messages
    assert "a C102 member-added change" in messages
    assert "property org.qemu.Test1.P was removed: a C002 member-removed change" in messages


def test_unstable_interface_removed_or_added_is_a_note() -> None:
    unstable = registry_xml('<method name="Foo"/>', stability="unstable")
    assert [d.code for d in diff(unstable, "<node/>")] == ["C301"]
    assert [d.code for d in diff("<node/>", unstable)] == ["C301"]


def test_promotion_to_stable_is_judged_by_the_old_promise() -> None:
    old = registry_xml('<method name="Foo"/>', stability="unstable")
    new = registry_xml("", stability="stable")
    assert [(d.code, d.severity) for d in diff(old, new)] == [("C301", Severity.NOTE)]


def test_stability_cannot_be_withdrawn() -> None:
    old = registry_xml('<method name="Foo"/>', stability="stable")
    new = registry_xml("", stability="unstable")
    changes = diff(old, new)
    assert [(d.code, d.severity) for d in changes] == [("C013", Severity.ERROR), ("C002", Severity.ERROR)]
    assert changes[0].location.line == 8  # the Stability annotation in NEW
    assert "stable interface org.qemu.Test1 is now marked unstable" in changes[0].message


# --- platform variants ---------------------------------------------------------------------------

VARIANTS = """\
<node>
  <interface name="org.example.Test1">
    <method name="Share">
<?if $(env.HOST_OS) == windows?>
      <arg name="data" type="ay"/>
<?else?>
      <arg name="fd" type="h"/>
<?endif?>
      <arg name="size" type="u"/>
    </method>
    <method name="Other"/>
  </interface>
</node>
"""


def test_variants_unchanged() -> None:
    assert diff(VARIANTS, VARIANTS) == []


def test_change_to_windows_branch_reports_only_windows() -> None:
    new = edit(('<arg name="data" type="ay"/>', '<arg name="data" type="s"/>'), base=VARIANTS)
    (change,) = diff(VARIANTS, new)
    assert (change.code, change.location.line) == ("C005", 5)
    assert change.message.startswith(
        "in arg 0 'data' (ay) of method org.example.Test1.Share changed type to 's' on Windows"
    )


def test_change_to_unix_branch_reports_only_unix() -> None:
    new = edit(('<arg name="fd" type="h"/>', '<arg name="fd" type="h"/><arg name="offset" type="t"/>'), base=VARIANTS)
    (change,) = diff(VARIANTS, new)
    assert (change.code, change.location.line) == ("C003", 7)
    assert " on Unix " in change.message


def test_change_common_to_all_platforms_is_reported_once() -> None:
    new = edit(('<arg name="size" type="u"/>', '<arg name="size" type="t"/>'), base=VARIANTS)
    (change,) = diff(VARIANTS, new)
    assert (change.code, change.location.line) == ("C005", 9)
    assert change.message.startswith(
        "in arg 1 'size' (u) of method org.example.Test1.Share changed type to 't' "
        "(in signature 'hu' became 'ht' on Unix; in signature 'ayu' became 'ayt' on Windows);"
    )
    removed = edit(('    <method name="Other"/>\n', ""), base=VARIANTS)
    assert [(d.code, d.location.line) for d in diff(VARIANTS, removed)] == [("C002", 11)]


def test_interface_absent_on_a_platform_in_both_versions_is_no_change() -> None:
    unix_only = VARIANTS.replace("<node>\n", "<node>\n<?if $(env.HOST_OS) != windows?>\n").replace(
        "  </interface>\n", "  </interface>\n<?endif?>\n"
    )
    assert diff(unix_only, unix_only) == []
    changed = edit(('<arg name="size" type="u"/>', '<arg name="size" type="t"/>'), base=unix_only)
    (change,) = diff(unix_only, changed)
    assert " on " not in change.message.split(";")[0]  # the interface exists only there


def test_interface_dropped_on_one_platform() -> None:
    unix_only = VARIANTS.replace("<node>\n", "<node>\n<?if $(env.HOST_OS) != windows?>\n").replace(
        "  </interface>\n", "  </interface>\n<?endif?>\n"
    )
    (change,) = diff(VARIANTS, unix_only)
    assert (change.code, change.location.path, change.location.line) == ("C001", "old.xml", 2)
    assert change.message.startswith("interface org.example.Test1 was removed on Windows;")
    (added,) = diff(unix_only, VARIANTS)
    assert (added.code, added.message) == ("C101", "interface org.example.Test1 was added on Windows")


def test_member_made_platform_specific() -> None:
    new = VARIANTS.replace(
        '    <method name="Other"/>\n', '<?if $(env.HOST_OS) == windows?>\n    <method name="Other"/>\n<?endif?>\n'
    )
    (change,) = diff(VARIANTS, new)
    assert change.code == "C002"
    assert change.message.startswith("method org.example.Test1.Other was removed on Unix;")


PROCESSING_INSTRUCTIONS = """\
<?xml version="1.0"?>
<?xml-stylesheet href="x.xsl"?>
<node>
  <?custom anything?>
  <interface name="org.example.Test1">
    <?ifdef CONFIG_OPENGL?><annotation name="org.example.GL" value="1"/><?endif?>
    <?if $(env.HOST_OS) == windows?><annotation name="org.freedesktop.DBus.Deprecated" value="true"/><?endif?>
    <method name="Share">
      <?if $(env.HOST_OS) == windows?>
      <arg name="data" type="ay"><?note inside an arg?></arg>
      <?elseif $(env.HOST_OS) == darwin?>
      <arg name="port" type="u"/>
      <?else?>
      <arg name="fd" type="h">
        <?if $(env.HOST_OS) != windows?><annotation name="org.example.Note" value="x"/><?endif?>
      </arg>
      <?endif?>
    </method>
    <property name="P" type="u" access="read"><?if weird?><?endif?></property>
  </interface>
</node>
"""


def test_processing_instructions_everywhere_never_crash() -> None:
    old = parse_string(PROCESSING_INSTRUCTIONS, "old.xml")
    assert old.node is not None
    assert diff_interfaces(old.interfaces, old.interfaces) == []
    new = parse_string(PROCESSING_INSTRUCTIONS.replace('type="ay"', 'type="s"'), "new.xml")
    assert [(d.code, d.location.line) for d in diff_interfaces(old.interfaces, new.interfaces)] == [("C005", 10)]
    unbalanced = parse_string(
        PROCESSING_INSTRUCTIONS.replace("<?endif?>\n      </arg>", "</arg>").replace("<?else?>", "<?else?><?else?>"),
        "bad.xml",
    )
    diff_interfaces(old.interfaces, unbalanced.interfaces)
    diff_interfaces(unbalanced.interfaces, old.interfaces)


# --- the registry itself ---------------------------------------------------------------------


def test_registry_against_itself_and_a_removal_in_it() -> None:
    registry = Registry.load([ROOT / "interfaces"])
    interfaces = registry.interfaces()
    assert len(interfaces) >= 19
    assert diff_interfaces(interfaces, interfaces) == []
    console = registry.interface("org.qemu.Display1.Console")
    assert registry.metadata(console.name).stable
    member = console.methods[0]
    without = replace(console, members=tuple(m for m in console.members if m is not member))
    broken = [without if i is console else i for i in interfaces]
    (error,) = diff_interfaces(interfaces, broken)
    assert error.code == "C002"
    assert f"method org.qemu.Display1.Console.{member.name} was removed" in error.message
    assert "org.qemu.Display2.Console" in error.message


def test_diff_module_does_not_import_sphinx() -> None:
    code = "import sys, sphinxext_qemudbus.compat.diff, sphinxext_qemudbus.compat.gitbaseline; sys.exit('sphinx' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --- the command line --------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "base": BASE,
        "same": BASE.replace("  <", "<"),
        "removed": CASES["method"][0],
        "added": edit(('<method name="Poke"/>', '<method name="Poke"/><method name="Prod"/>')),
        "broken": BASE.replace("</method>", "", 1),
    }
    result = {}
    for name, text in paths.items():
        folder = tmp_path / name
        folder.mkdir()
        result[name] = folder / "org.example.Test1.xml"
        result[name].write_text(text)
    return result


def test_cli_exit_codes(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", str(files["base"]), str(files["same"])]) == 0
    assert capsys.readouterr().out == ""
    assert main(["diff", str(files["base"]), str(files["added"])]) == 0
    assert "warning: method org.example.Test1.Prod was added [C102]" in capsys.readouterr().out
    assert main(["diff", str(files["base"]), str(files["removed"])]) == 1
    out, err = capsys.readouterr()
    assert out.startswith(f"{files['base']}:8: error: method org.example.Test1.Poke was removed;")
    assert out.rstrip().endswith("[C002]")
    assert "1 error" in err
    assert main(["diff", str(files["base"].parent), str(files["removed"].parent)]) == 1


def test_cli_summary_counts_in_words(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """One interface is "1 interface", one error "1 error": the summary reads as a sentence."""
    assert main(["diff", str(files["base"]), str(files["removed"])]) == 1
    err = capsys.readouterr().err
    assert f"qemu-dbus diff: 1 interface in {files['base']} against 1 in {files['removed']}: 1 error" in err
    assert "1 interfaces" not in err


def test_cli_json(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "--format", "json", str(files["base"]), str(files["removed"])]) == 1
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["code"], row["severity"], row["line"]) == ("C002", "error", 8)
    assert row["hint"] == "keep it (deprecate it) and put the new API in org.example.Test2"


@pytest.mark.parametrize(
    "argv",
    [
        ["diff"],
        ["diff", "only-one"],
        ["diff", "a", "b", "c"],
        ["diff", "missing-old", "missing-new"],
        ["diff", "--baseline", "HEAD", "a", "b"],
    ],
)
def test_cli_usage_errors(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert "qemu-dbus diff: error:" in capsys.readouterr().err


def test_cli_baseline_options_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["diff", "--baseline", "v1", "--baseline-file", "f"])
    assert exit_info.value.code == 2


def test_cli_broken_xml_exits_2_with_its_diagnostics(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["diff", str(files["base"]), str(files["broken"])]) == 2
    out, err = capsys.readouterr()
    assert "error:" in out
    assert "[X001]" in out
    assert "cannot compare" in err


def test_module_entry_point_never_prints_a_traceback(files: dict[str, Path]) -> None:
    for old, new, status in (("base", "broken", 2), ("broken", "base", 2), ("base", "removed", 1), ("base", "same", 0)):
        result = subprocess.run(
            [sys.executable, "-m", "sphinxext_qemudbus", "diff", str(files[old]), str(files[new])],
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        assert result.returncode == status, result.stderr
        assert "Traceback" not in result.stderr


# --- the git baseline --------------------------------------------------------------------------

STABLE = registry_xml('<method name="Foo"><arg name="x" type="u"/></method>\n<method name="Bar"/>')


@pytest.fixture
def git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Isolate git from the machine's configuration, and pin an identity for commits."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for variable in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(variable, raising=False)
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.org")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, git_env: None) -> Path:
    """A repository whose first commit has no interfaces/, and whose tag v1.0 has one stable interface."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "README").write_text("x\n")
    git(root, "add", "README")
    git(root, "commit", "-q", "-m", "start")
    (root / "interfaces").mkdir()
    (root / "interfaces" / "org.qemu.Test1.xml").write_text(STABLE)
    git(root, "add", "interfaces")
    git(root, "commit", "-q", "-m", "registry")
    git(root, "tag", "v1.0")
    return root


def break_interface(repo: Path) -> None:
    (repo / "interfaces" / "org.qemu.Test1.xml").write_text(STABLE.replace('<method name="Bar"/>', ""))


def test_baseline_unchanged_passes(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(repo)
    assert main(["diff", "--baseline", "v1.0", "interfaces"]) == 0
    assert "no changes" in capsys.readouterr().err


def test_baseline_broken_stable_interface_fails(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    break_interface(repo)
    monkeypatch.chdir(repo)
    assert main(["diff", "--baseline", "v1.0", "interfaces"]) == 1
    out = capsys.readouterr().out
    assert out == (
        "v1.0:interfaces/org.qemu.Test1.xml:11:1: error: method org.qemu.Test1.Bar was removed; this breaks clients "
        "of stable interface org.qemu.Test1: keep it (deprecate it) and put the new API in org.qemu.Test2 [C002]\n"
    )
    # Nothing in the work tree or the index moved.
    assert git(repo, "status", "--porcelain") == "M interfaces/org.qemu.Test1.xml"


def test_baseline_from_a_subfolder_with_a_path(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    break_interface(repo)
    (repo / "docs").mkdir()
    monkeypatch.chdir(repo / "docs")
    assert main(["diff", "--baseline", "v1.0", "../interfaces"]) == 1
    assert main(["diff", "--baseline", "v1.0", "../interfaces/org.qemu.Test1.xml"]) == 1


def test_baseline_without_interfaces_is_nothing_to_compare(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    break_interface(repo)
    monkeypatch.chdir(repo)
    assert main(["diff", "--baseline", "v1.0~1", "interfaces"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "has no interfaces; nothing to compare" in captured.err


def test_baseline_unknown_revision(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(repo)
    assert main(["diff", "--baseline", "v9.9", "interfaces"]) == 2
    err = capsys.readouterr().err
    assert "unknown revision 'v9.9'" in err
    assert "git fetch --tags" in err
    assert main(["diff", "--baseline=--output=x", "interfaces"]) == 2
    assert "'--output=x' is not a git revision" in capsys.readouterr().err


def test_baseline_outside_a_repository(
    tmp_path: Path, git_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain"
    (plain / "interfaces").mkdir(parents=True)
    monkeypatch.chdir(plain)
    assert main(["diff", "--baseline", "v1.0", "interfaces"]) == 2
    err = capsys.readouterr().err
    assert "is not inside a git work tree" in err
    assert "qemu-dbus diff OLD NEW" in err


def test_baseline_missing_from_a_shallow_clone(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    first = git(repo, "rev-parse", "v1.0~1")
    (repo / "README").write_text("y\n")
    git(repo, "commit", "-q", "-am", "later")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", "--no-tags", f"file://{repo}", str(clone))
    monkeypatch.chdir(clone)
    assert main(["diff", "--baseline", first, "interfaces"]) == 2
    err = capsys.readouterr().err
    assert "is not in this shallow clone" in err
    assert "git fetch --unshallow" in err


def test_baseline_file(repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    pin = repo / "compat-baseline"
    pin.write_text("# the last release\n\nv1.0   # moved on each release\n")
    break_interface(repo)
    monkeypatch.chdir(repo)
    assert main(["diff", "--baseline-file", str(pin), "interfaces"]) == 1
    assert "org.qemu.Test2" in capsys.readouterr().out
    pin.write_text(git(repo, "rev-parse", "v1.0") + "\n")
    assert main(["diff", "--baseline-file", str(pin), "interfaces"]) == 1
    for moving in ("HEAD", "main", "HEAD~0"):
        pin.write_text(f"{moving}\n")
        assert main(["diff", "--baseline-file", str(pin), "interfaces"]) == 2
        assert "moves with every commit" in capsys.readouterr().err


def test_baseline_compares_the_registry_in_use_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    """Without PATH, --baseline compares the registry 'qemu-dbus registry path' prints (in this
    editable install, the checkout's interfaces/) with the revision."""
    assert main(["diff", "--baseline", "HEAD"]) in (0, 1)  # 1 only while XML edits are uncommitted
    err = capsys.readouterr().err
    assert f"against {len(list(INTERFACES.glob('*.xml')))} in {INTERFACES}" in err


@pytest.mark.parametrize(
    ("text", "problem"), [("", "found nothing"), ("# only\n", "found nothing"), ("v1 v2\n", "found 2 words")]
)
def test_baseline_file_must_name_one_revision(tmp_path: Path, text: str, problem: str) -> None:
    pin = tmp_path / "pin"
    pin.write_text(text)
    with pytest.raises(BaselineError, match=problem):
        read_baseline_file(pin)
    with pytest.raises(BaselineError, match="cannot read"):
        read_baseline_file(tmp_path / "missing")


def test_project_baseline_file_pins_a_revision() -> None:
    revision = read_baseline_file(ROOT / "ci" / "compat-baseline")
    assert re.fullmatch(r"[0-9a-f]{40}|v[0-9][\w.-]*", revision), revision

"""Names as people type them: one lookup (`model.registry.NameIndex`) for every name a user
gives, on the command line and in a directive, with the same short names (``Console``) and the
same "did you mean" everywhere; the names it suggests come from the registry and are escaped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sphinxext_qemudbus.cli import main
from sphinxext_qemudbus.diagrams.sequence import parse_sequence
from sphinxext_qemudbus.model.registry import NameIndex, NameLookup, Registry, closest

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = Registry.load([ROOT / "interfaces"])

NAMES = NameIndex(
    [
        "org.qemu.Display1.Console",
        "org.qemu.Display1.Listener",
        "org.qemu.Display1.Listener.Unix.Map",
        "org.qemu.Display1.Listener.Win32.Map",
    ],
    "interface",
)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        (
            "org.qemu.Display1.Console",
            NameLookup("org.qemu.Display1.Console", "interface", found="org.qemu.Display1.Console"),
        ),
        ("Console", NameLookup("Console", "interface", found="org.qemu.Display1.Console")),
        ("Display1.Console", NameLookup("Display1.Console", "interface", found="org.qemu.Display1.Console")),
        # The full name of one interface is also the start of others: it means itself.
        (
            "org.qemu.Display1.Listener",
            NameLookup("org.qemu.Display1.Listener", "interface", found="org.qemu.Display1.Listener"),
        ),
        ("Listener", NameLookup("Listener", "interface", found="org.qemu.Display1.Listener")),
        ("Unix.Map", NameLookup("Unix.Map", "interface", found="org.qemu.Display1.Listener.Unix.Map")),
        (
            "Map",
            NameLookup(
                "Map",
                "interface",
                ambiguous=("org.qemu.Display1.Listener.Unix.Map", "org.qemu.Display1.Listener.Win32.Map"),
            ),
        ),
        ("Consol", NameLookup("Consol", "interface", suggestions=("org.qemu.Display1.Console",))),
        (
            "org.qemu.Display1.Consol",
            NameLookup("org.qemu.Display1.Consol", "interface", suggestions=("org.qemu.Display1.Console",)),
        ),
        ("console", NameLookup("console", "interface", suggestions=("org.qemu.Display1.Console",))),
        ("Frobnicator", NameLookup("Frobnicator", "interface")),
        # Only whole elements count: "sole" is not the end of "Console", only like it.
        ("sole", NameLookup("sole", "interface", suggestions=("org.qemu.Display1.Console",))),
    ],
)
def test_one_lookup_for_full_and_short_names(typed: str, expected: NameLookup) -> None:
    assert NAMES.lookup(typed) == expected


def test_the_problem_says_what_is_closest() -> None:
    assert NAMES.lookup("Console").problem() is None
    assert (
        NAMES.lookup("Consol").problem()
        == "no interface 'Consol' in the registry; did you mean org.qemu.Display1.Console?"
    )
    assert NAMES.lookup("Map").problem() == (
        "'Map' is ambiguous: org.qemu.Display1.Listener.Unix.Map, org.qemu.Display1.Listener.Win32.Map"
    )
    assert NAMES.lookup("Frobnicator").problem("the registry (x/)") == "no interface 'Frobnicator' in the registry (x/)"


def test_closest_ignores_case_and_keeps_the_names_as_written() -> None:
    assert closest("LOCKDWN", ["default", "lockdown"]) == ("lockdown",)
    assert closest("zzz", ["default", "lockdown"]) == ()


def test_the_registry_looks_interfaces_up_by_short_name() -> None:
    assert REGISTRY.lookup("Console").found == "org.qemu.Display1.Console"
    assert REGISTRY.lookup("VMState1").found == "org.qemu.VMState1"
    assert REGISTRY.lookup("Keybord").suggestions[0] == "org.qemu.Display1.Keyboard"


# --- the command line ------------------------------------------------------------------------


def test_registry_show_suggests_through_the_same_lookup(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["registry", "show", "org.qemu.Display1.Consol"]) == 2
    assert capsys.readouterr().err == (
        "qemu-dbus registry: error: no interface 'org.qemu.Display1.Consol' in the registry; "
        "did you mean org.qemu.Display1.Console?\n"
    )
    assert main(["registry", "show", "Frobnicator"]) == 2
    assert "'qemu-dbus registry list' lists them" in capsys.readouterr().err


def test_a_suggested_name_from_a_hostile_registry_is_escaped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    hostile = "org.qemu.Evil1\u202e\u009b2J"
    (tmp_path / "evil.xml").write_text(f'<node><interface name="{hostile}"/></node>')
    assert main(["registry", "show", "org.qemu.Evil1", "--registry", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "did you mean org.qemu.Evil1\\u202e\\x9b2J?" in err
    assert "\u202e" not in err
    assert "\u009b" not in err


def test_policy_suggests_the_closest_built_in_deployment(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "--scenario", "many-uids", "--deployment", "lockdwn"]) == 2
    assert "no built-in deployment 'lockdwn'; did you mean lockdown?" in capsys.readouterr().err


# --- sequences -----------------------------------------------------------------------------


def test_a_sequence_takes_short_member_names_and_suggests_close_ones() -> None:
    lines = [
        "participant client client the display client",
        "participant qemu qemu QEMU",
        "participant bus bus the bus daemon",
        "client -> qemu: Console.RegisterListener",
        "client -> bus: Hello",
        "client -> qemu: Console.RegisterListner",
        "client -> qemu: Press",
        "client -> qemuu: Console.SetUIInfo",
        "participant other clent the other client",
    ]
    diagram, problems = parse_sequence(lines, REGISTRY, "t")
    targets = [span.target for arrow in diagram.arrows for span in arrow.label if span.target]
    assert targets == ["org.qemu.Display1.Console.RegisterListener"]
    assert len(diagram.arrows) == 2  # Hello, by its short name, too
    assert [(p.code, p.location.line, p.message) for p in problems] == [
        (
            "R605",
            6,
            "Console.RegisterListner is not a method, signal or property of a registry interface; "
            "did you mean org.qemu.Display1.Console.RegisterListener?",
        ),
        (
            "R605",
            7,
            "'Press' is ambiguous: org.qemu.Display1.Keyboard.Press, org.qemu.Display1.Mouse.Press",
        ),
        ("R607", 8, "no participant 'qemuu'; did you mean 'qemu'? (or declare it with 'participant qemuu ROLE label')"),
        (
            "R609",
            9,
            "participant 'other' has the unknown role 'clent'; did you mean 'client'? "
            "(roles: qemu, helper, client, manager, bus)",
        ),
    ]


# --- directives ----------------------------------------------------------------------------

PAGE = """\
Names
=====

.. dbus-interface:: Clipboard

.. dbus-interface:: org.qemu.Display1.Consol

.. dbus-interface:: Map

.. dbus-sequence:: Short names

   participant client client the display client
   participant qemu qemu QEMU
   client -> qemu: Keyboard.Press
   client -> qemu: Keyboard.Pres
"""

MYST = """\
# In Markdown

```{dbus-interface} Display1.Keyboard
```
"""


def test_directives_take_the_same_short_names_and_say_what_is_closest(
    make_app: Callable[..., Any], copied_root: Callable[[str], Any], built: Callable[[Any], Any]
) -> None:
    srcdir = copied_root("standalone")
    (Path(srcdir) / "names.rst").write_text(PAGE)
    (Path(srcdir) / "input.md").write_text(MYST)
    index = Path(srcdir) / "index.rst"
    index.write_text(index.read_text().replace("   input\n", "   input\n   names\n"))
    app = make_app("html", srcdir=srcdir, freshenv=True)
    app.build()
    result = built(app)
    registry = Path(REGISTRY.files[0].path).parent
    assert result.warnings() == [
        f"SRC/names.rst:6: WARNING: no interface 'org.qemu.Display1.Consol' in the registry ({registry}); "
        "did you mean org.qemu.Display1.Console? [dbus.missing-interface]",
        "SRC/names.rst:8: WARNING: 'Map' is ambiguous: org.qemu.Display1.Listener.Unix.Map, "
        "org.qemu.Display1.Listener.Win32.Map [dbus.missing-interface]",
        "SRC/names.rst:15: WARNING: Keyboard.Pres is not a method, signal or property of a registry interface; "
        "did you mean org.qemu.Display1.Keyboard.Press? [dbus.R605]",
    ]
    page = result.html("names")
    assert 'id="org.qemu.Display1.Clipboard.Register"' in page
    # The sequence's short name links to the entry the MyST page renders from its short name.
    assert re.search(
        r'<a href="input\.html#[^"]*org\.qemu\.Display1\.Keyboard\.Press"><tspan>Keyboard\.Press\(\)', page
    )
    assert re.search(r'id="[^"]*org\.qemu\.Display1\.Keyboard\.Press"', result.html("input"))

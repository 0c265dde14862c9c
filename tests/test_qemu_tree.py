"""QEMU's own D-Bus pages, built the way QEMU's build runs Sphinx once it switches to this extension.

``tests/qemu-tree/`` holds QEMU's files verbatim (``PROVENANCE.md`` gives the commits): the three
pages, the two XML files, and the configuration files the switch edits.  Each test copies the tree,
applies the diffs that ``docs/qemu-switch.rst`` shows QEMU's maintainers, and runs ``sphinx-build``
with the interpreter running the tests (so ``make check`` builds them on Python 3.9 with Sphinx 5.3,
QEMU's floor, and on the newest Sphinx).

QEMU's ``docs/conf.py`` loads QEMU's other extensions and its theme, so it is not run here: the
build uses its D-Bus settings (`BUILD_CONF`), and a test checks that they are exactly the lines the
switched ``conf.py`` has.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import read_inventory
from .qemu_switch import CONFIGURATION, SWITCH, TREE, switched_copy

PAGES = ("dbus", "dbus-display", "dbus-vmstate")

#: QEMU's docs/conf.py, reduced to what the D-Bus pages use, as docs/qemu-switch/conf.py.diff
#: leaves it (`test_the_build_runs_the_switched_conf` holds the two together).
BUILD_CONF = (TREE / "switched-conf.py").read_text()

#: Every id QEMU's own extension (docs/sphinx/dbusdoc.py) gave these pages, the theme's aside,
#: built on Sphinx 5.3.0: links into QEMU's published pages point at these.
QEMU_ANCHORS = {
    "dbus": "d-bus introduction security dbus-daemon-policy guidelines qemu-interfaces",
    "dbus-vmstate": """d-bus-vmstate org.qemu.VMState1-section org.qemu.VMState1 org.qemu.VMState1.Load
        org.qemu.VMState1.Save org.qemu.VMState1.Id""",
    "dbus-display": """d-bus-display
        org.qemu.Display1.VM-section org.qemu.Display1.VM org.qemu.Display1.VM.Name
        org.qemu.Display1.VM.UUID org.qemu.Display1.VM.ConsoleIDs org.qemu.Display1.VM.Interfaces
        org.qemu.Display1.Console-section org.qemu.Display1.Console
        org.qemu.Display1.Console.RegisterListener org.qemu.Display1.Console.SetUIInfo
        org.qemu.Display1.Console.Label org.qemu.Display1.Console.Head org.qemu.Display1.Console.Type
        org.qemu.Display1.Console.Width org.qemu.Display1.Console.Height
        org.qemu.Display1.Console.DeviceAddress org.qemu.Display1.Console.Interfaces
        org.qemu.Display1.Keyboard-section org.qemu.Display1.Keyboard org.qemu.Display1.Keyboard.Press
        org.qemu.Display1.Keyboard.Release org.qemu.Display1.Keyboard.Modifiers
        org.qemu.Display1.Mouse-section org.qemu.Display1.Mouse dbus-button-values
        org.qemu.Display1.Mouse.Press org.qemu.Display1.Mouse.Release
        org.qemu.Display1.Mouse.SetAbsPosition org.qemu.Display1.Mouse.RelMotion
        org.qemu.Display1.Mouse.IsAbsolute
        org.qemu.Display1.MultiTouch-section org.qemu.Display1.MultiTouch dbus-kind-values
        org.qemu.Display1.MultiTouch.SendEvent org.qemu.Display1.MultiTouch.MaxSlots
        org.qemu.Display1.Listener-section org.qemu.Display1.Listener org.qemu.Display1.Listener.Scanout
        org.qemu.Display1.Listener.Update org.qemu.Display1.Listener.ScanoutDMABUF
        org.qemu.Display1.Listener.UpdateDMABUF org.qemu.Display1.Listener.Disable
        org.qemu.Display1.Listener.MouseSet org.qemu.Display1.Listener.CursorDefine
        org.qemu.Display1.Listener.Interfaces
        org.qemu.Display1.Listener.Unix.Map-section org.qemu.Display1.Listener.Unix.Map
        org.qemu.Display1.Listener.Unix.Map.ScanoutMap org.qemu.Display1.Listener.Unix.Map.UpdateMap
        org.qemu.Display1.Listener.Win32.Map-section org.qemu.Display1.Listener.Win32.Map
        org.qemu.Display1.Listener.Win32.Map.ScanoutMap org.qemu.Display1.Listener.Win32.Map.UpdateMap
        org.qemu.Display1.Listener.Win32.D3d11-section org.qemu.Display1.Listener.Win32.D3d11
        org.qemu.Display1.Listener.Win32.D3d11.ScanoutTexture2d
        org.qemu.Display1.Listener.Win32.D3d11.UpdateTexture2d
        org.qemu.Display1.Listener.Unix.ScanoutDMABUF2-section org.qemu.Display1.Listener.Unix.ScanoutDMABUF2
        org.qemu.Display1.Listener.Unix.ScanoutDMABUF2.ScanoutDMABUF2
        org.qemu.Display1.Clipboard-section org.qemu.Display1.Clipboard dbus-clipboard-selection
        dbus-clipboard-serial org.qemu.Display1.Clipboard.Register org.qemu.Display1.Clipboard.Unregister
        org.qemu.Display1.Clipboard.Grab org.qemu.Display1.Clipboard.Release
        org.qemu.Display1.Clipboard.Request org.qemu.Display1.Clipboard.Interfaces
        org.qemu.Display1.Audio-section org.qemu.Display1.Audio org.qemu.Display1.Audio.RegisterOutListener
        org.qemu.Display1.Audio.RegisterInListener org.qemu.Display1.Audio.NSamples
        org.qemu.Display1.Audio.Interfaces
        org.qemu.Display1.AudioOutListener-section org.qemu.Display1.AudioOutListener
        org.qemu.Display1.AudioOutListener.Init org.qemu.Display1.AudioOutListener.Fini
        org.qemu.Display1.AudioOutListener.SetEnabled org.qemu.Display1.AudioOutListener.SetVolume
        org.qemu.Display1.AudioOutListener.Write org.qemu.Display1.AudioOutListener.Interfaces
        org.qemu.Display1.AudioInListener-section org.qemu.Display1.AudioInListener
        org.qemu.Display1.AudioInListener.Init org.qemu.Display1.AudioInListener.Fini
        org.qemu.Display1.AudioInListener.SetEnabled org.qemu.Display1.AudioInListener.SetVolume
        org.qemu.Display1.AudioInListener.Read org.qemu.Display1.AudioInListener.Interfaces
        org.qemu.Display1.Chardev-section org.qemu.Display1.Chardev dbus-chardev-fqdn
        org.qemu.Display1.Chardev.Register org.qemu.Display1.Chardev.SendBreak
        org.qemu.Display1.Chardev.Name org.qemu.Display1.Chardev.FEOpened org.qemu.Display1.Chardev.Echo
        org.qemu.Display1.Chardev.Owner org.qemu.Display1.Chardev.Interfaces""",
}
DANGLING = "reference to method 'org.qemu.Display1.Console.Register' does not resolve [dbus.R601]"


class QemuTree:
    """A copy of QEMU's tree, switched by applying ``docs/qemu-switch/*.diff`` (the configuration's,
    or the given ones), with the D-Bus settings of the switched ``conf.py``."""

    def __init__(self, where: Path, diffs: tuple[str, ...] = CONFIGURATION):
        self.root = where / "qemu"
        self.docs = switched_copy(self.root, diffs)
        self.stderr = ""

    def build(self, builder: str = "html", *options: str) -> tuple[int, list[str]]:
        """``sphinx-build -b BUILDER docs docs/_build/BUILDER``: the exit status and the warnings
        (this tree's path shown as ``QEMU/``)."""
        out = self.docs / "_build" / builder
        result = subprocess.run(
            [sys.executable, "-m", "sphinx", "--no-color", "-b", builder, *options, str(self.docs), str(out)],
            capture_output=True,
            text=True,
            check=False,
        )
        text = self.stderr = result.stderr.replace(str(self.root) + "/", "QEMU/")
        return result.returncode, [line for line in text.splitlines() if "WARNING" in line or "ERROR" in line]

    def html(self, page: str) -> str:
        return (self.docs / "_build" / "html" / "interop" / f"{page}.html").read_text(encoding="utf-8")


def ids(html: str) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', html))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[QemuTree, int, list[str]]:
    tree = QemuTree(tmp_path_factory.mktemp("html"))
    status, warnings = tree.build("html")
    return tree, status, warnings


def test_the_pages_and_the_xml_are_qemus_own() -> None:
    # The switch changes configuration and one line of XML (its own diff), never a page.
    for page in PAGES:
        assert (TREE / "docs" / "interop" / f"{page}.rst").is_file()
    edited = {
        line[6:].strip()
        for diff in SWITCH.glob("*.diff")
        for line in diff.read_text().splitlines()
        if line.startswith("+++ b/")
    }
    assert edited == {"docs/conf.py", "pythondeps.toml", "docs/requirements.txt", "ui/dbus-display1.xml"}


def test_the_pages_build_with_exactly_the_one_real_warning(built: tuple[QemuTree, int, list[str]]) -> None:
    _, status, warnings = built
    assert status == 0
    assert len(warnings) == 1
    assert warnings[0].startswith("QEMU/ui/dbus-display1.xml:")
    assert warnings[0].endswith(DANGLING)


@pytest.mark.xfail(
    reason="issue 18 item 3: Sphinx locates findings in a doc comment at the paragraph's first line (319)",
    strict=True,
)
def test_the_warning_is_at_the_reference(built: tuple[QemuTree, int, list[str]]) -> None:
    # Where `qemu-dbus check` reports it too: the line of the role, not of its paragraph.
    _, _, warnings = built
    assert warnings == [f"QEMU/ui/dbus-display1.xml:321: WARNING: {DANGLING}"]


def test_every_anchor_of_qemus_extension_still_exists(built: tuple[QemuTree, int, list[str]]) -> None:
    tree, _, _ = built
    for page, anchors in QEMU_ANCHORS.items():
        missing = set(anchors.split()) - ids(tree.html(page))
        assert not missing, f"{page}: {sorted(missing)}"


def _link_targets(html: str, text: str) -> list[str]:
    """The fragments of the internal links whose text is ``text``."""
    found = []
    for match in re.finditer(r'<a class="reference internal" href="#([^"]*)"[^>]*>(.*?)</a>', html, re.DOTALL):
        if re.sub(r"<[^>]+>", "", match.group(2)).strip() == text:
            found.append(match.group(1))
    return found


def _element_with_id(html: str, anchor: str) -> str:
    """The start tag that carries ``id=anchor``, with the ids of its element."""
    match = re.search(rf'<[^>]*\bid="{re.escape(anchor)}"[^>]*>', html)
    assert match, anchor
    return match.group(0)


def test_links_that_qemus_extension_sent_to_the_wrong_member_go_to_the_right_one(
    built: tuple[QemuTree, int, list[str]],
) -> None:
    # QEMU's extension keys members by their bare name, so "Register" in Clipboard's text went to
    # Chardev.Register, and Console.Register (which does not exist) to Chardev.Register as well.
    tree, _, _ = built
    html = tree.html("dbus-display")
    (register,) = _link_targets(html, "Register")
    assert "org.qemu.Display1.Clipboard.Register" in _element_with_id(html, register)
    for text, member in [
        ("IsAbsolute", "org.qemu.Display1.Mouse.IsAbsolute"),
        ("Type", "org.qemu.Display1.Console.Type"),
        ("Scanout", "org.qemu.Display1.Listener.Scanout"),
        ("RegisterOutListener", "org.qemu.Display1.Audio.RegisterOutListener"),
        ("Name", "org.qemu.Display1.Chardev.Name"),
    ]:
        targets = _link_targets(html, text)
        assert targets, text
        assert all(member in _element_with_id(html, target) for target in targets), (text, targets)


def test_the_inventory_reaches_the_members_qemus_collapsed(built: tuple[QemuTree, int, list[str]]) -> None:
    # QEMU's objects.inv has one "Press", one "Interfaces", one "ScanoutMap", one "Register": the
    # last of each; Keyboard.Press, Console.Interfaces, Listener.Unix.Map.ScanoutMap and
    # Clipboard.Register could not be linked to from another project.
    tree, _, _ = built
    inventory = {(kind, name): uri for name, kind, _, uri in read_inventory(tree.docs / "_build/html/objects.inv")}
    html = tree.html("dbus-display")
    for kind, name in [
        ("dbus:method", "org.qemu.Display1.Keyboard.Press"),
        ("dbus:property", "org.qemu.Display1.Console.Interfaces"),
        ("dbus:method", "org.qemu.Display1.Listener.Unix.Map.ScanoutMap"),
        ("dbus:method", "org.qemu.Display1.Clipboard.Register"),
    ]:
        page, _, anchor = inventory[kind, name].partition("#")
        assert page == "interop/dbus-display.html"
        assert name in _element_with_id(html, anchor)
    old = {(kind, name): uri for name, kind, _, uri in read_inventory(TREE / "qemu-dbusdoc-objects.inv")}
    assert old["dbus:method", "Press"].endswith("#org.qemu.Display1.Mouse.Press")
    assert ("dbus:method", "org.qemu.Display1.Keyboard.Press") not in old


def test_the_build_runs_the_switched_conf() -> None:
    # Every line the conf.py diff adds is in the configuration the build runs; none it removes is.
    diff = (SWITCH / "conf.py.diff").read_text().splitlines()
    added = [line[1:] for line in diff if line.startswith("+") and not line.startswith("+++")]
    removed = [line[1:] for line in diff if line.startswith("-") and not line.startswith("---")]
    assert added
    assert removed
    for line in added:
        assert line in BUILD_CONF.splitlines(), line
    for line in removed:
        assert line not in BUILD_CONF.splitlines(), line
    # ... and QEMU's own D-Bus settings are kept as QEMU has them.
    conf = (TREE / "docs" / "conf.py").read_text().splitlines()
    for setting in (
        "default_role = 'any'",
        "dbusdoc_srctree = os.path.join(qemu_docdir, '..')",
        'dbus_index_common_prefix = ["org.qemu."]',
    ):
        assert setting in conf, setting
        assert setting in BUILD_CONF.splitlines(), setting


def test_the_dependency_files_name_the_package(tmp_path: Path) -> None:
    tree = QemuTree(tmp_path)
    pythondeps = (tree.root / "pythondeps.toml").read_text()
    requirements = (tree.root / "docs" / "requirements.txt").read_text()
    version = re.search(r'sphinxext-qemudbus = \{ accepted = "([^"]+)", installed = "([^"]+)" \}', pythondeps)
    assert version, pythondeps
    from sphinxext_qemudbus import __version__

    assert version.group(2) == __version__
    assert f"sphinxext-qemudbus=={__version__}" in requirements.splitlines()
    assert 'sphinx = { accepted = ">=5.3", installed = "5.3.0"' in pythondeps


def test_with_the_xml_fix_a_warnings_as_errors_build_passes(tmp_path: Path) -> None:
    tree = QemuTree(tmp_path, (*CONFIGURATION, "dbus-display1.xml"))
    status, warnings = tree.build("html", "-W", "-q")
    assert (status, warnings) == (0, [])
    html = tree.html("dbus-display")
    (target,) = _link_targets(html, "RegisterListener")
    assert "org.qemu.Display1.Console.RegisterListener" in _element_with_id(html, target)


def test_without_it_a_warnings_as_errors_build_stops(built: tuple[QemuTree, int, list[str]], tmp_path: Path) -> None:
    tree = QemuTree(tmp_path)
    status, _ = tree.build("html", "-W", "-q")
    assert status != 0
    # Sphinx 5.3 raises the warning as "PATH:LINE:MESSAGE", newer ones keep "WARNING:" in it.
    assert any(DANGLING in line for line in tree.stderr.splitlines())


def test_editing_the_xml_rebuilds_its_page(tmp_path: Path) -> None:
    # What QEMU's depfile extension reads: the XML is a dependency of the page that renders it.
    tree = QemuTree(tmp_path)
    tree.build("html", "-q")
    xml = tree.root / "ui" / "dbus-display1.xml"
    xml.write_text(xml.read_text().replace("The name of the VM.", "The name of this VM."))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "--no-color",
            "-b",
            "html",
            str(tree.docs),
            str(tree.docs / "_build" / "html"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "0 added, 1 changed, 0 removed" in result.stdout
    assert "The name of this VM." in tree.html("dbus-display")


def _man_lines(tree: QemuTree) -> list[str]:
    status, _ = tree.build("man", "-q")
    assert status == 0
    return (tree.docs / "_build" / "man" / "qemu-dbus-display.7").read_text().splitlines()


def test_man_pages_give_each_platform_signature_its_own_line(tmp_path: Path) -> None:
    lines = _man_lines(QemuTree(tmp_path))
    signatures = [" ".join(line.split()) for line in lines if "RegisterListener(" in line]
    assert any("Unix" in line and "(h listener)" in line for line in signatures), signatures
    assert any("Windows" in line and "(ay listener)" in line for line in signatures), signatures
    assert not any("(h listener)" in line and "(ay listener)" in line for line in signatures), signatures


def test_text_output_is_readable(tmp_path: Path) -> None:
    tree = QemuTree(tmp_path)
    status, _ = tree.build("text", "-q")
    assert status == 0
    text = (tree.docs / "_build" / "text" / "interop" / "dbus-display.txt").read_text()
    assert (
        "   Unix method RegisterListener(h listener) -> ()\n   Windows method RegisterListener(ay listener) -> ()"
        in text
    )
    assert "<" not in text.split("org.qemu.Display1.VM interface", 1)[1].split("method", 1)[0]


# --- another project linking to QEMU's published pages (intersphinx) ---------------------------

CONSUMER_LINKS = [
    "org.qemu.Display1.Console",
    "org.qemu.Display1.Keyboard.Press",
    "org.qemu.Display1.Mouse.Press",
    "org.qemu.Display1.Console.Interfaces",
    "org.qemu.Display1.Listener.Unix.Map.ScanoutMap",
    "org.qemu.Display1.Clipboard.Register",
    "org.qemu.VMState1.Id",
    "org.qemu.VMState1.Save",
    "org.qemu.Display1.Keyboard.Modifiers",
]
QEMU_DOCS = "https://www.qemu.org/docs/master/"
MEMBER_TYPES = ("dbus:method", "dbus:signal", "dbus:property")


def _consumer_links(tmp_path: Path, inventory: Path) -> tuple[list[str], list[str]]:
    """Build tests/roots/test-qemu-consumer against ``inventory``: its warnings and the URLs of
    its links, in the page's order."""
    project = tmp_path / "consumer"
    shutil.copytree(Path(__file__).parent / "roots" / "test-qemu-consumer", project)
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "--no-color", "-b", "html", "-q", "-n", str(project), str(project / "_build")],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "QEMUDBUS_TEST_INVENTORY": str(inventory)},
    )
    assert result.returncode == 0, result.stderr
    html = (project / "_build" / "index.html").read_text(encoding="utf-8")
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    return warnings, re.findall(r'<a class="reference external" href="([^"]*)"', html)


def test_a_project_links_to_qemus_pages_through_qemus_own_inventory(tmp_path: Path) -> None:
    # The inventory QEMU publishes today, written by its own extension: members under their bare
    # names (one entry for the two Press), properties as dbus:member.  Full names still reach
    # each member on QEMU's pages, at the anchors QEMU's extension gave them.
    warnings, links = _consumer_links(tmp_path, TREE / "qemu-dbusdoc-objects.inv")
    assert warnings == []
    pages = {"VMState1": "interop/dbus-vmstate.html", "Display1": "interop/dbus-display.html"}
    expected = [f"{QEMU_DOCS}{pages[name.split('.')[2]]}#{name}" for name in CONSUMER_LINKS]
    assert links == expected
    for name in CONSUMER_LINKS:
        page = "dbus-vmstate" if "VMState1" in name else "dbus-display"
        assert name in QEMU_ANCHORS[page].split()


def test_a_project_links_to_qemus_pages_through_the_new_inventory(
    built: tuple[QemuTree, int, list[str]], tmp_path: Path
) -> None:
    tree, _, _ = built
    warnings, links = _consumer_links(tmp_path, tree.docs / "_build" / "html" / "objects.inv")
    assert warnings == []
    assert len(links) == len(CONSUMER_LINKS)
    for name, link in zip(CONSUMER_LINKS, links):
        page, _, anchor = link[len(QEMU_DOCS) :].partition("#")
        html = (tree.docs / "_build" / "html" / page).read_text(encoding="utf-8")
        assert name in _element_with_id(html, anchor), (name, link)


def test_the_new_inventory_keeps_qemus_unambiguous_short_names(built: tuple[QemuTree, int, list[str]]) -> None:
    # For projects that still use QEMU's extension, whose roles look names up as QEMU's own
    # inventory wrote them: every member name that only one interface has keeps its bare entry
    # (hidden from search), and no ambiguous one does, so none of them can lead to the wrong
    # member as "Press" did.
    tree, _, _ = built
    rows = read_inventory(tree.docs / "_build" / "html" / "objects.inv")
    members = [name for name, kind, priority, _ in rows if priority >= 0 and kind in MEMBER_TYPES]
    counts: dict[str, int] = {}
    for name in members:
        counts[name.rpartition(".")[2]] = counts.get(name.rpartition(".")[2], 0) + 1
    short = {
        name: (kind, uri, priority)
        for name, kind, priority, uri in rows
        if kind.startswith("dbus:") and "." not in name
    }
    assert set(short) == {name for name, count in counts.items() if count == 1}
    assert all(priority == -1 for _, _, priority in short.values())
    kind, uri, _ = short["Modifiers"]
    assert kind == "dbus:property"
    assert uri == next(u for n, _, p, u in rows if n == "org.qemu.Display1.Keyboard.Modifiers" and p >= 0)
    assert "Press" not in short
    assert "Interfaces" not in short

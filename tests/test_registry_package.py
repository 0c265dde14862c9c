"""The registry as an installed package: which registry is used, ``qemu-dbus registry``, and a
project of its own that uses the extension with no registry setting (real Sphinx builds).

The wheel itself is checked as a user gets it by ``make package`` (ci/check_package.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sphinxext_qemudbus.cli import main
from sphinxext_qemudbus.model.registry import (
    Registry,
    RegistryLocationError,
    packaged_registry,
    read_registry_file,
    registry_folder,
)
from sphinxext_qemudbus.model.releases import parse_release

ROOT = Path(__file__).resolve().parent.parent
INTERFACES = ROOT / "interfaces"


# --- which registry ---------------------------------------------------------------------------


def test_the_packaged_registry_is_the_repositorys_interfaces_folder() -> None:
    """An editable install (what the tests run on) finds the checkout's files: one source."""
    assert Path(packaged_registry()) == INTERFACES


def test_pyproject_lists_every_package_folder() -> None:
    """pyproject.toml lists the packages (it maps one onto interfaces/, which find cannot): a new
    stage folder missing from the list would be left out of the wheel.  Every folder counts, not
    only those with an ``__init__.py``: Python imports any folder (a namespace package), and
    setuptools warns at every build (a 40-line ``BuildBackendWarning``) about a folder of package
    data, such as ``security/deployments``, that the list leaves out."""
    from sphinxext_qemudbus._compat import tomllib

    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(settings["packages"])
    package = ROOT / "sphinxext_qemudbus"
    folders = {
        ".".join(("sphinxext_qemudbus", *path.relative_to(package).parts))
        for path in [package, *package.rglob("*")]
        if path.is_dir() and path.name != "__pycache__"
    }
    assert folders <= listed, sorted(folders - listed)
    # Each data folder declares its files, so that the wheel carries them.
    data = settings["package-data"]
    for folder in folders:
        path = package.joinpath(*folder.split(".")[1:])
        if not (path / "__init__.py").exists():
            assert folder in data, f"{folder} holds data but declares no package-data"


def test_an_explicit_registry_wins_and_the_packaged_one_is_the_default(tmp_path: Path) -> None:
    (tmp_path / "org.qemu.Test1.xml").write_text('<node><interface name="org.qemu.Test1"/></node>')
    assert registry_folder(tmp_path, "--registry") == str(tmp_path)
    assert registry_folder(None, "--registry") == packaged_registry()
    assert registry_folder("", "dbus_registry_path") == packaged_registry()


@pytest.mark.parametrize(("make", "problem"), [(False, "no such folder"), (True, "holds no interface file")])
def test_an_unusable_registry_names_the_setting(tmp_path: Path, make: bool, problem: str) -> None:
    folder = tmp_path / "registry"
    if make:
        folder.mkdir()
        (folder / "README").write_text("not XML")
    with pytest.raises(RegistryLocationError, match=rf"^dbus_registry_path {re.escape(str(folder))}: .*{problem}"):
        registry_folder(folder, "dbus_registry_path")


def test_registry_toml_pages_are_checked(tmp_path: Path) -> None:
    (tmp_path / "registry.toml").write_text(
        'qemu-release = "9.0"\n[pages]\n"org.qemu.Good1" = "interop/good"\n"org.qemu.Bad1" = "javascript:x()"\n'
    )
    settings = read_registry_file(str(tmp_path))
    assert settings.release == "9.0"
    assert dict(settings.pages) == {"org.qemu.Good1": "interop/good"}
    assert [d.code for d in settings.problems] == ["M303"]


def test_the_pages_of_registry_toml_are_where_the_docs_render_each_family() -> None:
    """registry.toml says where the published documentation renders each family; docs/ is that
    documentation, so every interface must be rendered on the page its family names."""
    registry = Registry.load([INTERFACES])
    for entry in registry:
        page = registry.page(entry.interface.name)
        assert page is not None, f"{entry.interface.name} has no page in registry.toml"
        text = (ROOT / "docs" / f"{page}.rst").read_text(encoding="utf-8")
        assert f".. dbus-interface:: {entry.interface.name}\n" in text, (entry.interface.name, page)


def test_the_declared_release_matches_sources_md() -> None:
    """registry.toml (machine-readable) and interfaces/SOURCES.md (the evidence) name one release."""
    release = Registry.load([INTERFACES]).release
    sources = (INTERFACES / "SOURCES.md").read_text(encoding="utf-8")
    declared = re.findall(r"^Registry release: QEMU \*\*([0-9.]+)\*\*", sources, re.MULTILINE)
    assert declared == [release]


def test_no_since_is_newer_than_the_release_the_registry_describes() -> None:
    registry = Registry.load([INTERFACES])
    newest = parse_release(registry.release or "")
    assert newest is not None
    for entry in registry:
        for item in (entry.interface, *entry.interface.members):
            since = parse_release(item.since or "")
            assert since is not None, (entry.interface.name, item.name)
            assert since <= newest, (entry.interface.name, item.name, item.since)


# --- qemu-dbus registry ----------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_registry_path_prints_the_folder_in_use(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run(capsys, "registry", "path") == (0, f"{INTERFACES}\n", "")
    status, _, err = run(capsys, "registry", "path", "--registry", str(tmp_path / "nope"))
    assert status == 2
    assert err == f"qemu-dbus registry: error: --registry {tmp_path / 'nope'}: no such folder\n"


def test_registry_list_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "registry", "list")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["INTERFACE", "SINCE", "STABILITY", "REACHED"]
    vmstate = next(line for line in lines if line.startswith("org.qemu.VMState1 "))
    assert vmstate.split()[1:3] == ["5.0", "stable"]
    assert vmstate.endswith("bus name org.qemu.VMState1 at /org/qemu/VMState1")
    assert any(line.startswith("org.qemu.Display1.Listener.Win32.Map (Windows only) ") for line in lines)
    status, out, _ = run(capsys, "registry", "list", "--format", "json", "--qemu-version", "7.2", "--platform", "unix")
    document = json.loads(out)
    assert (document["qemu_release"], document["qemu_version"], document["platform"]) == ("11.1", "7.2", "unix")
    names = [i["name"] for i in document["interfaces"]]
    assert "org.qemu.Display1.Console" in names
    assert "org.qemu.Display1.MultiTouch" not in names  # 8.1
    assert "org.qemu.Display1.Listener.Win32.Map" not in names  # Windows only
    assert all(parse_release(i["since"]) <= (7, 2, 0) for i in document["interfaces"])  # type: ignore[operator]


def test_registry_show_at_7_2_lists_no_member_newer_than_7_2(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "registry", "show", "org.qemu.Display1.Console", "--qemu-version", "7.2")
    assert status == 0
    members = re.findall(r"^  (\w+)[(:].*\[since ([0-9.]+)", out, re.MULTILINE)
    assert members
    assert {name for name, _ in members} >= {"RegisterListener", "SetUIInfo", "Width"}
    assert all(parse_release(since) <= (7, 2, 0) for _, since in members), members  # type: ignore[operator]
    assert "Interfaces" not in {name for name, _ in members}  # 8.1
    status, out, _ = run(capsys, "registry", "show", "Console", "--format", "json", "--qemu-version", "7.2")
    document = json.loads(out)
    assert document["name"] == "org.qemu.Display1.Console"
    assert all(parse_release(m["since"]) <= (7, 2, 0) for m in document["members"])  # type: ignore[operator]
    assert len(document["members"]) == 8
    assert "Interfaces" in {
        m["name"] for m in json.loads(run(capsys, "registry", "show", "Console", "--format", "json")[1])["members"]
    }


def test_registry_show_gives_types_access_and_validation(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "registry", "show", "org.qemu.Display1.Audio", "--platform", "windows")
    assert status == 0
    assert "  RegisterOutListener(ay listener) -> ()  [since 8.1]" in out  # the Windows form
    assert "    in listener: ay (array of byte)" in out
    assert re.search(r"^  NSamples: u \(uint32\), read, changes: const  \[since 10\.0\]$", out, re.MULTILINE)
    assert "      validate: QEMU checks that the array is exactly" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "Consol"], "no interface 'Consol' in the registry; did you mean org.qemu.Display1.Console?"),
        (
            ["show", "MultiTouch", "--qemu-version", "7.2"],
            "org.qemu.Display1.MultiTouch is not part of QEMU 7.2: it exists since 8.1",
        ),
        (
            ["show", "Listener.Win32.Map", "--platform", "unix"],
            "org.qemu.Display1.Listener.Win32.Map does not exist on unix (Windows only)",
        ),
        (["list", "--qemu-version", "seven"], "--qemu-version 'seven' is not a QEMU release such as 7.2"),
    ],
)
def test_registry_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    status, out, err = run(capsys, "registry", *argv)
    assert (status, out, err) == (2, "", f"qemu-dbus registry: error: {message}\n")


def test_registry_output_escapes_hostile_names(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # A C1 control (CSI) and a bidi override are well-formed XML, and would drive a terminal.
    hostile = "org.qemu.Evil1\u009b31m\u202e"
    (tmp_path / "evil.xml").write_text(
        f'<node><interface name="{hostile}"><method name="Go\u009b2J"/></interface></node>'
    )
    status, out, _ = run(capsys, "registry", "list", "--registry", str(tmp_path))
    assert status == 0
    assert "org.qemu.Evil1\\x9b31m\\u202e" in out
    status, out, err = run(capsys, "registry", "show", "Evil1\u009b31m\u202e", "--registry", str(tmp_path))
    assert status == 0, err
    assert "Go\\x9b2J()" in out
    assert "\u009b" not in out
    assert "\u202e" not in out


def test_registry_errors_escape_the_names_they_quote(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The names an error lists (ambiguous matches, suggestions) and the folder it names come
    from the registry and the command line: a newline and a bidi override there must not forge a
    second line or reorder the first."""
    # Character references: a literal newline in an attribute would be read as a space.
    for index, name in enumerate(
        ("org.qemu.A&#10;forged: error: all fine&#x202e;.Console", "org.qemu.B&#x202e;.Console")
    ):
        (tmp_path / f"{index}.xml").write_text(f'<node><interface name="{name}"/></node>')
    outputs = [
        run(capsys, "registry", "show", "Console", "--registry", str(tmp_path)),  # ambiguous
        run(capsys, "registry", "show", "Consol", "--registry", str(tmp_path)),  # did you mean
        run(capsys, "registry", "list", "--registry", str(tmp_path / "no\nsuch: error: x\u202e")),
        run(capsys, "policy", "--scenario", "two-uids", "--registry", str(tmp_path / "no\nsuch\u202e")),
    ]
    for status, out, err in outputs:
        assert (status, out) == (2, "")
        assert err.count("\n") == 1, err
        assert "\u202e" not in err
        assert "\\u202e" in err
    assert "ambiguous" in outputs[0][2]
    assert "did you mean" in outputs[1][2]
    assert "no such folder" in outputs[2][2]


def test_subcommands_that_read_the_registry_share_the_rule(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for argv in (
        ["policy", "--scenario", "two-uids", "--registry", str(empty)],
        ["conform", "--address", "unix:path=/nonexistent", "--dest", "org.qemu", "--registry", str(empty)],
    ):
        status, out, err = run(capsys, *argv)
        assert (status, out) == (2, "")
        assert err.endswith(f"error: --registry {empty}: the folder holds no interface file (*.xml)\n")
    status, out, _ = run(capsys, "policy", "--scenario", "two-uids")
    assert status == 0
    assert out.startswith("<!DOCTYPE busconfig")


def test_check_with_no_path_and_no_interfaces_folder_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, "check")
    assert (status, out) == (2, "")
    assert err == (
        "qemu-dbus check: error: no PATH given and no interfaces/ folder here; name the files or folders "
        'to check (the installed registry: qemu-dbus check "$(qemu-dbus registry path)")\n'
    )


# --- Sphinx: a project of its own --------------------------------------------------------------


@pytest.mark.sphinx("html", testroot="standalone", freshenv=True, confoverrides={"nitpicky": True})
def test_a_standalone_project_builds_without_warnings(app: Any, built: Callable[[Any], Any]) -> None:
    """conf.py lists the extension and MyST only: the packaged registry renders the rST and the
    MyST page, and references into interfaces the project does not render are code text."""
    app.build()
    result = built(app)
    assert result.warnings() == []
    index = result.html("index").replace("<wbr>", "")  # where a long name may break: not text
    assert 'id="org.qemu.Display1.Console.RegisterListener"' in index
    # Console's documentation names Mouse, which this project does not render: code text.
    assert re.search(r'<code class="[^"]*dbus-iface[^"]*"><span class="pre">org.qemu.Display1.Mouse</span>', index)
    assert 'class="reference external"' not in index
    # ... while Keyboard, rendered on the MyST page, is a link there.
    assert 'href="input.html#dbus-org.qemu.Display1.Keyboard.Press"' in index
    assert 'id="org.qemu.Display1.Keyboard.Press"' in result.html("input")


@pytest.mark.sphinx(
    "html",
    testroot="standalone",
    freshenv=True,
    confoverrides={"dbus_registry_url": "https://docs.example/qemu/"},
)
def test_registry_objects_the_project_does_not_render_link_to_the_registry_url(
    app: Any, built: Callable[[Any], Any]
) -> None:
    app.build()
    result = built(app)
    assert result.warnings() == []
    index = result.html("index")
    assert 'href="https://docs.example/qemu/interop/dbus-display.html#org.qemu.Display1.Mouse"' in index
    assert 'href="https://docs.example/qemu/interop/dbus-vmstate.html#org.qemu.VMState1"' in index


def test_an_unknown_name_in_the_projects_own_text_still_warns(
    make_app: Callable[..., Any], copied_root: Callable[[str], Any], built: Callable[[Any], Any]
) -> None:
    srcdir = copied_root("standalone")
    index = Path(srcdir) / "index.rst"
    index.write_text(index.read_text() + "\nAnd to :dbus:meth:`org.qemu.Display1.Keyboard.Nope`.\n")
    app = make_app("html", srcdir=srcdir, freshenv=True)
    app.build()
    assert built(app).warnings() == [
        "SRC/index.rst:15: WARNING: reference to method 'org.qemu.Display1.Keyboard.Nope' does not resolve [dbus.R601]"
    ]

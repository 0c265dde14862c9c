"""The command line: output formats, exit codes and the no-Sphinx guarantee."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sphinxext_qemudbus.check.checker import check_files
from sphinxext_qemudbus.check.summary import CheckOptions
from sphinxext_qemudbus.cli import main
from sphinxext_qemudbus.diagnostics.rules import PROFILES, RULES, expand_selection
from sphinxext_qemudbus.model.parser import parse_file

ROOT = Path(__file__).parent.parent
CORPUS = Path(__file__).parent / "corpus"
CLEAN = """<node>
  <!--
      org.example.Clean1:

      A clean interface.
  -->
  <interface name="org.example.Clean1"/>
</node>
"""
WARNS = CLEAN.replace("Clean1", "Warns")  # unversioned: G401 warning only, and a file-name warning


@pytest.fixture(autouse=True)
def _run_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI keeps its cache in the working directory; keep it out of the repository."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    path = tmp_path / "org.example.Clean1.xml"
    path.write_text(CLEAN)
    return path


@pytest.fixture
def warns(tmp_path: Path) -> Path:
    path = tmp_path / "org.example.Warns.xml"
    path.write_text(WARNS)
    return path


def test_exit_0_when_clean(clean: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--profile", "generic", str(clean)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "1 file checked: no problems" in err


def test_warnings_pass_unless_strict(warns: Path) -> None:
    assert main(["check", "--profile", "generic", "-q", str(warns)]) == 0
    assert main(["check", "--profile", "generic", "-q", "--strict", str(warns)]) == 1


def test_errors_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--profile", "generic", "--select", "S", str(CORPUS / "bad-direction.xml")]) == 1
    out, _ = capsys.readouterr()
    heading, line = out.splitlines()[:2]
    assert heading == f"{CORPUS / 'bad-direction.xml'}: in interface org.example.BadDirection1:"
    assert line.endswith("error: invalid direction 'inout'; expected 'in' or 'out' [S107]")
    assert line.startswith(f"{CORPUS / 'bad-direction.xml'}:5:30: ")


def test_usage_and_io_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "missing")]) == 2
    assert main(["check", "--select", "NOPE", str(tmp_path)]) == 2
    with pytest.raises(SystemExit) as info:
        main(["check", "--format", "xml"])
    assert info.value.code == 2
    assert "no such file" in capsys.readouterr().err


def test_unreadable_file_is_an_io_error(tmp_path: Path, clean: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Root reads any file, so use what nobody can read: a symbolic link loop, and a folder
    # named where a file is expected (a loop inside a scanned folder is kept too, and reported).
    (tmp_path / "loop").mkdir()
    (tmp_path / "loop" / "a.xml").symlink_to("b.xml")
    (tmp_path / "loop" / "b.xml").symlink_to("a.xml")
    assert [d.code for d in parse_file(tmp_path / "loop" / "a.xml").diagnostics] == ["X006"]
    assert [d.code for d in parse_file(tmp_path / "loop").diagnostics] == ["X007"]
    assert main(["check", "-q", "--profile", "generic", str(clean), str(tmp_path / "loop")]) == 2
    out = capsys.readouterr().out
    assert f"{tmp_path / 'loop' / 'a.xml'}: error: cannot read file: Too many levels of symbolic links [X006]" in out
    assert "Traceback" not in out


def test_json_format(capsys: pytest.CaptureFixture[str]) -> None:
    main(["check", "--profile", "generic", "--select", "S", "--format", "json", str(CORPUS / "bad-direction.xml")])
    rows = json.loads(capsys.readouterr().out)
    assert rows[0] | {"hint": ""} == {
        "path": str(CORPUS / "bad-direction.xml"),
        "line": 5,
        "column": 30,
        "severity": "error",
        "code": "S107",
        "message": "invalid direction 'inout'; expected 'in' or 'out'",
        "hint": "",
    }


def test_sarif_format(capsys: pytest.CaptureFixture[str]) -> None:
    main(["check", "--profile", "generic", "--select", "S", "--format", "sarif", str(CORPUS / "bad-direction.xml")])
    sarif = json.loads(capsys.readouterr().out)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    result = run["results"][0]
    assert result["ruleId"] == "S107"
    assert result["level"] == "error"
    assert result["locations"][0]["physicalLocation"]["region"] == {"startLine": 5, "startColumn": 30}
    assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == "S107"


def test_github_format(capsys: pytest.CaptureFixture[str]) -> None:
    main(["check", "--profile", "generic", "--select", "S", "--format", "github", str(CORPUS / "bad-direction.xml")])
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("::error file=")
    assert ",line=5,col=30,title=S107::" in line


def test_rules_listing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"S105", "P201", "R601"} <= {row["code"] for row in rows}


def test_default_path_is_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["check", "-q", "--strict", "--no-cache"]) == 0


def test_parser_checker_and_cli_never_import_sphinx() -> None:
    code = (
        "import sys\n"
        "import sphinxext_qemudbus, sphinxext_qemudbus.cli, sphinxext_qemudbus.check.checker\n"
        "import sphinxext_qemudbus.model.parser, sphinxext_qemudbus.model.registry, sphinxext_qemudbus.security.trust\n"
        "from sphinxext_qemudbus.cli import main\n"
        "main(['check', '-q', '--no-cache', 'interfaces'])\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('sphinx', 'docutils', 'myst_parser'))\n"
        "print(bad)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert proc.stdout.strip() == "[]"


def test_python_dash_m_is_the_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sphinxext_qemudbus", "--version"], capture_output=True, text=True, check=True
    )
    assert proc.stdout.startswith("qemu-dbus ")


# --- files that could not be read or parsed are always reported ------------------------------------


def test_select_cannot_hide_a_file_that_was_not_parsed(capsys: pytest.CaptureFixture[str]) -> None:
    # The entity bomb is refused (X003): with --select S nothing of it was checked, so "no
    # problems", exit 0, would be a lie.
    assert main(["check", "--no-cache", "--select", "S", str(CORPUS / "billion-laughs.xml")]) == 1
    out, err = capsys.readouterr()
    assert "[X003]" in out
    assert "1 error" in err


def test_ignore_cannot_hide_an_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.xml").symlink_to("b.xml")
    (tmp_path / "b.xml").symlink_to("a.xml")
    assert main(["check", "--no-cache", "--ignore", "X", "--ignore", "xml-syntax", str(tmp_path)]) == 2
    assert capsys.readouterr().out.count("[X006]") == 2


FATAL_FILES = {
    "billion-laughs.xml": "X003",
    "binary-garbage.xml": "X002",
    "bad-root.xml": "X013",
    "deep-nesting.xml": "X001",
    "empty.xml": "X005",
    "not-xml.xml": "X001",
}


@given(
    select=st.none() | st.lists(st.sampled_from([*sorted(RULES), "X", "S", "D5", "G4", "unresolved-reference"])),
    ignore=st.lists(st.sampled_from([*sorted(RULES), "X", "X0", "S", "xml-syntax", "unreadable-file"])),
    profile=st.sampled_from(PROFILES),
)
@settings(max_examples=60, deadline=None)
def test_no_selection_filters_a_fatal_finding(select: list[str] | None, ignore: list[str], profile: str) -> None:
    options = CheckOptions(profile, expand_selection(select) if select is not None else None, expand_selection(ignore))
    parsed = [parse_file(CORPUS / name) for name in FATAL_FILES]
    found = {(Path(d.location.path).name, d.code) for d in check_files(parsed, options)}
    assert set(FATAL_FILES.items()) <= found

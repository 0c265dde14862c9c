"""``make conflicts`` (ci/check_conflict_markers.py): merge leftovers in tracked files fail."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "ci" / "check_conflict_markers.py"

# Markers are built, not written: this file is tracked too, and make conflicts reads it.
OURS, BASE, SEPARATOR, THEIRS = "<" * 7, "|" * 7, "=" * 7, ">" * 7

# What the merge of issue 14b left in docs/extension.rst: the closing paragraph of one side, the
# separator, and the other side's section title (three headings were lost around it).
LEFTOVER = f"""\
Other builders (LaTeX, text, man) print the title and the table instead.
{SEPARATOR}
What doc comments may use
-------------------------
"""
UNRESOLVED = f"""\
Intro
{OURS} HEAD
ours
{BASE} base
base
{SEPARATOR}
theirs
{THEIRS} issue-14b
"""
HEADINGS = f"""\
{SEPARATOR}
Title
{SEPARATOR}

Missing
{SEPARATOR}

Setext
{SEPARATOR}

A long heading with a long underline
====================================
"""


def run(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(root)], capture_output=True, text=True, check=False
    )


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("no git")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    return tmp_path


def track(root: Path, name: str, text: str) -> None:
    (root / name).write_text(text)
    subprocess.run(["git", "add", name], cwd=root, check=True)


def test_the_repository_has_no_marker_left() -> None:
    result = run(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_lone_separator_is_found(repository: Path) -> None:
    track(repository, "page.rst", LEFTOVER)
    result = run(repository)
    assert result.returncode == 1
    assert result.stdout == f"page.rst:2: {SEPARATOR}\n"


def test_every_marker_of_an_unresolved_conflict_is_found(repository: Path) -> None:
    track(repository, "module.py", UNRESOLVED)
    result = run(repository)
    assert result.returncode == 1
    assert [line.split(":")[1] for line in result.stdout.splitlines()] == ["2", "4", "6", "8"]


def test_titles_adorned_with_seven_signs_are_not_markers(repository: Path) -> None:
    track(repository, "page.rst", HEADINGS)
    track(repository, "README.md", f"Setext\n{SEPARATOR}\n\ntext\n")
    assert run(repository).returncode == 0


def test_untracked_and_binary_files_are_not_read(repository: Path) -> None:
    (repository / "untracked.rst").write_text(LEFTOVER)
    track(repository, "blob.bin", "\0" + UNRESOLVED)
    assert run(repository).returncode == 0

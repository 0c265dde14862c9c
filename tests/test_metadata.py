"""The package's stated Python floor is the one everything else uses: the classifiers, ruff's and
mypy's language level, the interpreter `make check` runs the oldest suite on, and the version the
QEMU switch page tells QEMU to install."""

from __future__ import annotations

import re
from pathlib import Path

from sphinxext_qemudbus import __version__
from sphinxext_qemudbus._compat import tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
NEWEST = (3, 13)


def _floor() -> tuple[int, int]:
    match = re.fullmatch(r">=(\d+)\.(\d+)", PYPROJECT["project"]["requires-python"])
    assert match
    return int(match.group(1)), int(match.group(2))


def test_classifiers_name_every_supported_python_and_no_other() -> None:
    floor = _floor()
    named = {
        tuple(map(int, c.rsplit(" ", 1)[1].split(".")))
        for c in PYPROJECT["project"]["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    assert named == {(3, minor) for minor in range(floor[1], NEWEST[1] + 1)}


def test_the_tools_check_at_the_floor() -> None:
    major, minor = _floor()
    assert PYPROJECT["tool"]["ruff"]["target-version"] == f"py{major}{minor}"
    assert PYPROJECT["tool"]["mypy"]["python_version"] == f"{major}.{minor}"
    makefile = (ROOT / "Makefile").read_text()
    assert f"ci/find-python {major}.{minor}" in makefile


def test_the_changelog_has_an_entry_for_this_version() -> None:
    assert f"## {__version__} " in (ROOT / "CHANGELOG.md").read_text()

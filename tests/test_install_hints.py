"""Every install command a user is shown works today: the project is not on PyPI yet, so no text
(the README, the documentation, a hint the tools print) tells a user to ``pip install`` it by
name, except where it says that this is for once it is released."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: ``pip install sphinxext-qemudbus`` or ``pip install 'sphinxext-qemudbus[live]'``: by name,
#: which only an index can answer.
BY_NAME = re.compile(r"pip install\s+['\"]?sphinxext[-_]qemudbus\b")


def _texts() -> list[Path]:
    docs = [p for p in (ROOT / "docs").rglob("*") if p.suffix in {".rst", ".md"} and "_build" not in p.parts]
    return [ROOT / "README.md", *docs, *(ROOT / "sphinxext_qemudbus").rglob("*.py"), *(ROOT / "tests").glob("*.py")]


def test_no_text_installs_the_project_by_name() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _texts()
        if path != Path(__file__)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if BY_NAME.search(line) and "PyPI" not in line
    ]
    assert found == []


def test_conform_without_jeepney_says_how_to_install_it() -> None:
    """The hint names the interpreter qemu-dbus runs on: the command works in any environment."""
    program = (
        "import sys; sys.modules['jeepney'] = None\n"
        "from sphinxext_qemudbus.cli import main\n"
        "sys.exit(main(['conform', '--address', 'unix:path=/nonexistent', '--dest', 'org.qemu']))\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=False)
    assert result.returncode == 2, result.stderr
    assert f"needs jeepney: {sys.executable} -m pip install 'jeepney>=0.8'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("line", ["pip install sphinxext-qemudbus", "pip install 'sphinxext-qemudbus[live]'"])
def test_the_pattern_finds_an_install_by_name(line: str) -> None:
    assert BY_NAME.search(line)
    assert not BY_NAME.search("pip install /path/to/sphinxext-qemudbus")

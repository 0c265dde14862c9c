"""QEMU's tree switched to this extension, as ``docs/qemu-switch.rst`` tells QEMU's maintainers: a
copy of ``tests/qemu-tree/`` with the page's diffs applied by ``patch -p1``, and the D-Bus settings
of the switched ``docs/conf.py`` (``switched-conf.py``) in place of QEMU's whole one, which loads
QEMU's other extensions.  Shared by the tests, ``make package`` and ``make bench``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "tests" / "qemu-tree"
SWITCH = ROOT / "docs" / "qemu-switch"
#: The diffs of the configuration; the XML fix (dbus-display1.xml.diff) is QEMU's choice to make.
CONFIGURATION = ("conf.py", "pythondeps.toml", "requirements.txt")


def switched_copy(target: Path, diffs: tuple[str, ...] = CONFIGURATION) -> Path:
    """Copy QEMU's tree to ``target``, apply ``diffs`` (names of docs/qemu-switch/*.diff) and put
    the switched D-Bus settings in docs/conf.py; the docs folder, ready for ``sphinx-build``."""
    shutil.copytree(TREE, target)
    for name in diffs:
        apply_diff(target, SWITCH / f"{name}.diff")
    docs = target / "docs"
    shutil.copy(TREE / "switched-conf.py", docs / "conf.py")
    shutil.move(str(target / "index.rst"), str(docs / "index.rst"))
    return docs


def apply_diff(root: Path, diff: Path) -> None:
    """Apply a diff of the switch page to the tree, as a maintainer would (``patch -p1``)."""
    result = subprocess.run(
        ["patch", "-p1", "--forward", "--no-backup-if-mismatch", "-i", str(diff)],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{diff.name} does not apply to QEMU's tree:\n{result.stdout}{result.stderr}")

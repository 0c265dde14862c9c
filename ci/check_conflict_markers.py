"""``make conflicts``: no merge-conflict marker is left in any tracked file.

A conflict resolved by hand can leave a marker behind that nothing else notices: a lone
``=======`` in a reST page is read as a section adornment, so ``sphinx-build -W -n`` passed on a
page whose merge had swallowed three headings.  Git writes markers of seven characters at the
start of a line (``conflict-marker-size``): ``<<<<<<<``, ``|||||||`` (diff3) and ``>>>>>>>``
followed by a space or the end of the line, and ``=======`` alone.  The first three never start
a line of this project otherwise.  ``=======`` also underlines (or overlines) a reST or Markdown
title of at most seven characters; it counts as a marker everywhere else, and always between
``<<<<<<<`` and ``>>>>>>>``.

Usage: ``python ci/check_conflict_markers.py [--root DIR]`` (default: the current folder, a git
checkout).  Prints ``path:line: text`` for each marker and exits 1 when there is any, 0 otherwise.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

SIZE = 7  # git's default conflict-marker-size
_SIDE = re.compile(rf"(?:<{{{SIZE}}}|\|{{{SIZE}}}|>{{{SIZE}}})(?:[ \t].*)?")
_SEPARATOR = "=" * SIZE


def _is_title(line: str) -> bool:
    """A line an adornment of seven characters can belong to: text, at most that long."""
    text = line.strip()
    return bool(text) and len(line.rstrip()) <= SIZE and not set(text) <= set("=-~^\"'`#*+<>|")


def markers(lines: Sequence[str]) -> Iterator[tuple[int, str]]:
    """(line number, line) of every conflict marker in ``lines`` (without line ends)."""
    inside = False  # between <<<<<<< and >>>>>>>: every separator is one, whatever surrounds it
    for index, line in enumerate(lines):
        if _SIDE.fullmatch(line):
            inside = line[0] != ">"
            yield index + 1, line
        elif line.rstrip() == _SEPARATOR and (inside or not _adorns_a_title(lines, index)):
            yield index + 1, line


def _adorns_a_title(lines: Sequence[str], index: int) -> bool:
    above = lines[index - 1] if index > 0 else ""
    below = lines[index + 1] if index + 1 < len(lines) else ""
    after = lines[index + 2] if index + 2 < len(lines) else ""
    return _is_title(above) or (_is_title(below) and after.rstrip() == _SEPARATOR)


def tracked_files(root: Path) -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    return [root / name for name in listed.decode("utf-8", "surrogateescape").split("\0") if name]


def check(root: Path) -> list[str]:
    """``path:line: text`` for every marker in the tracked text files under ``root``."""
    found = []
    for path in tracked_files(root):
        try:
            data = path.read_bytes()
        except OSError:
            continue  # deleted in the work tree, or a submodule
        if b"\0" in data:
            continue  # binary
        lines = data.decode("utf-8", "replace").splitlines()
        found += [f"{path.relative_to(root)}:{number}: {line}" for number, line in markers(lines)]
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fail on merge-conflict markers in tracked files.")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the git checkout (default: here)")
    args = parser.parse_args(argv)
    found = check(args.root)
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} merge-conflict marker(s) left in tracked files", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

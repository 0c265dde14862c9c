"""Listing the introspection files under the paths a user names.

Every stage lists files the same way (the checker, the registry loader, the compatibility gate),
so the listing lives below all of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def collect_paths(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Expand folders into the ``*.xml`` files under them, in path order (folder by folder, as
    ``sorted(Path.rglob())`` orders them); files are kept as given.  Symbolic links to folders are
    not followed.  Raises FileNotFoundError for a path that does not exist."""
    result: list[str] = []
    for raw in paths:
        path = os.fspath(raw)
        if os.path.isdir(path):
            result.extend(_xml_files(path))
        elif os.path.exists(path):
            result.append(str(Path(path)))
        else:
            raise FileNotFoundError(path)
    return result


def _xml_files(folder: str) -> list[str]:
    # A directory entry tells whether a name is a folder or a file: no stat per file, which was
    # most of the time Path.rglob took on a large tree.
    found: list[tuple[tuple[str, ...], str]] = []
    pending: list[tuple[str, tuple[str, ...]]] = [(str(Path(folder)), ())]
    while pending:
        top, parts = pending.pop()
        try:
            entries = list(os.scandir(top))
        except OSError:
            # Kept as a path to check: reading it fails, which reports it (X006) where a
            # silently skipped folder would hide its files.
            found.append((parts, top))
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                pending.append((entry.path, (*parts, entry.name)))
            elif entry.name.endswith(".xml") and entry.is_file():
                found.append(((*parts, entry.name), entry.path))
    found.sort()
    return [path for _, path in found]

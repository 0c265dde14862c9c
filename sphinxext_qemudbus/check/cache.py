"""A per-file result cache for ``qemu-dbus check``, as linters at scale keep one (ruff, mypy).

A file's summary (its own diagnostics, what it defines, what it refers to) depends only on the
file's path and bytes, the tool and the options, so an unchanged file need not be parsed again;
the cross-file rules always run afresh over every summary.  The cache must never change a
result, so it is keyed on what the summary depends on and nothing else:

* the content: a BLAKE2 digest of the bytes, read anyway (a size and a modification time can stay
  the same across an edit: ``tar -x``, ``rsync -t`` and build systems restore them);
* the tool: its version and a digest of the package's own source, so editing the checker
  invalidates everything;
* the options: the profile and the rule codes they enable, in sorted order (a ``repr`` of sets
  would change with Python's hash seed and miss on every run).

Entries are JSON in one SQLite file, never pickle: a cache directory someone else can write to
must not be a way to run code, and a row that does not decode to exactly the shape written is a
miss, never an exception.  Any problem with the cache (corrupt, locked, read-only) turns it off for
the run; it never fails a check.  The tool writes only into a directory it made itself: it tags
it (``CACHEDIR.TAG``, the convention backup tools and pytest follow) and refuses to use an
existing directory without the tag, so ``--cache-dir interfaces`` cannot litter the registry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Mapping, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

from .._version import __version__
from ..diagnostics.diagnostic import Diagnostic, Location, Severity
from ..diagnostics.rules import RULES
from ..model.files import FileRefused, read_file
from .summary import CheckOptions, FileSummary, InterfaceEntry, content_digest

DEFAULT_DIRECTORY = ".qemu-dbus-cache"
_SCHEMA = 4
_TABLE = "file_results"
#: https://bford.info/cachedir/: the first line of a CACHEDIR.TAG file.
CACHEDIR_SIGNATURE = "Signature: 8a477f597d28d172789f06886806bc55"
_TAG = f"{CACHEDIR_SIGNATURE}\n# This folder is a cache made by qemu-dbus check; it can be deleted.\n"
# What the tool's earlier versions wrote into the folders they made, before they tagged them.
_LEGACY_IGNORE = "# Created by qemu-dbus check."
_SEVERITIES = frozenset(severity.value for severity in Severity)
_KEYS = frozenset({"path", "diagnostics", "interfaces", "objects", "references", "resolved"})


def fingerprint(options: CheckOptions) -> str:
    """What a cached summary depends on besides the file: this tool's code and the options,
    spelt the same in every process (no hash-seed-dependent ``repr``)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{_SCHEMA}:{__version__}:{options.profile}:{','.join(sorted(options.codes))}".encode())
    package = Path(__file__).resolve().parent.parent
    for module in sorted(package.rglob("*.py")):
        digest.update(module.relative_to(package).as_posix().encode())
        digest.update(module.read_bytes())
    return digest.hexdigest()


class SummaryCache:
    """Summaries by path, valid while the file's digest and the tool's fingerprint hold."""

    def __init__(self, directory: str | os.PathLike[str], options: CheckOptions) -> None:
        self.directory = Path(directory)
        self.fingerprint = fingerprint(options)
        self.db = sqlite3.connect(self.directory / "check.sqlite3", timeout=5)
        try:
            self.db.execute(
                f"CREATE TABLE IF NOT EXISTS {_TABLE} "
                "(path TEXT PRIMARY KEY, digest TEXT NOT NULL, fingerprint TEXT NOT NULL, summary TEXT NOT NULL)"
            )
            self.db.execute("DROP TABLE IF EXISTS summaries")  # schema 3 and before: keyed on mtime
        except sqlite3.Error:
            self.db.close()
            raise

    def close(self) -> None:
        self.db.close()

    def lookup(self, paths: Sequence[str]) -> dict[str, FileSummary]:
        """The cached summaries still valid for ``paths``: each candidate file is read and its
        digest compared.  A file with no entry is not read here (the worker that checks it
        does).  Never raises: a cache that cannot be read is empty."""
        wanted = set(paths)
        try:
            rows = self.db.execute(
                f"SELECT path, digest, summary FROM {_TABLE} WHERE fingerprint = ?", (self.fingerprint,)
            ).fetchall()
        except sqlite3.Error:
            return {}
        found: dict[str, FileSummary] = {}
        for path, digest, text in rows:
            if path not in wanted or type(digest) is not str or type(text) is not str:
                continue
            try:
                data = read_file(path)
            except FileRefused:
                continue  # checked afresh, which reports it
            if content_digest(data) == digest and (summary := decode(path, text)) is not None:
                found[path] = summary
        return found

    def store(self, results: Mapping[str, tuple[FileSummary, str]]) -> None:
        """Keep fresh summaries under the digest of the bytes each was made from (not an
        internal error, nor a file whose process died: the next run should try again)."""
        rows = [
            (path, digest, self.fingerprint, json.dumps(encode(summary), separators=(",", ":")))
            for path, (summary, digest) in results.items()
            if digest and _storable(path) and not any(d.code in ("X099", "X008") for d in summary.diagnostics)
        ]
        try:
            with self.db:
                self.db.executemany(f"INSERT OR REPLACE INTO {_TABLE} VALUES (?, ?, ?, ?)", rows)
        except sqlite3.Error:
            pass  # only costs the next run its speed-up


def _storable(path: str) -> bool:
    """Whether SQLite can hold the path: a file name that is not UTF-8 reaches Python as surrogate
    escapes, which it cannot encode (that file is checked afresh each run)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def open_cache(
    directory: str | os.PathLike[str] | None, options: CheckOptions
) -> tuple[SummaryCache | None, list[str]]:
    """A cache in ``directory`` (None when there is none or it cannot be used), and what the user
    should hear about it: a directory the tool did not make is not used."""
    if directory is None:
        return None, []
    folder = Path(directory)
    problem = claim(folder)
    if problem is not None:
        return None, [f"{os.fspath(directory)}: {problem}; the cache is off for this run"]
    try:
        return SummaryCache(folder, options), []
    except (OSError, sqlite3.Error):
        return None, []


def claim(folder: Path) -> str | None:
    """Make ``folder`` the tool's cache folder, or say why it cannot be.  A new folder is made and
    tagged; an existing one must carry the tag (or what earlier versions of the tool wrote)."""
    try:
        folder.mkdir(parents=True)
    except FileExistsError:
        pass
    except OSError as error:
        return f"cannot make the cache folder: {error.strerror or error}"
    else:
        try:
            (folder / "CACHEDIR.TAG").write_text(_TAG, encoding="utf-8")
            (folder / ".gitignore").write_text("# Created by qemu-dbus check.\n*\n", encoding="utf-8")
        except OSError as error:
            return f"cannot write into the cache folder: {error.strerror or error}"
        return None
    if not folder.is_dir():
        return "not a folder"
    if _first_line(folder / "CACHEDIR.TAG") == CACHEDIR_SIGNATURE:
        return None
    if _first_line(folder / ".gitignore") == _LEGACY_IGNORE:
        with contextlib.suppress(OSError):  # still usable; tagged next time
            (folder / "CACHEDIR.TAG").write_text(_TAG, encoding="utf-8")
        return None
    return "the folder exists and was not made by qemu-dbus (it has no CACHEDIR.TAG); it is never written into"


def _first_line(path: Path) -> str:
    try:
        return read_file(path, 4096).decode("utf-8", "replace").partition("\n")[0].strip()
    except FileRefused:
        return ""


# --- encoding: JSON of plain lists, checked on the way back -----------------------------------


def encode(summary: FileSummary) -> dict[str, Any]:
    return {
        "path": summary.path,
        "diagnostics": [
            [d.code, d.severity.value, [d.location.path, d.location.line, d.location.column], d.message, d.hint]
            for d in summary.diagnostics
        ],
        "interfaces": [[name, sorted(platforms), line, first] for name, platforms, line, first in summary.interfaces],
        "objects": [list(entry) for entry in summary.objects],
        "references": [list(entry) for entry in summary.references],
        "resolved": [list(entry) for entry in summary.resolved],
    }


def decode(path: str, text: str) -> FileSummary | None:
    """The summary ``text`` holds, or None when it is not exactly the shape `encode` writes (a
    tampered or corrupt row is a miss: types, nulls, nesting and lengths are all checked, and
    every diagnostic must be located in ``path`` itself).

    The checks run column by column with built-ins (``map``, ``set``), not value by value in
    Python: a warm run decodes every file's row, a hundred thousand references for the registry
    copied ten thousand times."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if type(data) is not dict or data.keys() != _KEYS or data["path"] != path:
        return None
    try:
        rows = _table(data["diagnostics"], (str, str, list, str, str))
        codes, severities, wheres, messages, hints = _columns(rows, 5)
        if not set(codes) <= RULES.keys() or not set(severities) <= _SEVERITIES:
            raise _Malformed
        locations = _table(list(wheres), (str, int, int))
        # A file's summary speaks of that file alone: a row that locates a finding in another
        # file would blame it (or bury a real finding among forged ones) on every warm run.
        if locations and set(next(zip(*locations))) != {path}:
            raise _Malformed
        diagnostics = tuple(
            Diagnostic(code, Severity(severity), Location(*where), message, hint)
            for code, severity, where, message, hint in zip(codes, severities, locations, messages, hints)
        )
        interfaces = _table(data["interfaces"], (str, list, int, int))
        names, platforms, lines, firsts = _columns(interfaces, 4)
        if not set(map(type, chain.from_iterable(platforms))) <= {str}:
            raise _Malformed
        entries: tuple[InterfaceEntry, ...] = tuple(zip(names, map(frozenset, platforms), lines, firsts))
        objects = tuple(_table(data["objects"], (str, str)))
        references = tuple(_table(data["references"], _REFERENCE))
        resolved = tuple(_table(data["resolved"], _REFERENCE))
    except _Malformed:
        return None
    return FileSummary(path, diagnostics, entries, objects, references, resolved)


class _Malformed(Exception):
    pass


_REFERENCE = (str, str, str, int, int)


def _table(value: Any, types: tuple[type, ...]) -> list[tuple[Any, ...]]:
    """``value`` as rows of exactly ``types`` (a list of lists of that width; ``int`` means a
    non-negative int, never a bool), or `_Malformed`."""
    if type(value) is not list or not set(map(type, value)) <= {list}:
        raise _Malformed
    rows = list(map(tuple, value))
    if not rows:
        return rows
    if set(map(len, rows)) != {len(types)}:
        raise _Malformed
    for column, kind in zip(zip(*rows), types):
        if set(map(type, column)) != {kind} or (kind is int and min(column) < 0):
            raise _Malformed
    return rows


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[tuple[Any, ...]]:
    return list(zip(*rows)) if rows else [()] * width

"""A per-file result cache for ``qemu-dbus check``, as linters at scale keep one (ruff, mypy).

A file's summary (its own diagnostics, what it defines, what it refers to) depends only on the
file, the tool and the options, so an unchanged file need not be parsed again; the cross-file
rules always run afresh over every summary.  A file counts as unchanged when its size and
modification time are; the tool's fingerprint covers the package's own source, so editing the
checker invalidates everything.

Entries are JSON in one SQLite file, never pickle: a cache directory someone else can write to
must not be a way to run code.  Any problem with the cache (corrupt, locked, read-only) turns it
off for the run; it never fails a check.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._version import __version__
from ..diagnostics.diagnostic import Diagnostic, Location, Severity
from .summary import CheckOptions, FileSummary, ReferenceEntry

DEFAULT_DIRECTORY = ".qemu-dbus-cache"
_SCHEMA = 3


def fingerprint(options: CheckOptions) -> str:
    """What a cached summary depends on besides the file: this tool's code and the options."""
    digest = hashlib.blake2b(f"{_SCHEMA}:{__version__}:{options!r}".encode(), digest_size=16)
    package = Path(__file__).resolve().parent.parent
    for module in sorted(package.rglob("*.py")):
        digest.update(module.name.encode())
        digest.update(module.read_bytes())
    return digest.hexdigest()


class SummaryCache:
    """Summaries by path, valid while the file's (mtime, size) and the tool's fingerprint hold."""

    def __init__(self, directory: str | os.PathLike[str], options: CheckOptions) -> None:
        self.directory = Path(directory)
        self.fingerprint = fingerprint(options)
        self.directory.mkdir(parents=True, exist_ok=True)
        ignore = self.directory / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# Created by qemu-dbus check.\n*\n")
        self.db = sqlite3.connect(self.directory / "check.sqlite3", timeout=5)
        try:
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS summaries "
                "(path TEXT PRIMARY KEY, stamp TEXT NOT NULL, fingerprint TEXT NOT NULL, summary TEXT NOT NULL)"
            )
        except sqlite3.Error:
            self.db.close()
            raise

    def close(self) -> None:
        self.db.close()

    def lookup(self, paths: Sequence[str]) -> tuple[dict[str, FileSummary], dict[str, str]]:
        """The cached summaries still valid for ``paths``, and the stamp of every path (to store
        fresh summaries under)."""
        stamps = {path: _stamp(path) for path in paths}
        found: dict[str, FileSummary] = {}
        rows = self.db.execute("SELECT path, stamp, summary FROM summaries WHERE fingerprint = ?", (self.fingerprint,))
        for path, stamp, text in rows:
            if stamps.get(path) == stamp:
                found[path] = _decode(json.loads(text))
        return found, stamps

    def store(self, summaries: Mapping[str, FileSummary], stamps: Mapping[str, str]) -> None:
        """Keep fresh summaries, by the path they were asked for (an internal error is not kept:
        the next run should try again)."""
        rows = [
            (path, stamps[path], self.fingerprint, json.dumps(_encode(summary), separators=(",", ":")))
            for path, summary in summaries.items()
            if stamps.get(path) and not any(d.code == "X099" for d in summary.diagnostics)
        ]
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO summaries VALUES (?, ?, ?, ?)", rows)


def open_cache(directory: str | os.PathLike[str] | None, options: CheckOptions) -> SummaryCache | None:
    """A cache in ``directory``, or None when there is none or it cannot be used."""
    if directory is None:
        return None
    try:
        return SummaryCache(directory, options)
    except (OSError, sqlite3.Error):
        return None


def _stamp(path: str) -> str:
    try:
        status = os.stat(path)
    except OSError:
        return ""
    return f"{status.st_mtime_ns}:{status.st_size}"


def _location(location: Location) -> list[Any]:
    return [location.path, location.line, location.column]


def _encode(summary: FileSummary) -> dict[str, Any]:
    return {
        "path": summary.path,
        "diagnostics": [
            [d.code, d.severity.value, _location(d.location), d.message, d.hint] for d in summary.diagnostics
        ],
        "interfaces": [[name, sorted(platforms), line] for name, platforms, line in summary.interfaces],
        "objects": summary.objects,
        "references": summary.references,
        "resolved": summary.resolved,
    }


def _decode(data: dict[str, Any]) -> FileSummary:
    return FileSummary(
        data["path"],
        tuple(
            Diagnostic(code, Severity(severity), Location(*where), message, hint)
            for code, severity, where, message, hint in data["diagnostics"]
        ),
        tuple((name, frozenset(platforms), line) for name, platforms, line in data["interfaces"]),
        tuple((name, kind) for name, kind in data["objects"]),
        _reference_entries(data["references"]),
        _reference_entries(data["resolved"]),
    )


def _reference_entries(rows: list[list[Any]]) -> tuple[ReferenceEntry, ...]:
    return tuple((interface, role, target, line, column) for interface, role, target, line, column in rows)

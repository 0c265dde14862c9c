"""One diagnostic type for every stage: parser, checker, diff, Sphinx.

A diagnostic is a value (code, severity, location, message, hint).  The CLI prints it like a compiler
(``path:line:col: severity: message [code]``); the Sphinx glue logs the same value with
``type="dbus", subtype=<code>`` so ``suppress_warnings = ["dbus.<code>"]`` works.
"""

from __future__ import annotations

import enum

from .frozen import frozen


class Severity(enum.Enum):
    """How bad a finding is.  ``--strict`` fails on warnings; notes never fail a run."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.ERROR: 2, Severity.WARNING: 1, Severity.NOTE: 0}


@frozen(order=True)
class Location:
    """A place in a source file.  ``line`` and ``column`` are 1-based; 0 means unknown."""

    path: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line and self.column:
            return f"{self.path}:{self.line}:{self.column}"
        if self.line:
            return f"{self.path}:{self.line}"
        return self.path

    def with_column(self, column: int) -> Location:
        return Location(self.path, self.line, column)


@frozen
class Diagnostic:
    """A located finding with a stable rule code."""

    code: str
    severity: Severity
    location: Location
    message: str
    hint: str = ""

    def format(self) -> str:
        """The compiler-style line: ``path:line:col: severity: message [code]``, leaving out the
        parts of the location that are unknown (``path:line:`` when there is no column)."""
        return f"{self.location}: {self.severity.value}: {self.message} [{self.code}]"

    def sort_key(self) -> tuple[str, int, int, str]:
        loc = self.location
        return (loc.path, loc.line, loc.column, self.code)

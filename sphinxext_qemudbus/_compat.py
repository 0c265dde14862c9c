"""What the standard library gained after Python 3.9, the oldest Python this package supports
(QEMU's docs build runs there): one place, so the rest of the code reads as it will once the floor
moves."""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, as the backport
    import tomli as tomllib

__all__ = ["atomic", "tomllib"]


def atomic(name: str, body: str) -> str:
    """A regular expression that matches what ``body`` matches first and never gives any of it
    back: the atomic group ``(?>body)`` (possessive ``X*+`` is ``(?>X*)``), which keeps a scan
    linear where backtracking into ``body`` would not.  Python's ``re`` has atomic groups from
    3.11; before, a lookahead is atomic, and a backreference then consumes what it matched.

    Either way the match of ``body`` is the named group ``name`` (unique in its pattern), so a
    pattern built with this behaves the same on every Python, ``lastgroup`` included."""
    if sys.version_info >= (3, 11):
        return f"(?P<{name}>(?>{body}))"
    return f"(?=(?P<{name}>{body}))(?P={name})"

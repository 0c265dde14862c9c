"""What ``qemu-dbus check`` keeps of each file, and the options a check runs with.

Shared by the checker, which makes file summaries, and the cache, which stores them: neither
depends on the other for these types.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import field

from ..diagnostics.diagnostic import Diagnostic
from ..diagnostics.frozen import frozen, record
from ..diagnostics.rules import RULES


@record(frozen=True)
class CheckOptions:
    profile: str = "qemu"
    select: frozenset[str] | None = None
    ignore: frozenset[str] = frozenset()
    #: The codes these options enable, worked out once (every finding and file asks).
    codes: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A fatal rule (a file that could not be read or parsed) is on whatever the selection:
        # the file was not checked, and "no problems" would say it was.
        enabled = frozenset(
            code
            for code, rule in RULES.items()
            if self.profile in rule.profiles
            and (rule.fatal or ((self.select is None or code in self.select) and code not in self.ignore))
        )
        object.__setattr__(self, "codes", enabled)

    def any_enabled(self, codes: Iterable[str]) -> bool:
        return not self.codes.isdisjoint(codes)

    def enabled(self, code: str) -> bool:
        return code in self.codes


#: The options of a plain ``qemu-dbus check``: the qemu profile, every rule.
DEFAULT_OPTIONS = CheckOptions()


@record
class CheckResult:
    files: int
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: The folders named that hold no ``*.xml`` file at all.
    empty: list[str] = field(default_factory=list)
    #: What the user should hear about the run itself (a cache folder not used, and why).
    notes: list[str] = field(default_factory=list)
    #: Path → (first line, name) of each interface the file defines, in file order: the first
    #: line is that of its doc comment, where its findings start (see `output.grouped_text`).
    scopes: dict[str, tuple[tuple[int, str], ...]] = field(default_factory=dict)


def content_digest(data: bytes) -> str:
    """What the cache keys a file's summary on: a digest of its bytes (BLAKE2, fast and keyed on
    nothing but the bytes)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


# What the cross-file rules need from a file, as plain tuples: a file's summary crosses a process
# boundary (and goes into the cache), and plain values are what pickle and JSON handle fastest.
# Lines only: a column is computed from the file (`checker._Columns`) when a diagnostic needs it.
#: (interface name, platforms it exists on, line, first line: that of its doc comment if it has one)
InterfaceEntry = tuple[str, frozenset[str], int, int]
#: (interface the reference is in, role, target, line, column or 0)
ReferenceEntry = tuple[str, str, str, int, int]


@frozen
class FileSummary:
    """What the cross-file rules need from one file: its own diagnostics, what it defines (full
    name and kind, first definition only) and what it refers to.

    References that resolve within the file itself are kept apart, in ``resolved``: they resolve
    the same way among all files unless another file defines one of this file's names too, and
    only then does `_conclude` look at them again.  In a registry nearly every reference is to
    the interface's own members, so this keeps most of the resolving in the worker processes."""

    path: str
    diagnostics: tuple[Diagnostic, ...]
    interfaces: tuple[InterfaceEntry, ...]
    objects: tuple[tuple[str, str], ...]
    references: tuple[ReferenceEntry, ...]
    resolved: tuple[ReferenceEntry, ...] = ()

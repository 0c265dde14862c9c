"""The registry: the interfaces of a folder of introspection files, with their metadata.

One object that the Sphinx directives, the policy generator, the trust notes and the compatibility
gate all read, so none of them re-parses or re-interprets the XML its own way.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from ..diagnostics.diagnostic import Diagnostic
from .files import collect_paths
from .introspection import Interface
from .metadata import InterfaceMetadata, interface_metadata
from .parser import ParsedFile, parse_file


@dataclass(frozen=True, slots=True)
class Entry:
    interface: Interface
    metadata: InterfaceMetadata
    path: str


class Registry:
    """Interfaces by name.  The first definition of a name wins; the checker reports duplicates."""

    def __init__(self, files: Sequence[ParsedFile]) -> None:
        self.files = tuple(files)
        self._entries: dict[str, Entry] = {}
        for parsed in self.files:
            for interface in parsed.interfaces:
                self._entries.setdefault(interface.name, Entry(interface, interface_metadata(interface), parsed.path))

    @classmethod
    def load(cls, paths: Iterable[str | os.PathLike[str]]) -> Registry:
        """Parse every ``*.xml`` under ``paths`` (files or folders)."""
        return cls([parse_file(path) for path in collect_paths(paths)])

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        """What went wrong while parsing (not the checker's findings)."""
        return tuple(d for parsed in self.files for d in parsed.diagnostics)

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        """The parse errors: a registry with any is incomplete, and its consumers refuse it."""
        return tuple(d for parsed in self.files for d in parsed.errors)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(sorted(self._entries.values(), key=lambda e: e.interface.name))

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, name: str) -> Entry:
        return self._entries[name]

    def interface(self, name: str) -> Interface:
        return self._entries[name].interface

    def metadata(self, name: str) -> InterfaceMetadata:
        return self._entries[name].metadata

    def interfaces(self) -> tuple[Interface, ...]:
        return tuple(entry.interface for entry in self)

    def objects(self) -> dict[str, str]:
        """Full name → kind (interface, method, signal, property) of everything registered."""
        objects: dict[str, str] = {}
        for entry in self:
            objects[entry.interface.name] = "interface"
            for member in entry.interface.members:
                objects.setdefault(f"{entry.interface.name}.{member.name}", member.kind)
        return objects

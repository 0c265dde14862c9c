"""The registry: the interfaces of a folder of introspection files, with their metadata.

One object that the Sphinx directives, the policy generator, the trust notes and the compatibility
gate all read, so none of them re-parses or re-interprets the XML its own way.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from ..diagnostics.diagnostic import Diagnostic, Location
from ..diagnostics.rules import diagnostic
from .files import FileRefused, collect_paths, read_file
from .introspection import Interface
from .metadata import InterfaceMetadata, interface_metadata
from .parser import ParsedFile, parse_file
from .releases import Release, interface_at_release, parse_release

#: The file beside the interface files that says which QEMU release they describe.
RELEASE_FILE = "registry.toml"


@dataclass(frozen=True, slots=True)
class Entry:
    interface: Interface
    metadata: InterfaceMetadata
    path: str


class Registry:
    """Interfaces by name.  The first definition of a name wins; the checker reports duplicates."""

    def __init__(
        self, files: Sequence[ParsedFile], release: str | None = None, problems: Sequence[Diagnostic] = ()
    ) -> None:
        self.files = tuple(files)
        #: The QEMU release the registry describes (its ``registry.toml``), when it says.
        self.release = release
        self._problems = tuple(problems)
        self._entries: dict[str, Entry] = {}
        for parsed in self.files:
            for interface in parsed.interfaces:
                self._entries.setdefault(interface.name, Entry(interface, interface_metadata(interface), parsed.path))

    @classmethod
    def load(cls, paths: Iterable[str | os.PathLike[str]]) -> Registry:
        """Parse every ``*.xml`` under ``paths`` (files or folders), and the release a folder's
        ``registry.toml`` declares."""
        names = [os.fspath(path) for path in paths]
        release: str | None = None
        problems: list[Diagnostic] = []
        for name in names:
            if os.path.isdir(name):
                declared, problem = read_release(name)
                release = release or declared
                problems += [problem] if problem is not None else []
        return cls([parse_file(path) for path in collect_paths(names)], release, problems)

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        """What went wrong while parsing (not the checker's findings)."""
        return self._problems + tuple(d for parsed in self.files for d in parsed.diagnostics)

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        """The parse errors: a registry with any is incomplete, and its consumers refuse it."""
        return self._problems + tuple(d for parsed in self.files for d in parsed.errors)

    def at_release(self, release: Release) -> Registry:
        """The registry as QEMU ``release`` exported it: the interfaces and members whose Since
        is newer are not part of it (see `releases`)."""
        view = Registry((), self.release, self._problems)
        view.files = self.files
        for name, entry in self._entries.items():
            interface = interface_at_release(entry.interface, release)
            if interface is not None:
                view._entries[name] = Entry(interface, entry.metadata, entry.path)
        return view

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


def read_release(folder: str) -> tuple[str | None, Diagnostic | None]:
    """The ``qemu-release`` that ``folder/registry.toml`` declares, or what is wrong with it; (None,
    None) when there is no such file."""
    import tomllib

    path = os.path.join(folder, RELEASE_FILE)
    if not os.path.lexists(path):
        return None, None
    try:
        data = tomllib.loads(read_file(path).decode("utf-8"))
    except FileRefused as refused:
        return None, diagnostic("M303", Location(path), f"cannot read {RELEASE_FILE}: {refused.message}")
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        return None, diagnostic("M303", Location(path), f"cannot read {RELEASE_FILE}: {error}")
    value = data.get("qemu-release")
    if not isinstance(value, str) or parse_release(value) is None:
        message = f'{RELEASE_FILE}: qemu-release must be a QEMU release such as "11.1", not {value!r}'
        return None, diagnostic("M303", Location(path), message)
    return value, None

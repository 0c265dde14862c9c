"""Where the XML comes from: parse each file once per build, find registry interfaces by name,
and index the whole registry for references to objects the project does not render.

The cache is a plain module-level dict keyed by absolute path and holding the file's stat
signature (mtime and ctime in nanoseconds, size, inode) next to the parsed tree.  It is
parallel-safe because each Sphinx worker process has its own copy, and an edited file can never be
served stale because any write changes the signature.  It lives outside ``env`` on purpose: the
environment is pickled between builds, and parsed trees do not belong in it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..check.references import suffix_index
from ..diagnostics.frozen import record
from ..model.introspection import Interface
from ..model.parser import ParsedFile, parse_file
from ..model.registry import RELEASE_FILE, NameIndex, Registry, page_of, read_registry_file

_Signature = tuple[int, int, int, int]
_CACHE: dict[str, tuple[_Signature, ParsedFile]] = {}


def _signature(path: str) -> _Signature | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size, stat.st_ino)


def parse_cached(path: str) -> ParsedFile:
    """The parsed file at ``path``; parsed again only when the file changed on disk."""
    path = os.path.abspath(path)
    signature = _signature(path)
    if signature is None:
        return parse_file(path)  # the parser turns the I/O error into a located diagnostic
    cached = _CACHE.get(path)
    if cached is not None and cached[0] == signature:
        return cached[1]
    parsed = parse_file(path)
    _CACHE[path] = (signature, parsed)
    return parsed


def registry_files(folder: str) -> list[str]:
    """The ``*.xml`` files directly in ``folder``, sorted; empty when it does not exist."""
    try:
        names = sorted(name for name in os.listdir(folder) if name.endswith(".xml"))
    except OSError:
        return []
    return [os.path.join(folder, name) for name in names if os.path.isfile(os.path.join(folder, name))]


@record(frozen=True)
class Lookup:
    """The outcome of looking an interface up in the registry folder."""

    interface: Interface | None
    parsed: ParsedFile | None
    read: tuple[str, ...]  # every file read to get here: the caller's dependencies


def find_interface(folder: str, name: str) -> Lookup:
    """Find interface ``name``: in ``<folder>/<name>.xml`` first (the registry's layout, one
    parse), then in every other file of the folder."""
    preferred = os.path.join(folder, name + ".xml")
    read: list[str] = []
    if os.path.isfile(preferred):
        parsed = parse_cached(preferred)
        read.append(parsed.path)
        for interface in parsed.interfaces:
            if interface.name == name:
                return Lookup(interface, parsed, tuple(read))
        if parsed.node is None:
            # The file named after the interface is broken: report it, do not look elsewhere.
            return Lookup(None, parsed, tuple(read))
    for path in registry_files(folder):
        if path == preferred:
            continue
        parsed = parse_cached(path)
        read.append(parsed.path)
        for interface in parsed.interfaces:
            if interface.name == name:
                return Lookup(interface, parsed, tuple(read))
    return Lookup(None, None, tuple(read))


@record(frozen=True)
class RegistryIndex:
    """Every object of the registry in use, for references to objects the project does not
    render: full name → kind, the suffix index of `resolve`, and the ``[pages]`` of its
    published documentation."""

    kinds: Mapping[str, str]
    suffixes: Mapping[str, tuple[str, ...]]
    pages: Mapping[str, str]
    #: The interfaces by the names a directive may give them (``Console``), as the CLI takes them.
    interfaces: NameIndex

    def page(self, name: str) -> str | None:
        return page_of(name, self.pages)


_INDEX: dict[str, tuple[tuple[tuple[str, _Signature | None], ...], RegistryIndex]] = {}


def registry_index(folder: str) -> RegistryIndex:
    """The `RegistryIndex` of ``folder``, rebuilt only when one of its files changed on disk."""
    paths = registry_files(folder)
    key = tuple((path, _signature(path)) for path in [*paths, os.path.join(folder, RELEASE_FILE)])
    cached = _INDEX.get(folder)
    if cached is not None and cached[0] == key:
        return cached[1]
    kinds = Registry([parse_cached(path) for path in paths]).objects()
    interfaces = NameIndex((name for name, kind in kinds.items() if kind == "interface"), "interface")
    index = RegistryIndex(kinds, suffix_index(kinds), read_registry_file(folder).pages, interfaces)
    _INDEX[folder] = (key, index)
    return index

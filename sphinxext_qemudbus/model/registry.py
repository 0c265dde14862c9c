"""The registry: the interfaces of a folder of introspection files, with their metadata.

One object that the Sphinx directives, the policy generator, the trust notes and the compatibility
gate all read, so none of them re-parses or re-interprets the XML its own way.

Which registry is used is decided here too, once, for the Sphinx extension and every subcommand
(`registry_folder`): a folder the user names (``dbus_registry_path``, ``--registry``) wins;
otherwise the registry that ships in the package (`packaged_registry`), which is the repository's
``interfaces/`` folder installed as the package data ``sphinxext_qemudbus.interfaces``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import field

from ..diagnostics.diagnostic import Diagnostic, Location
from ..diagnostics.frozen import record
from ..diagnostics.rules import diagnostic
from .files import FileRefused, collect_paths, read_file
from .introspection import Interface
from .metadata import InterfaceMetadata, interface_metadata
from .names import interface_name_error
from .parser import ParsedFile, parse_file
from .releases import Release, interface_at_release, parse_release
from .tomlfile import TomlError, parse_toml

#: The file beside the interface files that says which QEMU release they describe.
RELEASE_FILE = "registry.toml"
#: The package whose folder is the registry shipped with this one (pyproject.toml maps it onto
#: the repository's ``interfaces/``).
PACKAGED_REGISTRY = "sphinxext_qemudbus.interfaces"


class RegistryLocationError(Exception):
    """The registry to use cannot be: a named folder that does not exist or holds no interface
    file, or a package installed without its registry.  The message names the setting to fix."""


def packaged_registry() -> str:
    """The folder of the registry that ships in the package, found through `importlib.resources`
    (in an editable install, the checkout's ``interfaces/``)."""
    import importlib.resources
    from pathlib import Path

    try:
        folder = importlib.resources.files(PACKAGED_REGISTRY)
    except ModuleNotFoundError:
        raise RegistryLocationError(
            f"the package has no registry ({PACKAGED_REGISTRY} is not installed): reinstall "
            "sphinxext-qemudbus, or name a registry folder"
        ) from None
    if not isinstance(folder, Path):  # a zip import: the tools read files by path
        raise RegistryLocationError(f"the packaged registry is not a folder on disk ({folder}): name a registry folder")
    return str(folder)


def registry_folder(explicit: str | os.PathLike[str] | None, setting: str) -> str:
    """The registry to read: ``explicit`` when it is given (the value of ``setting``, such as
    ``--registry`` or ``dbus_registry_path``), else the packaged one.  Raises
    `RegistryLocationError`, naming ``setting``, when that registry holds no interface file."""
    path = os.fspath(explicit) if explicit is not None and os.fspath(explicit) else packaged_registry()
    where = f"{setting} {path}" if explicit else f"the packaged registry {path}"
    if os.path.isdir(path):
        if not _holds_xml(path):
            raise RegistryLocationError(f"{where}: the folder holds no interface file (*.xml)")
    elif not os.path.exists(path):
        raise RegistryLocationError(f"{where}: no such folder")
    return path


# --- names as people type them ---------------------------------------------------------------


#: How alike (difflib's ratio) a registered name must be to the typed one to be suggested, and
#: how much less alike than the best a second suggestion may be.
_ALIKE, _AS_ALIKE = 0.6, 0.1


def closest(name: str, candidates: Iterable[str], limit: int = 3) -> tuple[str, ...]:
    """Up to ``limit`` of ``candidates`` that look most like ``name`` (case aside), best first,
    and only those nearly as alike as the best: the "did you mean" of every name a user gives
    (an interface, a member, a participant, a role, a deployment).  The names come from files
    that may be hostile: escape them where they are shown."""
    folded: dict[str, str] = {}
    for candidate in candidates:
        folded.setdefault(candidate.lower(), candidate)
    matcher = difflib.SequenceMatcher(b=name.lower())
    scored: list[tuple[float, str]] = []
    for key, candidate in folded.items():
        matcher.set_seq1(key)
        if matcher.real_quick_ratio() >= _ALIKE and matcher.quick_ratio() >= _ALIKE:
            ratio = matcher.ratio()
            if ratio >= _ALIKE:
                scored.append((ratio, candidate))
    scored.sort(key=lambda pair: -pair[0])
    best = scored[0][0] if scored else 0.0
    return tuple(candidate for ratio, candidate in scored[:limit] if ratio >= best - _AS_ALIKE)


@record(frozen=True)
class NameLookup:
    """What a name a user typed means among the registered ones: ``found`` (the full name), or
    the full names it is ambiguous between, or the closest names when it matches none."""

    name: str
    kind: str  # what is looked up, for the message: "interface", "member"
    found: str | None = None
    ambiguous: tuple[str, ...] = ()
    suggestions: tuple[str, ...] = ()

    def problem(self, where: str = "the registry") -> str | None:
        """Why nothing was found, in one sentence (names as they are: escape it to show it), or
        None when the name was found."""
        if self.found is not None:
            return None
        if self.ambiguous:
            return f"'{self.name}' is ambiguous: {', '.join(self.ambiguous)}"
        hint = f"; did you mean {' or '.join(self.suggestions)}?" if self.suggestions else ""
        return f"no {self.kind} '{self.name}' in {where}{hint}"


class NameIndex:
    """Registered names by what a user may type for each: the full name
    (``org.qemu.Display1.Console``) or its last elements (``Display1.Console``, ``Console``),
    which must then be unique.  The one lookup behind ``qemu-dbus registry show``, the
    ``dbus-interface`` directive and the names of a ``dbus-sequence``, so that each accepts the
    same short names and suggests the same way.  One entry per element of each name: linear in
    the names."""

    def __init__(self, names: Iterable[str], kind: str) -> None:
        self.kind = kind
        self._by_tail: dict[str, list[str]] = {}
        for full in dict.fromkeys(names):
            parts = full.split(".")
            for start in range(len(parts)):
                self._by_tail.setdefault(".".join(parts[start:]), []).append(full)

    def lookup(self, name: str) -> NameLookup:
        matches = self._by_tail.get(name, [])
        if name in matches:
            return NameLookup(name, self.kind, found=name)
        if len(matches) == 1:
            return NameLookup(name, self.kind, found=matches[0])
        if matches:
            return NameLookup(name, self.kind, ambiguous=tuple(sorted(matches)))
        # Compared as typed: with the names' last elements, as many as the typed name has.
        depth = name.count(".")
        tails = closest(name, (tail for tail in self._by_tail if tail.count(".") == depth))
        suggestions = dict.fromkeys(full for tail in tails for full in sorted(self._by_tail[tail]))
        return NameLookup(name, self.kind, suggestions=tuple(suggestions)[:3])


@record(frozen=True)
class Entry:
    interface: Interface
    metadata: InterfaceMetadata
    path: str


class Registry:
    """Interfaces by name.  The first definition of a name wins; the checker reports duplicates."""

    def __init__(
        self,
        files: Sequence[ParsedFile],
        release: str | None = None,
        problems: Sequence[Diagnostic] = (),
        pages: Mapping[str, str] | None = None,
    ) -> None:
        self.files = tuple(files)
        #: The QEMU release the registry describes (its ``registry.toml``), when it says.
        self.release = release
        #: Name prefix → the page of the registry's published documentation that renders those
        #: interfaces (``registry.toml``'s ``[pages]``).
        self.pages: Mapping[str, str] = dict(pages or {})
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
        pages: dict[str, str] = {}
        problems: list[Diagnostic] = []
        for name in names:
            if os.path.isdir(name):
                settings = read_registry_file(name)
                release = release or settings.release
                pages = {**settings.pages, **pages}
                problems += settings.problems
        return cls([parse_file(path) for path in collect_paths(names)], release, problems, pages)

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        """What went wrong while parsing (not the checker's findings)."""
        return self._problems + tuple(d for parsed in self.files for d in parsed.diagnostics)

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        """The parse errors: a registry with any is incomplete, and its consumers refuse it."""
        return self._problems + tuple(d for parsed in self.files for d in parsed.errors)

    def at_release(self, release: Release, platform: str | None = None) -> Registry:
        """The registry as QEMU ``release`` exported it (on ``platform``, or on each platform):
        the interfaces and members whose Since is newer are not part of it, nor the platform
        variants dated later (see `releases`)."""
        view = Registry((), self.release, self._problems, self.pages)
        view.files = self.files
        for name, entry in self._entries.items():
            interface = interface_at_release(entry.interface, release, platform)
            if interface is not None:
                view._entries[name] = Entry(interface, entry.metadata, entry.path)
        return view

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(sorted(self._entries.values(), key=lambda e: e.interface.name))

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, name: str) -> NameLookup:
        """Interface ``name``, by its full name or its last elements (`NameIndex`)."""
        return NameIndex(self._entries, "interface").lookup(name)

    def entry(self, name: str) -> Entry:
        return self._entries[name]

    def interface(self, name: str) -> Interface:
        return self._entries[name].interface

    def metadata(self, name: str) -> InterfaceMetadata:
        return self._entries[name].metadata

    def interfaces(self) -> tuple[Interface, ...]:
        return tuple(entry.interface for entry in self)

    def page(self, name: str) -> str | None:
        """The published page of interface or member ``name``: that of the longest ``[pages]``
        prefix it falls under."""
        return page_of(name, self.pages)

    def objects(self) -> dict[str, str]:
        """Full name → kind (interface, method, signal, property) of everything registered."""
        objects: dict[str, str] = {}
        for entry in self:
            objects[entry.interface.name] = "interface"
            for member in entry.interface.members:
                objects.setdefault(f"{entry.interface.name}.{member.name}", member.kind)
        return objects


def _holds_xml(folder: str) -> bool:
    """Whether ``folder`` itself holds a ``*.xml`` file (the registry's layout: one file per
    interface); stops at the first, and never walks below, so naming ``/`` by mistake is cheap."""
    try:
        with os.scandir(folder) as entries:
            return any(entry.name.endswith(".xml") and entry.is_file() for entry in entries)
    except OSError:
        return False


def page_of(name: str, pages: Mapping[str, str]) -> str | None:
    """The page of the longest prefix of ``pages`` that ``name`` is, or is under."""
    best = max((prefix for prefix in pages if name == prefix or name.startswith(prefix + ".")), key=len, default=None)
    return pages[best] if best is not None else None


@record(frozen=True)
class RegistrySettings:
    """What ``registry.toml`` says: the QEMU release, the published pages, and what is wrong."""

    release: str | None = None
    pages: Mapping[str, str] = field(default_factory=dict)
    problems: tuple[Diagnostic, ...] = ()


_PAGE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*\Z")


def read_registry_file(folder: str) -> RegistrySettings:
    """``folder/registry.toml``: the ``qemu-release`` it declares and its ``[pages]`` (interface
    name prefix → page path, without suffix), or what is wrong with it (M303).  Nothing when there
    is no such file."""
    path = os.path.join(folder, RELEASE_FILE)
    if not os.path.lexists(path):
        return RegistrySettings()
    try:
        data = parse_toml(read_file(path).decode("utf-8"), path)
    except FileRefused as refused:
        return RegistrySettings(
            problems=(diagnostic("M303", Location(path), f"cannot read {RELEASE_FILE}: {refused.message}"),)
        )
    except UnicodeDecodeError as error:
        return RegistrySettings(problems=(diagnostic("M303", Location(path), f"cannot read {RELEASE_FILE}: {error}"),))
    except TomlError as error:
        message = f"cannot read {RELEASE_FILE}: {error.message}"
        return RegistrySettings(problems=(diagnostic("M303", error.location, message),))
    problems: list[Diagnostic] = []
    value = data.get("qemu-release")
    release = value if isinstance(value, str) and parse_release(value) is not None else None
    if release is None:
        message = f'{RELEASE_FILE}: qemu-release must be a QEMU release such as "11.1", not {value!r}'
        problems.append(diagnostic("M303", Location(path), message))
    raw_pages = data.get("pages", {})
    pages: dict[str, str] = {}
    if not isinstance(raw_pages, dict):
        problems.append(diagnostic("M303", Location(path), f"{RELEASE_FILE}: [pages] must be a table"))
        raw_pages = {}
    for prefix, page in raw_pages.items():
        # A page becomes part of a URL: a relative path of plain characters, no scheme, no "..".
        if not isinstance(page, str) or not _PAGE.match(page) or ".." in page or interface_name_error(prefix):
            message = f"{RELEASE_FILE}: [pages] {prefix!r} = {page!r}: expected an interface name prefix and a relative page path"
            problems.append(diagnostic("M303", Location(path), message))
            continue
        pages[prefix] = page
    return RegistrySettings(release, pages, tuple(problems))

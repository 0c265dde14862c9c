"""Listing the introspection files under the paths a user names, and reading any file at all.

Every stage lists files the same way (the checker, the registry loader, the compatibility gate),
and every file the tools read goes through `read_file` (introspection XML, the compatibility
baseline file, deployment and registry TOML, Sphinx's ``dbus-doc`` files), so the listing and the
reading live below all of them, with one set of rules: regular files only, opened without
blocking, one size bound, and every failure a located diagnostic instead of an exception.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from ..diagnostics.diagnostic import Diagnostic, Location
from ..diagnostics.rules import diagnostic

#: The largest file any of the tools reads.  QEMU's largest interface file is about 60 KiB.
MAX_FILE_SIZE = 4 * 1024 * 1024
# Opening a FIFO for reading blocks until a writer comes, unless non-blocking; a terminal must
# not become the process's controlling terminal.  (Neither flag exists on Windows.)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class FileRefused(Exception):
    """A file that was not read, and why: the rule code (X004 too large, X006 unreadable, X007
    not a regular file) and a message, for a located diagnostic or an error line."""

    def __init__(self, path: str, code: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.code = code
        self.message = message

    def diagnostic(self) -> Diagnostic:
        return diagnostic(self.code, Location(self.path), self.message)


def read_file(path: str | os.PathLike[str], limit: int = MAX_FILE_SIZE) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes.  A FIFO, a device, a socket or a
    folder is refused without reading it (a FIFO would block, ``/dev/zero`` never ends), and so
    is a larger file, before its first byte is read.  Raises `FileRefused`, never OSError."""
    name = os.fspath(path)
    try:
        _admit(name, os.stat(name), limit)
        descriptor = os.open(name, _OPEN_FLAGS)
    except OSError as error:
        raise FileRefused(name, "X006", f"cannot read file: {error.strerror or error}") from None
    try:
        with open(descriptor, "rb") as stream:
            # What was opened, not what the path named a moment ago.
            size = _admit(name, os.fstat(descriptor), limit)
            # Sized from the file: reading the whole bound would allocate it for every file.  A
            # regular file that reports no size (/proc) is read up to the bound.
            data = stream.read(size + 1 if size else limit + 1)
            if size and len(data) > size:  # it grew since fstat
                data += stream.read(limit + 1 - len(data))
    except OSError as error:
        raise FileRefused(name, "X006", f"cannot read file: {error.strerror or error}") from None
    if len(data) > limit:
        raise FileRefused(name, "X004", _too_large(limit))
    return data


def _admit(name: str, status: os.stat_result, limit: int) -> int:
    """The file's size, or `FileRefused` when it is not a regular file or is too large."""
    if stat.S_ISDIR(status.st_mode):
        # A folder that could not be listed is kept as a path to read (`_xml_files`): say why.
        try:
            os.scandir(name).close()
        except OSError as error:
            raise FileRefused(name, "X006", f"cannot read folder: {error.strerror or error}") from None
    if not stat.S_ISREG(status.st_mode):
        kind = next((label for test, label in _KINDS if test(status.st_mode)), "not a regular file")
        raise FileRefused(name, "X007", f"{kind}, not a regular file: only regular files are read")
    if status.st_size > limit:
        raise FileRefused(name, "X004", _too_large(limit))
    return status.st_size


def _too_large(limit: int) -> str:
    return f"file is larger than {limit // (1024 * 1024)} MiB"


def collect_paths(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Expand folders into the ``*.xml`` files under them, in path order (folder by folder, as
    ``sorted(Path.rglob())`` orders them); files are kept as given.  Symbolic links to folders are
    not followed.  Raises FileNotFoundError for a path that does not exist."""
    return [path for paths_of_one in list_inputs(paths) for path in paths_of_one]


def list_inputs(paths: Iterable[str | os.PathLike[str]]) -> list[list[str]]:
    """`collect_paths`, one list per path named: the caller can tell a folder with no XML at
    all (an empty list: a typo, or the wrong folder) from one whose files were all fine."""
    result: list[list[str]] = []
    for raw in paths:
        path = os.fspath(raw)
        if os.path.isdir(path):
            result.append(_xml_files(path))
        elif os.path.lexists(path):
            # Kept even when it cannot be followed (a symbolic link loop, a dangling link):
            # reading it reports why, where silently dropping it would hide it.
            result.append([str(Path(path))])
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
            elif entry.name.endswith(".xml") and _is_file(entry):
                found.append(((*parts, entry.name), entry.path))
    found.sort()
    return [path for _, path in found]


def _is_file(entry: os.DirEntry[str]) -> bool:
    """Whether a folder entry is a file to read: a regular file, or a symbolic link that cannot be
    followed (a loop): reading that reports it.  FIFOs, devices and sockets are not files to
    read, as ``Path.rglob`` users expect; named on the command line they are refused (X007)."""
    try:
        return entry.is_file()
    except OSError:
        return True

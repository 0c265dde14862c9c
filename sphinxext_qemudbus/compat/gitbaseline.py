"""Read the interfaces of a git revision, for ``qemu-dbus diff --baseline``.

The files are read straight from git's object store (``git ls-tree`` and one ``git cat-file
--batch``), never checked out: nothing in the work tree or the index changes, and each file is named
``REV:path`` in diagnostics, so a removal found in the baseline points at the released file.

Every failure is a `BaselineError` whose message says what to run, because the gate most often fails
this way in CI: a shallow clone, a tag that was not fetched, a run outside the repository.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from ..diagnostics.diagnostic import Location
from ..diagnostics.frozen import record
from ..diagnostics.rules import diagnostic
from ..model.files import MAX_FILE_SIZE, FileRefused, read_file
from ..model.parser import ParsedFile, parse_bytes

_HASH = re.compile(r"[0-9a-f]{7,64}\Z")


class BaselineError(Exception):
    """The baseline cannot be read; the message says why and what to do."""


@record(frozen=True)
class Baseline:
    """The introspection files under one path at one revision."""

    revision: str
    commit: str
    files: tuple[ParsedFile, ...]


def read_baseline_file(path: str | os.PathLike[str]) -> str:
    """The revision a baseline file pins: its only word once ``#`` comments and blank lines are
    dropped."""
    try:
        text = read_file(path).decode("utf-8")
    except FileRefused as refused:
        raise BaselineError(f"cannot read baseline file {os.fspath(path)}: {refused.message}") from None
    except UnicodeDecodeError as error:
        raise BaselineError(f"cannot read baseline file {os.fspath(path)}: not UTF-8 ({error.reason})") from None
    words = [word for line in text.splitlines() for word in line.partition("#")[0].split()]
    if len(words) != 1:
        found = "nothing" if not words else f"{len(words)} words"
        raise BaselineError(
            f"baseline file {os.fspath(path)} must name exactly one git revision (a release tag or a commit), "
            f"found {found}"
        )
    return words[0]


def _git(args: Sequence[str], cwd: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            check=False,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
        )
    except FileNotFoundError:
        raise BaselineError(
            "git is not installed; install git, or compare two folders with 'qemu-dbus diff OLD NEW'"
        ) from None


def _stderr(result: subprocess.CompletedProcess[bytes]) -> str:
    return result.stderr.decode("utf-8", "replace").strip()


def _toplevel(cwd: str) -> str:
    result = _git(["rev-parse", "--show-toplevel"], cwd)
    if result.returncode != 0:
        raise BaselineError(
            f"{os.path.abspath(cwd)} is not inside a git work tree, so there is no revision to compare with; "
            "run this from a clone of the repository, or compare two folders with 'qemu-dbus diff OLD NEW'"
        )
    return result.stdout.decode("utf-8", "replace").strip()


def _commit(revision: str, top: str) -> str:
    if not revision or revision.startswith("-"):
        raise BaselineError(f"{revision!r} is not a git revision")
    result = _git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}"], top)
    if result.returncode == 0:
        return result.stdout.decode("ascii").strip()
    shallow = _git(["rev-parse", "--is-shallow-repository"], top).stdout.strip() == b"true"
    if shallow:
        raise BaselineError(
            f"revision {revision!r} is not in this shallow clone; run 'git fetch --unshallow --tags' "
            "(in GitHub Actions: actions/checkout with fetch-depth: 0)"
        )
    raise BaselineError(
        f"unknown revision {revision!r}; if it is a release tag or a commit from upstream, run 'git fetch --tags', "
        "otherwise fix the revision (git tag --list shows the tags)"
    )


def _is_pinned(revision: str, top: str) -> bool:
    """Whether ``revision`` names a fixed point (a tag or a commit hash), not HEAD or a branch,
    which move with every commit and would make the gate compare a tree with itself."""
    if _HASH.match(revision):
        return True
    result = _git(["rev-parse", "--verify", "--symbolic-full-name", "--end-of-options", revision], top)
    return result.returncode == 0 and result.stdout.decode("utf-8", "replace").strip().startswith("refs/tags/")


def _read_blobs(object_ids: Sequence[str], top: str) -> list[bytes]:
    """The blobs' bytes, in one ``git cat-file --batch`` (the caller leaves out any larger than
    the size bound, so git never streams one into memory)."""
    if not object_ids:
        return []
    result = _git(["cat-file", "--batch"], top, stdin="".join(f"{oid}\n" for oid in object_ids).encode("ascii"))
    if result.returncode != 0:
        raise BaselineError(f"git cat-file failed: {_stderr(result)}")
    output, position, blobs = result.stdout, 0, []
    for oid in object_ids:
        end = output.index(b"\n", position)
        header = output[position:end].split()
        if len(header) != 3 or header[1] != b"blob":
            raise BaselineError(f"git object {oid} is missing from this clone; run 'git fetch --unshallow --tags'")
        size = int(header[2])
        blobs.append(output[end + 1 : end + 1 + size])
        position = end + 1 + size + 1
    return blobs


def load_baseline(
    revision: str, path: str | os.PathLike[str], *, pinned: bool = False, cwd: str | None = None
) -> Baseline:
    """Parse the ``*.xml`` files under ``path`` (a work-tree path, relative to ``cwd``) as they are
    at ``revision``.  No files at all (the path did not exist then) is not an error: the caller
    decides what an empty baseline means.  With ``pinned``, HEAD and branch names are refused."""
    cwd = cwd or os.getcwd()
    top = _toplevel(cwd)
    commit = _commit(revision, top)
    if pinned and not _is_pinned(revision, top):
        raise BaselineError(
            f"the baseline must be a release tag or a commit hash, not {revision!r}, which moves with every "
            "commit; pin it with 'git rev-parse --verify HEAD' or a tag"
        )
    absolute = Path(os.path.realpath(os.path.join(cwd, os.fspath(path))))
    try:
        relative = absolute.relative_to(os.path.realpath(top))
    except ValueError:
        raise BaselineError(f"{os.fspath(path)} is outside the git work tree {top}") from None
    spec = PurePosixPath(*relative.parts).as_posix() if relative.parts else "."
    # -l: each blob's size, so one larger than the size bound is refused without reading it.
    listing = _git(["ls-tree", "-r", "-l", "-z", "--full-tree", commit, "--", spec], top)
    if listing.returncode != 0:
        raise BaselineError(f"git ls-tree failed for {revision}: {_stderr(listing)}")
    entries: list[tuple[str, str]] = []
    too_large: list[str] = []
    for line in listing.stdout.split(b"\0"):
        if not line:
            continue
        meta, _, name = line.partition(b"\t")
        mode, kind, oid, size = meta.decode("ascii").split()
        filename = name.decode("utf-8", "surrogateescape")
        # Symbolic links are skipped: their blob is a link target, not XML.
        if kind == "blob" and mode != "120000" and filename.endswith(".xml"):
            if int(size) > MAX_FILE_SIZE:
                too_large.append(filename)
            else:
                entries.append((filename, oid))
    entries.sort()
    blobs = _read_blobs([oid for _, oid in entries], top)
    files = [parse_bytes(data, f"{revision}:{name}") for (name, _), data in zip(entries, blobs)]
    for large in too_large:
        where = f"{revision}:{large}"
        message = f"file is larger than {MAX_FILE_SIZE // (1024 * 1024)} MiB"
        files.append(ParsedFile(where, None, (diagnostic("X004", Location(where), message),)))
    files.sort(key=lambda parsed: parsed.path)
    return Baseline(revision, commit, tuple(files))

"""``qemu-dbus diff``: the API-compatibility gate on the command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Sequence

from .._version import __version__
from ..compat.diff import diff_interfaces
from ..compat.gitbaseline import BaselineError, load_baseline, read_baseline_file
from ..diagnostics.diagnostic import Diagnostic, Severity
from ..diagnostics.output import FORMATS, counted, error_line, plural, printable, render
from ..model.files import list_inputs
from ..model.parser import ParsedFile, parse_file
from ..model.registry import RegistryLocationError, registry_folder

EXIT_OK, EXIT_INCOMPATIBLE, EXIT_USAGE = 0, 1, 2


def add_cli(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``qemu-dbus diff`` on the CLI's subparsers."""
    parser = commands.add_parser(
        "diff",
        help="report API-compatibility changes between two versions of the interfaces",
        description="Compare two versions of D-Bus introspection XML: 'diff OLD NEW' with files or "
        "folders, or 'diff --baseline REV [PATH]' against PATH at a git revision (default PATH: "
        "the registry in use, as 'qemu-dbus registry path' prints it; it must be in a git work tree).  Removed or changed API is an error on stable interfaces, added API a warning, "
        "renames, deprecations and documentation notes.  Exit status: 0 when there is no error, 1 "
        "when there is, 2 for usage, I/O, XML or git problems.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="OLD NEW, or with --baseline the work-tree PATH")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--baseline", metavar="REV", help="compare PATH with the same path at git revision REV")
    source.add_argument(
        "--baseline-file",
        metavar="FILE",
        help="like --baseline, with the revision read from FILE (ci/compat-baseline); it must pin a tag or a commit",
    )
    parser.add_argument("--format", choices=FORMATS, default="text", dest="fmt")
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    parser.set_defaults(func=run_diff)


def _fail(message: str) -> int:
    print(error_line("diff", message), file=sys.stderr)
    return EXIT_USAGE


def _files(path: str) -> list[str]:
    """The XML files of one side; a folder with none is an error (a typo would otherwise make
    every interface of the other side look added or removed)."""
    (found,) = list_inputs([path])
    if not found:
        raise _NoXml(path)
    return found


class _NoXml(Exception):
    pass


def run_diff(args: argparse.Namespace) -> int:
    """The subcommand: load both sides, print the findings, return the exit status."""
    paths: list[str] = list(args.paths)
    revision: str | None = args.baseline
    try:
        if args.baseline_file is not None:
            revision = read_baseline_file(args.baseline_file)
        if revision is not None:
            if len(paths) > 1:
                return _fail("with --baseline give at most one PATH (the work-tree files to compare)")
            if paths and not os.path.exists(paths[0]):
                return _fail(f"{paths[0]}: no such file or folder")
            new_path = paths[0] if paths else registry_folder(None, "PATH")
            baseline = load_baseline(revision, new_path, pinned=args.baseline_file is not None)
            old_files = list(baseline.files)
            old_label = revision if baseline.commit.startswith(revision) else f"{revision} ({baseline.commit[:12]})"
            new_paths = [new_path]
        else:
            if len(paths) != 2:
                return _fail("give OLD and NEW (files or folders), or --baseline REV [PATH]")
            old_files = [parse_file(p) for p in _files(paths[0])]
            old_label = paths[0]
            new_paths = [paths[1]]
        new_files = [parse_file(p) for p in _files(new_paths[0])]
    except _NoXml as empty:
        return _fail(f"{empty}: no *.xml file in this folder")
    except (BaselineError, RegistryLocationError) as error:
        return _fail(str(error))
    except FileNotFoundError as error:
        return _fail(f"{error}: no such file or folder")

    def broken(files: Sequence[ParsedFile]) -> list[Diagnostic]:
        return [d for f in files for d in f.errors]

    problems = broken(old_files) + broken(new_files)
    if problems:
        sys.stdout.write(render(problems, args.fmt, version=__version__))
        unread = sum(1 for d in problems if d.code in ("X006", "X007"))
        if unread:
            return _fail(f"cannot compare: {plural(unread, 'file')} above could not be read")
        return _fail(
            f"cannot compare: {plural(len(problems), 'XML error')} above "
            "would make parts of the interfaces look removed; fix them first (qemu-dbus check shows them all)"
        )
    old_interfaces = [i for f in old_files for i in f.interfaces]
    new_interfaces = [i for f in new_files for i in f.interfaces]
    if revision is not None and not old_interfaces:
        if args.fmt == "text":
            print(
                printable(f"qemu-dbus diff: baseline {old_label} has no interfaces; nothing to compare"),
                file=sys.stderr,
            )
        else:
            sys.stdout.write(render([], args.fmt, version=__version__))
        return EXIT_OK

    findings = diff_interfaces(old_interfaces, new_interfaces)
    sys.stdout.write(render(findings, args.fmt, version=__version__))
    counts = Counter(d.severity for d in findings)
    if args.fmt == "text" and not args.quiet:
        old_count, new_count = len({i.name for i in old_interfaces}), len({i.name for i in new_interfaces})
        compared = f"{plural(old_count, 'interface')} in {old_label} against {new_count} in {', '.join(new_paths)}"
        print(printable(f"qemu-dbus diff: {compared}: {counted(findings) or 'no changes'}"), file=sys.stderr)
    return EXIT_INCOMPATIBLE if counts[Severity.ERROR] else EXIT_OK

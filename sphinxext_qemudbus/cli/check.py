"""``qemu-dbus check`` and ``qemu-dbus rules``: the checker on the command line."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap

from .._version import __version__
from ..check.checker import check_paths
from ..check.summary import CheckOptions
from ..diagnostics.output import FORMATS, error_line, fails, grouped_text, printable, render, summary
from ..diagnostics.rules import GROUPS, PROFILES, RULES, Rule, expand_selection
from ..model.metadata import KEYS, NAMESPACE

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
DEFAULT_PATH = "interfaces/"
DEFAULT_CACHE = ".qemu-dbus-cache"
#: Files that could not be read at all: an I/O error, exit status 2 (as for a missing path).
IO_CODES = frozenset({"X006", "X007", "X008"})


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_cli(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``qemu-dbus check`` and ``qemu-dbus rules`` on the CLI's subparsers."""
    check = commands.add_parser(
        "check",
        help="check D-Bus introspection XML (names, signatures, guidelines, docs, references)",
        description="Check D-Bus introspection XML files.  Exit status: 0 when there is no error "
        "(with --strict, no warning either), 1 when there are findings, 2 for usage or I/O errors.",
    )
    check.add_argument("paths", nargs="*", metavar="PATH", help=f"files or folders (default: {DEFAULT_PATH})")
    check.add_argument("--strict", action="store_true", help="fail on warnings too")
    check.add_argument(
        "--profile",
        choices=PROFILES,
        default="qemu",
        help="qemu: the registry's rules (prefix, metadata); generic: any project's D-Bus XML",
    )
    check.add_argument("--format", choices=FORMATS, default="text", dest="fmt")
    check.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="CODES",
        help="only these codes, prefixes (D, G4) or rule names; comma-separated",
    )
    check.add_argument(
        "--ignore", action="append", default=[], metavar="CODES", help="skip these codes, prefixes or rule names"
    )
    check.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    check.add_argument(
        "-j",
        "--jobs",
        type=positive_int,
        default=None,
        metavar="N",
        help="processes for large inputs, at least 1 (default: one per CPU)",
    )
    check.add_argument(
        "--cache-dir",
        default=DEFAULT_CACHE,
        metavar="DIR",
        help=f"keep per-file results here so unchanged files are not checked again (default: {DEFAULT_CACHE})",
    )
    check.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    check.set_defaults(func=run_check)

    rules = commands.add_parser(
        "rules",
        help="list the rule codes, or show some in full",
        description="List every rule: code, name, severity, profiles and what it checks.  With CODEs, "
        "show those rules in full: what each checks, how to fix it and, for the registry metadata "
        "rules, every org.qemu.Registry.* key.",
    )
    rules.add_argument(
        "codes", nargs="*", metavar="CODE", help="rules to show in full: codes (M301), prefixes (M3) or names"
    )
    rules.add_argument("--format", choices=("text", "json"), default="text", dest="fmt")
    rules.set_defaults(func=run_rules)


def run_check(args: argparse.Namespace) -> int:
    try:
        select = expand_selection(args.select) if args.select else None
        ignore = expand_selection(args.ignore)
    except ValueError as error:
        print(error_line("check", str(error)), file=sys.stderr)
        return EXIT_USAGE
    if not args.paths and not os.path.exists(DEFAULT_PATH):
        print(
            f"qemu-dbus check: error: no PATH given and no {DEFAULT_PATH} folder here; name the files or folders "
            'to check (the installed registry: qemu-dbus check "$(qemu-dbus registry path)")',
            file=sys.stderr,
        )
        return EXIT_USAGE
    paths = args.paths or [DEFAULT_PATH]
    try:
        cache_dir = None if args.no_cache else args.cache_dir
        result = check_paths(paths, CheckOptions(args.profile, select, ignore), jobs=args.jobs, cache_dir=cache_dir)
    except FileNotFoundError as error:
        print(error_line("check", f"{error}: no such file or folder"), file=sys.stderr)
        return EXIT_USAGE
    for note in result.notes:
        print(printable(f"qemu-dbus check: warning: {note}"), file=sys.stderr)
    if args.fmt == "text":
        sys.stdout.write(grouped_text(result.diagnostics, result.scopes))
    else:
        sys.stdout.write(render(result.diagnostics, args.fmt, version=__version__))
    for folder in result.empty:
        print(error_line("check", f"{folder}: no *.xml file in this folder"), file=sys.stderr)
    if args.fmt == "text" and not args.quiet and result.files:
        print(summary(result.diagnostics, result.files), file=sys.stderr)
    if result.empty or any(d.code in IO_CODES for d in result.diagnostics):
        return EXIT_USAGE
    return EXIT_FINDINGS if fails(result.diagnostics, args.strict) else EXIT_OK


def run_rules(args: argparse.Namespace) -> int:
    try:
        chosen = [rule for code, rule in RULES.items() if code in expand_selection(args.codes)] if args.codes else None
    except ValueError as error:
        print(error_line("rules", str(error)), file=sys.stderr)
        return EXIT_USAGE
    if args.fmt == "json":
        import json

        rows = [
            {
                "code": r.code,
                "name": r.name,
                "severity": r.severity.value,
                "group": r.group,
                "profiles": list(r.profiles),
                "doc": r.doc,
                "hint": r.hint,
            }
            for r in (chosen if chosen is not None else RULES.values())
        ]
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if chosen is not None:
        sys.stdout.write("\n".join("\n".join(_rule_lines(rule)) + "\n" for rule in chosen))
        return EXIT_OK
    group = ""
    for rule in RULES.values():
        if rule.group != group:
            group = rule.group
            print(f"\n{GROUPS[rule.code[0]]}")
        profiles = "" if len(rule.profiles) == len(PROFILES) else f" ({', '.join(rule.profiles)} profile)"
        print(f"  {rule.code}  {rule.name:<32} {rule.severity.value:<8}{profiles}  {rule.doc}")
    return EXIT_OK


def _rule_lines(rule: Rule) -> list[str]:
    """One rule in full, for ``qemu-dbus rules CODE``: the place the hints of ``check`` point to."""
    profiles = "" if len(rule.profiles) == len(PROFILES) else f", {', '.join(rule.profiles)} profile only"
    lines = [f"{rule.code}  {rule.name}  ({rule.severity.value}{profiles}; {rule.group})"]
    lines += ["  " + line for line in _wrap(rule.doc, 96)]
    if rule.hint:
        lines += ["  " + line for line in _wrap(f"Fix: {rule.hint}", 96)]
    if rule.code.startswith("M"):
        lines += ["", f"  The {NAMESPACE}* annotations:"]
        for key in KEYS:
            required = "required" if key.required else "optional"
            lines.append(f"    {key.key}  (on {' and '.join(key.applies_to)}, {required}): {_plain(key.value)}")
            lines += ["      " + line for line in _wrap(_plain(key.doc), 92)]
    return lines


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_on_hyphens=False)


def _plain(text: str) -> str:
    """The keys' documentation is reST: its literals read the same without the backquotes."""
    return text.replace("``", "")

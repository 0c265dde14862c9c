"""``qemu-dbus conform``: a running peer against the registry, on the command line."""

from __future__ import annotations

import argparse
import os
import sys

from .._version import __version__
from ..diagnostics.diagnostic import Diagnostic
from ..diagnostics.output import FORMATS, counted, error_line, fails, printable, render
from ..live.conform import (
    DEFAULT_TIMEOUT,
    LiveBus,
    LiveError,
    compare_object,
    connect,
    current_platform,
    introspect_objects,
    read_bus_facts,
)
from ..model.introspection import PLATFORMS
from ..model.names import bus_name_error, object_path_error
from ..model.registry import Registry

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def add_cli(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``qemu-dbus conform`` on the CLI's subparsers."""
    parser = commands.add_parser(
        "conform",
        help="compare a running peer's D-Bus objects with the registry",
        description="Introspect the objects a peer exports on a bus and compare every org.qemu.* "
        "interface with the registry.  Exit status: 0 when there is no error (with --strict, no "
        "warning either), 1 when there are findings, 2 for usage or connection problems.",
    )
    parser.add_argument("--address", required=True, help="the bus: a D-Bus address, or SESSION or SYSTEM")
    parser.add_argument("--dest", required=True, metavar="NAME", help="the peer's bus name (QEMU: org.qemu)")
    parser.add_argument(
        "--object",
        action="append",
        default=[],
        metavar="PATH",
        dest="objects",
        help="an object to check (repeatable; default: / and everything below it)",
    )
    parser.add_argument("--recursive", action="store_true", help="also check every object below each --object")
    parser.add_argument("--registry", default="interfaces/", metavar="PATH", help="the registry (default: interfaces/)")
    parser.add_argument(
        "--platform",
        choices=tuple(PLATFORMS),
        default=current_platform(),
        help="the peer's platform, for the registry's platform variants (default: this machine's)",
    )
    parser.add_argument(
        "--no-values", action="store_true", help="do not read property values (GetAll runs the peer's getters)"
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS", help="per call")
    parser.add_argument("--strict", action="store_true", help="fail on warnings too")
    parser.add_argument("--format", choices=FORMATS, default="text", dest="fmt")
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    parser.set_defaults(func=run_conform)


def _fail(message: str) -> int:
    print(error_line("conform", message), file=sys.stderr)
    return EXIT_USAGE


def run_conform(args: argparse.Namespace) -> int:
    if problem := bus_name_error(args.dest):
        return _fail(f"invalid --dest {args.dest!r}: {problem}")
    for path in args.objects:
        if problem := object_path_error(path):
            return _fail(f"invalid --object {path!r}: {problem}")
    if not os.path.exists(args.registry):
        return _fail(f"{args.registry}: no such file or folder")
    registry = Registry.load([args.registry])
    if registry.errors:
        sys.stdout.write(render(registry.errors, args.fmt, version=__version__))
        return _fail("the registry has XML errors (above); qemu-dbus check shows them all")
    roots = args.objects or ["/"]
    recursive = args.recursive or not args.objects
    try:
        connection = connect(args.address)
    except LiveError as error:
        return _fail(str(error))
    with connection:
        bus = LiveBus(connection, args.timeout)
        objects = introspect_objects(bus, args.dest, roots, recursive)
        facts = read_bus_facts(bus, args.dest, registry, objects, args.platform, read_values=not args.no_values)
    findings = [d for live in objects for d in compare_object(registry, args.dest, live, args.platform, facts)]
    findings.sort(key=Diagnostic.sort_key)
    sys.stdout.write(render(findings, args.fmt, version=__version__))
    if args.fmt == "text" and not args.quiet:
        checked = sum(1 for live in objects if live.node is not None)
        print(
            printable(
                f"qemu-dbus conform: {checked} of {len(objects)} objects of {args.dest} introspected "
                f"({args.platform}): {counted(findings) or 'conforms to the registry'}"
            ),
            file=sys.stderr,
        )
    return EXIT_FINDINGS if fails(findings, args.strict) else EXIT_OK

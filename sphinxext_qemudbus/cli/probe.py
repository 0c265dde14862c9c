"""``qemu-dbus probe``: what a less-trusted peer can do to a real QEMU, on the command line.

Only against a QEMU the tool launches itself (``--launch``), or, with ``--allow-destructive``,
against a peer on an existing bus: the probe's calls crash and hang QEMU on purpose.  Never the
session or the system bus by default.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from .._version import __version__
from ..diagnostics.diagnostic import Diagnostic, Location
from ..diagnostics.output import FORMATS, counted, fails, printable, render
from ..diagnostics.rules import diagnostic
from ..live.address import AddressError, parse_address
from ..live.conform import current_platform, jeepney_missing
from ..model.names import bus_name_error
from ..model.registry import Registry
from ..model.releases import Release, feature_release, parse_release, release_text
from .live_options import LiveCommand, UsageError, add_qemu_options, load_registry, qemu_release, seconds
from .registry import add_registry_option

EXIT_OK, EXIT_FINDINGS = 0, 1
COMMAND = LiveCommand("probe")
_fail, _say = COMMAND.fail, COMMAND.say
#: The default whole-run deadline: a probe of QEMU's display ends within 10 minutes.
DEFAULT_DEADLINE = 540.0


def add_cli(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``qemu-dbus probe`` on the CLI's subparsers."""
    parser = commands.add_parser(
        "probe",
        help="call every member a peer may call on QEMU with values from the registry, and report crashes, hangs, stalls",
        description="Launch QEMU on a private bus (--launch) and call every method and writable property the "
        "registry says a peer may call on it, with values derived from the registry (type boundaries, the "
        "documented ranges and bounds, every kind of file descriptor), registrations first; answer what QEMU "
        "waits for from its listeners in every way a peer can.  After each call: did QEMU crash, hang, stall, "
        "or break the registry's contract?  Crashing integers are bisected to their threshold, and every "
        "finding comes with a one-line command that reproduces it.  Only on a throwaway VM.  Exit status: 0 "
        "when nothing was found, 1 when something was, 2 for usage or connection problems.",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--launch",
        metavar="QEMU",
        help="start a private dbus-daemon and this QEMU binary on it (relaunched after every crash or hang), probe it, "
        "then stop both",
    )
    where.add_argument(
        "--address",
        help="probe a peer on an existing bus instead (needs --allow-destructive: the peer will crash or hang)",
    )
    parser.add_argument("--dest", metavar="NAME", default="org.qemu", help="the peer's bus name (default: org.qemu)")
    parser.add_argument(
        "--allow-destructive",
        action="store_true",
        help="with --address: probe anyway, knowing the peer may crash or hang (only on a throwaway VM)",
    )
    add_registry_option(parser)
    add_qemu_options(parser, "(default: with --launch, what QEMU --version says; else the registry's release)")
    parser.add_argument(
        "--member",
        action="append",
        default=[],
        metavar="PATTERN",
        dest="members",
        help="probe only the members matching this shell pattern on interface.Member (repeatable), for example "
        "'org.qemu.Display1.Mouse.*'",
    )
    parser.add_argument("--seed", default="0", help="the seed of the random values (default: 0; runs are reproducible)")
    parser.add_argument(
        "--per-member",
        type=int,
        default=64,
        metavar="N",
        help="at most N calls per member, bisection aside (default 64)",
    )
    parser.add_argument(
        "--call-timeout",
        type=seconds,
        default=5.0,
        metavar="SECONDS",
        help="wait this long for each reply (default 5)",
    )
    parser.add_argument(
        "--stall",
        type=seconds,
        default=2.0,
        metavar="SECONDS",
        help="a liveness read slower than this is a stall (default 2: QEMU waits up to 1 s for a listener's "
        "ScanoutMap by design)",
    )
    parser.add_argument(
        "--hang-timeout",
        type=seconds,
        default=30.0,
        metavar="SECONDS",
        help="a liveness read unanswered this long is a hang; QEMU is then killed and relaunched (default 30: QEMU "
        "itself waits up to 25 s for a listener)",
    )
    parser.add_argument(
        "--deadline",
        type=seconds,
        default=DEFAULT_DEADLINE,
        metavar="SECONDS",
        help=f"wall-clock budget of the whole run (default {DEFAULT_DEADLINE:g})",
    )
    parser.add_argument("--no-bisect", action="store_true", help="do not bisect crashing integers to their threshold")
    parser.add_argument(
        "--record",
        action="store_true",
        help="record the results in the registry (probe-results.json beside its XML), replacing those of this release",
    )
    parser.add_argument("--format", choices=FORMATS, default="text", dest="fmt")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress and no summary")
    parser.set_defaults(func=run_probe)


def run_probe(args: argparse.Namespace) -> int:
    try:
        if args.address is not None and not args.allow_destructive:
            raise UsageError(
                "refusing to probe a peer on an existing bus: its calls crash and hang QEMU on purpose.  Use "
                "--launch QEMU, or add --allow-destructive if this is a throwaway VM"
            )
        if args.address is not None:
            try:
                parse_address(args.address)
            except AddressError as error:
                raise UsageError(f"invalid --address {args.address!r}: {error}") from None
        if problem := bus_name_error(args.dest):
            raise UsageError(f"invalid --dest {args.dest!r}: {problem}")
        if args.per_member < 1:
            raise UsageError("--per-member must be at least 1")
        release = qemu_release(args, "7.2 or 10.0.2")
        path, registry = load_registry(args)
    except UsageError as error:
        return _fail(str(error))
    try:
        from ..live.probe.engine import Options
    except ImportError:
        return _fail(jeepney_missing("qemu-dbus probe"))
    started = time.monotonic()
    options = Options(
        seed=args.seed,
        per_member=args.per_member,
        call_timeout=args.call_timeout,
        stall=args.stall,
        hang_timeout=args.hang_timeout,
        deadline=started + args.deadline,
        bisect=not args.no_bisect,
    )
    if args.launch is not None:
        return _launched(args, registry, path, release, options, started)
    return _probe(args, registry, path, release, options, started, None, None)


def _launched(
    args: argparse.Namespace, registry: Registry, folder: str, release: Release | None, options: Any, started: float
) -> int:
    from ..live.probe.run import qemu_version

    version = qemu_version(args.launch)
    if release is None and version is not None:
        release = parse_release(version[0])
    return COMMAND.launch(
        args,
        options.deadline,
        lambda launched: _probe(args, registry, folder, release, options, started, launched, version),
    )


def _probe(
    args: argparse.Namespace,
    registry: Registry,
    folder: str,
    release: Release | None,
    options: Any,
    started: float,
    launched: Any,
    version: tuple[str, str] | None,
) -> int:
    from ..live.conform import LiveError, connect
    from ..live.probe.run import probe_peer

    if release is None and registry.release:
        release = parse_release(registry.release)
    view = registry.at_release(feature_release(release), current_platform()) if release else registry
    try:
        wire = connect(args.address, options.call_timeout, options.deadline)
    except LiveError as error:
        return _fail(str(error))
    with wire:
        report = probe_peer(
            view, wire, args.dest, options, launched, args.members, lambda text: _say(args, text), args.address
        )
    findings: list[Diagnostic] = [fault.diagnostic(args.dest) for fault in report.faults]
    where = Location(args.dest)
    for text in report.unchecked:
        findings.append(
            diagnostic("L017", where, text, "Raise --deadline or --per-member, or name fewer members with --member.")
        )
    findings.sort(key=Diagnostic.sort_key)
    sys.stdout.write(render(findings, args.fmt, version=__version__))
    elapsed = time.monotonic() - started
    label = f"QEMU {release_text(release)}" if release else "the registry's release"
    if args.record:
        if release is None:
            return _fail("--record needs the QEMU release: --qemu-version, or --launch a QEMU that says its version")
        from ..live.probe.results import record_release

        written = record_release(
            folder,
            version[0] if version else release_text(release),
            __version__,
            version[1] if version else f"QEMU {release_text(release)}",
            report.probed,
            report.calls,
            [fault.as_record() for fault in report.faults],
        )
        _say(args, f"recorded in {written}")
    if args.fmt == "text" and not args.quiet:
        lines = [
            f"qemu-dbus probe: {len(report.probed)} members of {args.dest} probed ({label}) with {report.calls} calls, "
            f"{report.relaunches} relaunches, in {elapsed:.0f} s: {counted(findings) or 'nothing found'}"
        ]
        kinds: dict[str, int] = {}
        for fault in report.faults:
            kinds[fault.kind] = kinds.get(fault.kind, 0) + 1
        if kinds:
            lines.append("  faults: " + ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())))
        if report.unexercised:
            lines.append("  never exercised: " + "; ".join(report.unexercised))
        if report.stopped:
            lines.append(f"  stopped early: {report.stopped}")
        print("\n".join(printable(line) for line in lines), file=sys.stderr)
    return EXIT_FINDINGS if fails(findings, False) else EXIT_OK

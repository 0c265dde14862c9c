"""``qemu-dbus conform``: a running peer against the registry, on the command line."""

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
from ..live.conform import (
    DEFAULT_DEADLINE,
    DEFAULT_TIMEOUT,
    LiveBus,
    LiveError,
    Walk,
    capped,
    compare_object,
    connect,
    current_platform,
    detect_release,
    introspect_objects,
    live_location,
    owner_of,
    read_bus_facts,
    release_view,
)
from ..model.introspection import PLATFORMS
from ..model.names import bus_name_error, object_path_error
from ..model.registry import Registry
from ..model.releases import Release, parse_release, release_text
from .live_options import LiveCommand, UsageError, add_qemu_options, load_registry, qemu_release, seconds
from .registry import add_registry_option

EXIT_OK, EXIT_FINDINGS = 0, 1
COMMAND = LiveCommand("conform")
_fail, _say = COMMAND.fail, COMMAND.say
#: Interrupted (Ctrl-C): what was seen is reported, and the run never passes.
EXIT_INTERRUPTED = 130


def add_cli(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``qemu-dbus conform`` on the CLI's subparsers."""
    parser = commands.add_parser(
        "conform",
        help="compare a running peer's D-Bus objects and messages with the registry",
        description="Introspect the objects a peer exports on a bus and compare every org.qemu.* "
        "interface with the registry's view of one QEMU release; optionally become a display "
        "client (--listen) and watch the bus (--monitor), checking every message.  With --launch "
        "QEMU, the tool starts a private bus and that QEMU on it first, and stops both at the end.  "
        "Exit status: 0 when there is no error (with --strict, no warning either), 1 when there are "
        "findings, 2 for usage or connection problems, 130 when interrupted (Ctrl-C).",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--address", help="the bus: a D-Bus address, or SESSION or SYSTEM")
    where.add_argument(
        "--launch",
        metavar="QEMU",
        help="start a private dbus-daemon and this QEMU binary on it, with every D-Bus object its display "
        "offers (TCG, no disk), check it, then stop both; --dest defaults to org.qemu",
    )
    parser.add_argument(
        "--dest", metavar="NAME", help="the peer's bus name (QEMU: org.qemu); optional with --monitor alone"
    )
    parser.add_argument(
        "--object",
        action="append",
        default=[],
        metavar="PATH",
        dest="objects",
        help="an object to check (repeatable; default: / and everything below it)",
    )
    parser.add_argument("--recursive", action="store_true", help="also check every object below each --object")
    add_registry_option(parser)
    add_qemu_options(
        parser,
        "(what the registry dates later is not expected; default: the newest release the peer can be, judged from "
        "what it exports; the registry's own release when it exports nothing the registry dates)",
    )
    parser.add_argument(
        "--platform",
        choices=tuple(PLATFORMS),
        default=current_platform(),
        help="the peer's platform, for the registry's platform variants (default: this machine's)",
    )
    parser.add_argument(
        "--no-values", action="store_true", help="do not read property values (GetAll runs the peer's getters)"
    )
    parser.add_argument(
        "--listen",
        type=seconds,
        metavar="SECONDS",
        help="register a display listener on every console (and audio listeners) and check what "
        "QEMU sends to them for SECONDS",
    )
    parser.add_argument(
        "--monitor",
        type=seconds,
        metavar="SECONDS",
        help="become a bus monitor and check every org.qemu.* message for SECONDS (the bus policy must allow it)",
    )
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="per step (connecting, each call)",
    )
    parser.add_argument(
        "--deadline",
        type=seconds,
        metavar="SECONDS",
        help=f"wall-clock budget of the whole run (default: {DEFAULT_DEADLINE:g} s plus --listen and --monitor)",
    )
    parser.add_argument("--strict", action="store_true", help="fail on warnings too")
    parser.add_argument("--format", choices=FORMATS, default="text", dest="fmt")
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    parser.set_defaults(func=run_conform)


def run_conform(args: argparse.Namespace) -> int:
    try:
        if args.launch is not None and args.dest is None:
            args.dest = "org.qemu"
        if args.dest is None and (args.monitor is None or args.listen is not None):
            raise UsageError("--dest is required (it is optional only with --monitor alone)")
        if args.dest is not None and (problem := bus_name_error(args.dest)):
            raise UsageError(f"invalid --dest {args.dest!r}: {problem}")
        for path in args.objects:
            if problem := object_path_error(path):
                raise UsageError(f"invalid --object {path!r}: {problem}")
        release = qemu_release(args, "7.2 or 8.2.1")
        _, registry = load_registry(args)
    except UsageError as error:
        return _fail(str(error))
    budget = args.deadline or DEFAULT_DEADLINE + (args.listen or 0) + (args.monitor or 0)
    started = time.monotonic()
    deadline = started + budget
    if args.launch is not None:
        return _launched(args, registry, release, started, deadline)
    if args.address not in ("SESSION", "SYSTEM"):
        try:
            parse_address(args.address)
        except AddressError as error:
            return _fail(f"invalid --address {args.address!r}: {error}")
    return _conform(args, registry, release, started, deadline)


def _launched(
    args: argparse.Namespace, registry: Registry, release: Release | None, started: float, deadline: float
) -> int:
    """Start a bus and QEMU, run the checks against them, and stop both whatever happens."""
    return COMMAND.launch(
        args, deadline, lambda launched: _conform(args, registry, release, started, deadline, launched)
    )


def _conform(
    args: argparse.Namespace,
    registry: Registry,
    release: Release | None,
    started: float,
    deadline: float,
    launched: Any = None,
) -> int:
    run = _Run(args, registry, release, deadline)
    run.launched = launched
    try:
        connection = connect(args.address, args.timeout, deadline, run.budget)
    except LiveError as error:
        return _fail(str(error))
    with connection:
        try:
            bus = LiveBus(connection, args.timeout, deadline)
            if args.dest is not None:
                owner, problem = owner_of(bus, args.dest)
                if owner is None:
                    return _fail(problem or f"no peer owns {args.dest} on this bus")
                run.introspect(bus, owner)
            status = run.watch(connection)
            if status is not None:
                return status
        except KeyboardInterrupt:
            # Ctrl-C (SIGINT): the report covers what was seen, and the run does not pass.
            run.interrupted = True
    return run.report(time.monotonic() - started)


def _budget() -> Any:
    try:
        from ..live.wire import Budget
    except ImportError:  # no jeepney: connecting says so
        return None
    return Budget()


class _Run:
    """One run of the command: what each stage found, and the summary."""

    def __init__(self, args: argparse.Namespace, registry: Registry, release: Release | None, deadline: float) -> None:
        self.args = args
        self.registry = registry
        self.release = release
        self.deadline = deadline
        self.findings: list[Diagnostic] = []
        #: The headline's parts (strings), then (label, values) facts, shown by `summary_block`.
        self.summary: list[str | tuple[str, list[str]]] = []
        self.walk: Walk | None = None
        self.check: Any = None
        self.monitored: Any = None
        self.interrupted = False
        #: The releases the peer can be (None: --qemu-version says, or it exports nothing dated).
        self.match: Any = None
        #: The `QemuLaunch` the run checks (--launch), else None.
        self.launched: Any = None
        #: The bytes of messages on their way that all connections of the run may hold at once.
        self.budget = _budget()

    @property
    def label(self) -> str:
        version = f"QEMU {release_text(self.release)}" if self.release else "the registry"
        return f"{version}, {self.args.platform}"

    def introspect(self, bus: LiveBus, owner: str) -> None:
        args = self.args
        roots = args.objects or ["/"]
        self.walk = introspect_objects(bus, args.dest, roots, args.recursive or not args.objects)
        objects = self.walk.objects
        if self.release is None:
            self.detect(objects)
        view = release_view(self.registry, self.release, args.platform)
        facts = read_bus_facts(bus, args.dest, view, objects, args.platform, read_values=not args.no_values)
        for live in objects:
            found = compare_object(self.registry, args.dest, live, args.platform, facts, self.release)
            self.findings += capped(found, live_location(args.dest, live.path))
        self.findings += self.walk.unchecked
        if facts.unread:
            message = f"the properties of {facts.unread} interface(s) were not read: the run's deadline had passed"
            self.findings.append(diagnostic("L017", Location(args.dest), message))
        checked = sum(1 for live in objects if live.node is not None)
        self.summary.append(f"{checked} of {len(objects)} objects of {args.dest} introspected ({self.label})")
        if self.match is not None and self.match.matched:
            self.summary.append(("release", [f"exports what {self.match.range_text} exported"]))

    def detect(self, objects: list[Any]) -> None:
        """The release to check against, when --qemu-version does not say: the newest the peer
        can be, from what it exports; the registry's own when it exports nothing dated."""
        self.match = detect_release(self.registry, objects, self.args.platform)
        if self.match is None:
            self.release = parse_release(self.registry.release) if self.registry.release else None
            return
        self.release = self.match.checked
        if not self.match.matched:
            message = (
                f"{self.args.dest} matches no QEMU release: {self.match.conflict}; checked against "
                f"QEMU {release_text(self.match.checked)}, the closest (the fewest differences)"
            )
            self.findings.append(diagnostic("L110", Location(self.args.dest), message))

    def traffic(self) -> Any:
        if self.check is None:
            from ..live.traffic import TrafficCheck

            self.check = TrafficCheck(self.registry, self.release, self.args.platform)
        return self.check

    def watch(self, connection: Any) -> int | None:
        """Monitor the bus and listen to the peer (as asked), every connection on one event loop,
        until both are over or the run's deadline; a usage error's exit status, or None."""
        args = self.args
        if args.monitor is None and (args.listen is None or args.dest is None):
            return None
        from ..live.loop import Loop

        loop = Loop()
        listening = monitoring = None
        try:
            if args.monitor is not None:
                monitoring = self.start_monitor(loop)
                if isinstance(monitoring, int):
                    return monitoring
            if args.listen is not None and args.dest is not None:
                listening = self.start_listening(loop, connection)
            loop.run(self.deadline)
        finally:
            # The components first (what they still wait for is theirs to report), then the rest.
            if listening is not None:
                self.end_listening(listening)
            loop.close_all()
            if monitoring is not None and not isinstance(monitoring, int):
                self.monitored = monitoring.result
        return None

    def start_monitor(self, loop: Any) -> Any:
        """Connect, become a monitor, and check the bus on ``loop`` until --monitor is over."""
        from ..live.monitor import Monitoring, MonitorRefused, become_monitor

        args = self.args
        try:
            wire = connect(args.address, args.timeout, self.deadline, self.budget)
        except LiveError as error:
            return _fail(str(error))
        try:
            become_monitor(wire, args.timeout)
        except MonitorRefused as error:
            wire.close()
            return _fail(f"cannot monitor {args.address}: {error}")
        until = min(time.monotonic() + args.monitor, self.deadline)
        monitoring = Monitoring(loop, wire, self.traffic(), until, args.timeout)
        _say(args, f"monitoring {args.address} for {args.monitor:g} s")
        return monitoring

    def start_listening(self, loop: Any, connection: Any) -> Any:
        from ..live.listen import Listening, targets_of

        args = self.args
        objects = self.walk.objects if self.walk is not None else []
        found = ((live.path, tuple(i.name for i in live.node.interfaces)) for live in objects if live.node is not None)
        listening = Listening(
            loop, connection, args.dest, targets_of(found), self.traffic(), args.listen, args.timeout, self.deadline
        )
        _say(args, f"listening to {args.dest} for {args.listen:g} s")
        listening.start()
        return listening

    def end_listening(self, listening: Any) -> None:
        args = self.args
        listening.close()
        result = listening.result
        self.findings += result.findings
        if not result.complete and not self.interrupted and time.monotonic() >= self.deadline:
            message = f"listened only until the run's deadline, not the {args.listen:g} s asked for"
            self.findings.append(diagnostic("L017", Location(args.dest), message))
        for label, state in result.clients:
            self.summary.append((label, [state]))
        self.summary.append(("listeners registered", [", ".join(result.registered) or "none"]))
        if result.shared:
            self.summary.append(("shared memory", result.shared))
        self.served = result.served

    def _launched_exit(self) -> int | None:
        """The launched QEMU's exit status if it ended during the run.  One killed a moment ago
        may not have been reaped yet: it has lost its bus name, though, and is waited for."""
        status: int | None = self.launched.qemu_exit()
        if status is None and self.launched.owns_name(self.args.timeout) is False:
            from ..live.launch import STOP_GRACE

            status = self.launched.wait_exit(STOP_GRACE)
        return status

    def report(self, elapsed: float) -> int:
        args = self.args
        if self.launched is not None and (status := self._launched_exit()) is not None:
            from ..live.launch import exit_text

            last = " / ".join(line.strip() for line in self.launched.stderr_tail(5) if line.strip())
            message = f"the launched QEMU exited during the run ({exit_text(status)})" + (f": {last}" if last else "")
            self.findings.append(diagnostic("L015", Location(args.launch), message))
        if self.check is not None:
            self.findings += self.check.findings.result()
            if self.check.findings.dropped:
                message = f"{self.check.findings.dropped} further kinds of findings were not kept (bound reached)"
                self.findings.append(diagnostic("L017", Location(args.dest or args.address), message))
        if self.monitored is not None:
            self.summary.append(f"{self.monitored.messages} messages monitored")
            if self.monitored.problem and not self.interrupted:
                message = f"monitoring ended early: {self.monitored.problem}"
                self.findings.append(diagnostic("L017", Location(args.address), message))
            elif not self.monitored.complete and not self.interrupted:
                message = f"monitored only until the run's deadline, not the {args.monitor:g} s asked for"
                self.findings.append(diagnostic("L017", Location(args.address), message))
            if self.monitored.skipped:
                message = (
                    f"{self.monitored.skipped} message(s) were not checked, the first: {self.monitored.first_skipped}"
                )
                self.findings.append(diagnostic("L017", Location(args.address), message))
        findings = sorted(self.findings, key=Diagnostic.sort_key)
        sys.stdout.write(render(findings, args.fmt, version=__version__))
        if args.fmt == "text" and not args.quiet:
            if self.check is not None:
                observed = [f"{name} x{count}" for name, count in sorted(self.check.observed.items())]
                self.summary.append(("observed", by_interface(observed) or ["nothing"]))
                for label, (count, (width, height)) in sorted(self.check.resized.items()):
                    changes = f"{count} size change{'' if count == 1 else 's'}"
                    self.summary.append((label, [f"{changes} without a Scanout (now {width}x{height})"]))
                served = getattr(self, "served", [])
                if served:
                    missing = self.check.unexercised(served)
                    self.summary.append(("never exercised", by_interface(missing) or ["none"]))
            verdict = counted(findings) or "conforms to the registry"
            if self.interrupted:
                verdict = f"interrupted before the end ({counted(findings) or 'nothing found so far'})"
            print(summary_block(self.summary, verdict), file=sys.stderr)
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_FINDINGS if fails(findings, args.strict) else EXIT_OK


def by_interface(names: list[str]) -> list[str]:
    """``iface.Member x3`` entries as one line per interface: ``iface: Member x3, Other x1``
    (``org.freedesktop.DBus.Properties.GetAll(iface) x1`` belongs to the Properties interface)."""
    groups: dict[str, list[str]] = {}
    for name in names:
        called, paren, rest = name.partition("(")
        interface, dot, member = called.rpartition(".")
        if not dot or not interface:  # "(members the registry does not have) x2"
            groups.setdefault("", []).append(name)
        else:
            groups.setdefault(interface, []).append(member + paren + rest)
    return [
        f"{interface}: {', '.join(members)}" if interface else ", ".join(members)
        for interface, members in groups.items()
    ]


def summary_block(summary: list[str | tuple[str, list[str]]], verdict: str) -> str:
    """The run in a few lines: the headline with the verdict, then one ``label: value`` line per
    fact, a long list continued on lines of its own under its label."""
    headline = "; ".join(item for item in summary if isinstance(item, str))
    lines = [f"qemu-dbus conform: {headline}: {verdict}" if headline else f"qemu-dbus conform: {verdict}"]
    for item in summary:
        if isinstance(item, str):
            continue
        label, values = item
        lines.append(f"  {label}: {values[0]}" if values else f"  {label}")
        lines += [f"  {' ' * len(label)}  {value}" for value in values[1:]]
    return "\n".join(printable(line) for line in lines)

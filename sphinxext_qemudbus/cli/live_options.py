"""What the commands that talk to a running QEMU (``conform``, ``probe``) share on the command line.

Their options (``--qemu-arg``, ``--qemu-version``, numbers of seconds), how they read the
registry, how they speak (an error line and exit status 2, progress lines unless ``--quiet``),
and ``--launch``: a private bus and QEMU started for the run and stopped whatever happens, SIGTERM
and SIGHUP ending the run like Ctrl-C so that they too stop QEMU on the way out.  A usage problem
found by a helper is raised as `UsageError`; each command turns it into its error line.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from typing import Any

from .._version import __version__
from ..diagnostics.output import error_line, printable, render
from ..model.registry import Registry, RegistryLocationError, registry_folder
from ..model.releases import Release, parse_release

EXIT_USAGE = 2


class UsageError(Exception):
    """A usage problem (or one that stops the command before it starts): its error line."""


def seconds(text: str) -> float:
    """An option's number of seconds (argparse ``type``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < 1e7:
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive number of seconds")
    return value


def add_qemu_options(parser: argparse.ArgumentParser, version_default: str) -> None:
    """``--qemu-arg ARG`` (with ``--launch``) and ``--qemu-version X.Y``; ``version_default``
    says what the command assumes without it."""
    parser.add_argument(
        "--qemu-arg",
        action="append",
        default=[],
        metavar="ARG",
        dest="qemu_args",
        help="with --launch: one more argument for QEMU (repeatable; write --qemu-arg=-name for one "
        "that starts with a dash)",
    )
    parser.add_argument("--qemu-version", metavar="X.Y", help=f"the QEMU release the peer runs {version_default}")


def qemu_release(args: argparse.Namespace, example: str) -> Release | None:
    """The release ``--qemu-version`` gives, or None when it is not given (``--qemu-arg`` is
    checked too: it needs ``--launch``)."""
    if args.qemu_args and args.launch is None:
        raise UsageError("--qemu-arg is for --launch")
    if args.qemu_version is None:
        return None
    release = parse_release(args.qemu_version)
    if release is None:
        raise UsageError(f"invalid --qemu-version {args.qemu_version!r}: give a QEMU release such as {example}")
    return release


def load_registry(args: argparse.Namespace) -> tuple[str, Registry]:
    """(folder, registry) that ``--registry`` names (the packaged one by default).  A registry
    with XML errors is refused: they are written (in ``--format``) before the error line."""
    try:
        folder = registry_folder(args.registry, "--registry")
    except RegistryLocationError as error:
        raise UsageError(str(error)) from None  # it names the path
    registry = Registry.load([folder])
    if registry.errors:
        sys.stdout.write(render(registry.errors, args.fmt, version=__version__))
        raise UsageError("the registry has XML errors (above); qemu-dbus check shows them all")
    return folder, registry


class LiveCommand:
    """How the command ``name`` (``conform``, ``probe``) speaks, and its ``--launch``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def fail(self, message: str) -> int:
        """Say ``message`` as the command's error line; the exit status for usage problems."""
        print(error_line(self.name, message), file=sys.stderr)
        return EXIT_USAGE

    def say(self, args: argparse.Namespace, message: str) -> None:
        """A progress line, unless ``--quiet``."""
        if not args.quiet:
            print(printable(f"qemu-dbus {self.name}: {message}"), file=sys.stderr, flush=True)

    def launch(self, args: argparse.Namespace, deadline: float, run: Callable[[Any], int]) -> int:
        """Start a private bus and the QEMU of ``--launch`` on it (``--qemu-arg``), then ``run``
        with the `QemuLaunch` (``args.address`` is the bus's by then), and stop both whatever
        happens."""
        try:
            from ..live.launch import LaunchError, QemuLaunch
        except ImportError:
            from ..live.conform import jeepney_missing

            return self.fail(jeepney_missing(f"qemu-dbus {self.name} --launch"))

        def interrupt(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        previous = {number: signal.signal(number, interrupt) for number in (signal.SIGTERM, signal.SIGHUP)}
        launched = QemuLaunch(args.launch, args.qemu_args)
        try:
            launched.start(deadline)
            assert launched.qemu is not None
            assert launched.bus is not None
            pids = f"QEMU pid {launched.qemu.pid}, dbus-daemon pid {launched.bus.pid}"
            self.say(args, f"launched {args.launch} on a private bus at {launched.address} ({pids})")
            args.address = launched.address
            return run(launched)
        except LaunchError as error:
            return self.fail(f"--launch: {error}")
        finally:
            launched.stop()
            for number, handler in previous.items():
                signal.signal(number, handler)

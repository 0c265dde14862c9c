"""The ``qemu-dbus`` command line, the top floor: one module per subcommand, each a thin layer over
the stage that does the work.  Exit codes: 0 clean, 1 findings, 2 usage or I/O errors.

No Sphinx import here (a test asserts it): the checker starts fast and works without a docs toolchain.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._version import __version__
from ..diagnostics.output import printable
from .check import add_cli as add_check_cli
from .conform import add_cli as add_conform_cli
from .diff import add_cli as add_diff_cli
from .policy import add_cli as add_policy_cli
from .probe import add_cli as add_probe_cli
from .registry import add_cli as add_registry_cli

EXIT_OK, EXIT_USAGE = 0, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(printable(f"{self.prog}: error: {message}"), file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="qemu-dbus", description="Check, document and secure QEMU's D-Bus interfaces.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser
    )
    commands.required = True

    add_check_cli(commands)
    add_diff_cli(commands)
    add_conform_cli(commands)
    add_policy_cli(commands)
    add_probe_cli(commands)
    add_registry_cli(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())

"""``qemu-dbus policy``: the dbus-daemon configuration of a VM's private bus."""

from __future__ import annotations

import argparse
import sys

from ..diagnostics.output import printable
from ..security.deployment import SCENARIOS, DeploymentError
from ..security.policy import DEFAULT_LISTEN, DEFAULT_REGISTRY, policy_text

EXIT_OK, EXIT_USAGE = 0, 2


def add_cli(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``qemu-dbus policy`` on the CLI's subcommand parser."""
    policy = commands.add_parser(
        "policy",
        help="write the dbus-daemon configuration of a VM's private bus",
        description="Write the dbus-daemon configuration of one VM's private bus, generated from the "
        "registry and a deployment, for one scenario.  Exit status: 0, or 2 for usage errors and "
        "invalid deployment or registry files.",
    )
    policy.add_argument("--scenario", required=True, choices=SCENARIOS, help="how peers map onto users")
    policy.add_argument(
        "--deployment",
        metavar="NAME|FILE",
        help="a built-in deployment (default, lockdown) or a deployment .toml file (default: the built-in default)",
    )
    policy.add_argument(
        "--listen", default=DEFAULT_LISTEN, metavar="ADDRESS", help=f"the bus address (default: {DEFAULT_LISTEN})"
    )
    policy.add_argument(
        "--registry",
        default=DEFAULT_REGISTRY,
        metavar="PATH",
        help=f"the registry folder (default: {DEFAULT_REGISTRY})",
    )
    policy.set_defaults(func=run_policy)


def run_policy(args: argparse.Namespace) -> int:
    try:
        text = policy_text(args.registry, args.deployment, args.scenario, args.listen)
    except DeploymentError as error:
        for problem in error.problems:
            print(printable(problem.format()), file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.write(text)
    return EXIT_OK

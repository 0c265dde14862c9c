"""``qemu-dbus policy``: the dbus-daemon configuration of a VM's private bus."""

from __future__ import annotations

import argparse
import sys

from ..security.deployment import SCENARIOS, DeploymentError
from ..security.policy import DEFAULT_LISTEN, policy_text
from .registry import add_registry_option, registry_path

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
    add_registry_option(policy)
    policy.set_defaults(func=run_policy)


def run_policy(args: argparse.Namespace) -> int:
    registry = registry_path(args, "policy")
    if registry is None:
        return EXIT_USAGE
    try:
        text = policy_text(registry, args.deployment, args.scenario, args.listen)
    except DeploymentError as error:
        for problem in error.problems:
            print(problem.format(), file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.write(text)
    return EXIT_OK

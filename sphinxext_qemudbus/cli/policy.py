"""``qemu-dbus policy``: the dbus-daemon configuration of a VM's private bus."""

from __future__ import annotations

import argparse
import sys
import textwrap

from ..diagnostics.output import printable
from ..security.deployment import SCENARIOS, DeploymentError
from ..security.policy import DEFAULT_LISTEN, checked_inputs, policy_text
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
    policy.add_argument(
        "--diagram",
        choices=("svg", "text"),
        help="instead of the configuration, write the picture of who may call whom: an SVG file, or its "
        "text equivalent (one line per arrow)",
    )
    policy.set_defaults(func=run_policy)


def run_policy(args: argparse.Namespace) -> int:
    registry = registry_path(args, "policy")
    if registry is None:
        return EXIT_USAGE
    try:
        if args.diagram:
            text = diagram_text(registry, args.deployment, args.scenario, args.diagram)
        else:
            text = policy_text(registry, args.deployment, args.scenario, args.listen)
    except DeploymentError as error:
        for problem in error.problems:
            print(printable(problem.format()), file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.write(text)
    return EXIT_OK


def diagram_text(registry_path: str, deployment_spec: str | None, scenario: str, form: str) -> str:
    """The deployment diagram of ``scenario``: drawn from the same links as the configuration."""
    from ..diagrams.deployment import deployment_diagram
    from ..diagrams.lanes import plain
    from ..diagrams.svg import render_svg

    registry, deployment = checked_inputs(registry_path, deployment_spec)
    diagram = deployment_diagram(registry, deployment, scenario)
    if form == "svg":
        return render_svg(diagram, standalone=True)
    lines = [diagram.title, "", *textwrap.wrap(diagram.summary, 100), ""]
    lines.append(" | ".join(diagram.table.headers))
    lines += [" | ".join(plain(cell) for cell in row) for row in diagram.table.rows]
    return "\n".join(printable(line) for line in lines) + "\n"

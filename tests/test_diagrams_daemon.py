"""The deployment pictures against a real dbus-daemon: every arrow is a call the generated
configuration lets through, and every call it lets through has an arrow.

The policy matrix (`tests.dbusmatrix`) runs the generated configuration on a real daemon with one
process per peer, each under its user, and tries every registry method and property read on
every other peer.  Here its observed outcomes, not its expectations, are compared with the arrows
of `diagrams.deployment`.  dbus-daemon tells peers apart by user only, so the comparison is by
(caller's user, implementer's user, interface): in ``many-uids`` that is peer by peer; where peers
share a user, each has the rights of all of them, as the picture's frames say.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from sphinxext_qemudbus.diagrams.deployment import deployment_diagram
from sphinxext_qemudbus.model.introspection import Method
from sphinxext_qemudbus.model.registry import Registry
from sphinxext_qemudbus.security.deployment import builtin_deployment
from tests.dbusmatrix.harness import ACCESS_DENIED, MatrixUnavailable, check_available, run_matrix

from .test_policy import REGISTRY

RUNS = [("lockdown", "many-uids"), ("default", "many-uids"), ("default", "two-uids")]


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    try:
        check_available()
    except MatrixUnavailable as reason:
        if os.environ.get("QEMU_DBUS_REQUIRE_MATRIX"):
            pytest.fail(f"QEMU_DBUS_REQUIRE_MATRIX is set but the daemon matrix cannot run: {reason}")
        pytest.skip(f"no real dbus-daemon matrix on this machine: {reason}")
    return Registry.load([REGISTRY])


@pytest.mark.parametrize(("deployment_name", "scenario"), RUNS)
def test_arrows_are_exactly_the_calls_the_daemon_lets_through(
    registry: Registry, deployment_name: str, scenario: str
) -> None:
    deployment = builtin_deployment(deployment_name)
    report = run_matrix(registry, deployment, scenario)
    assert not report.problems

    def user(peer_id: str) -> str:
        return deployment.user_of(peer_id, scenario).name

    with_methods = {
        entry.interface.name for entry in registry if any(isinstance(m, Method) for m in entry.interface.members)
    }
    observed: set[tuple[str, str, str]] = set()
    tried: set[tuple[str, str, str]] = set()
    for probe in report.probes:
        # Registry methods only: a property read names its interface in its arguments, which no
        # bus policy can see (dbus-policies.rst, "What no bus policy can do").
        if probe.kind != "call" or probe.target is None or probe.interface not in with_methods:
            continue
        if probe.path == "/org/qemu/Elsewhere":
            continue  # the wrong-path probe: a fence of its own, not a link
        key = (user(probe.sender), user(probe.target), str(probe.interface))
        if key[0] == key[1]:
            continue  # one user: the daemon cannot tell its peers apart (one frame in the picture)
        outcome = report.outcomes[probe.sender][probe.n]
        values = outcome if isinstance(outcome, list) else [outcome]
        tried.add(key)
        if not any(str(value) == f"error:{ACCESS_DENIED}" for value in values):
            observed.add(key)
    diagram = deployment_diagram(registry, deployment, scenario)
    drawn = {
        (user(arrow.source), user(arrow.target), str(span.target))
        for arrow in diagram.arrows
        if not arrow.peer_to_peer and arrow.crossing
        for span in arrow.label
        if span.target in with_methods
    }
    assert drawn, "no arrow to compare"
    assert drawn <= tried
    assert observed == drawn, {"allowed without an arrow": observed - drawn, "arrow not allowed": drawn - observed}

"""The generated policies on a real dbus-daemon: every combination of peer, target and action.

Each (deployment, scenario) runs once: one daemon under the bus user, one jeepney process per peer
under its own uid (see `tests.dbusmatrix`).  The expectation of every combination is derived from
the registry and the deployment; the spot checks below are written out by hand, so that a mistake
shared by the generator and the derivation still fails a test.  The counts of allowed and denied
combinations are printed at the end of the module.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sphinxext_qemudbus.model.registry import Registry
from sphinxext_qemudbus.security.deployment import Deployment, User, builtin_deployment
from sphinxext_qemudbus.security.policy import generate_policy
from tests.dbusmatrix.harness import (
    ACCESS_DENIED,
    REQUESTED_ERROR,
    MatrixReport,
    Probe,
    all_users,
    claim_names,
    require_matrix,
    run_matrix,
)
from tests.dbusmatrix.peer import connect_only

from .test_policy import REGISTRY

pytest_plugins = ["tests.dbusmatrix.summary"]

DENIED = f"error:{ACCESS_DENIED}"
RUNS = [
    (deployment, scenario)
    for deployment in ("default", "lockdown")
    for scenario in ("single-uid", "two-uids", "many-uids")
]

Matrix = Callable[[str, str], MatrixReport]


@pytest.fixture(scope="module")
def registry() -> Registry:
    """The registry, once this machine is known to run the matrix (else a skip, or a failure
    where CI requires the matrix)."""
    require_matrix()
    return Registry.load([REGISTRY])


@pytest.fixture(scope="module")
def matrix(request: pytest.FixtureRequest, registry: Registry) -> Iterator[Matrix]:
    """Runs each (deployment, scenario) once, on first use; prints every run's counts at the end."""
    reports: dict[tuple[str, str], MatrixReport] = {}

    def get(deployment: str, scenario: str) -> MatrixReport:
        key = (deployment, scenario)
        if key not in reports:
            reports[key] = run_matrix(registry, builtin_deployment(deployment), scenario)
        return reports[key]

    yield get
    plugin = request.config.pluginmanager.get_plugin("tests.dbusmatrix.summary")
    assert plugin is not None
    lines: list[str] = plugin.LINES
    for report in reports.values():
        lines.append(report.summary())
    if reports:
        total = sum(len(r.checks) for r in reports.values())
        allowed = sum(r.allowed for r in reports.values())
        seconds = sum(r.seconds for r in reports.values())
        lines.append(
            f"total: {total} combinations, {allowed} allowed and {total - allowed} denied, in {seconds:.1f} s on the buses"
        )


@pytest.mark.parametrize(("deployment", "scenario"), RUNS)
def test_matrix(matrix: Matrix, deployment: str, scenario: str) -> None:
    report = matrix(deployment, scenario)
    assert not report.daemon_stderr_at_start, report.daemon_stderr_at_start
    assert not report.problems
    assert report.allowed > 0
    assert report.denied > 0
    failures = [
        f"{f.description}: expected {'allowed' if f.expected_allowed else 'denied'}, got {f.observed}"
        for f in report.failures
    ]
    assert not failures, f"{len(failures)} of {len(report.checks)} combinations went wrong:\n" + "\n".join(
        failures[:50]
    )


@pytest.mark.parametrize(("deployment", "scenario"), [run for run in RUNS if run[1] != "single-uid"])
def test_rules_are_exactly_the_intended_messages_when_users_differ(
    matrix: Matrix, deployment: str, scenario: str
) -> None:
    """Where every pair of peers that must be told apart has distinct users, user-level rules lose
    nothing: no combination is allowed that no single intended message needs."""
    assert not matrix(deployment, scenario).overreach


def test_single_uid_overreach_is_only_property_change_signals(matrix: Matrix) -> None:
    """With one user, a send rule made for one intended message and a receive rule made for
    another can combine.  In the default deployment that lets ``PropertiesChanged`` of the
    clipboard and of VMState1 pass between any two peers, and nothing else."""
    overreach = matrix("default", "single-uid").overreach
    assert overreach
    assert {(check.kind, check.description.split(" at ")[0].rsplit(" ", 1)[-1]) for check in overreach} == {
        ("signal", "org.freedesktop.DBus.Properties.PropertiesChanged")
    }
    assert {check.description.split(" at ")[1].split(" ")[0] for check in overreach} == {
        "/org/qemu/Display1/Clipboard",
        "/org/qemu/VMState1",
    }


# --- spot checks, written out by hand ------------------------------------------------------------


VMSTATE = {"interface": "org.qemu.VMState1", "path": "/org/qemu/VMState1"}


def all_denied(outcome: object) -> bool:
    values = outcome if isinstance(outcome, list) else [outcome]
    return all(value == DENIED for value in values)


def outcomes(report: MatrixReport, sender: str, **match: object) -> list[object]:
    def wanted(probe: Probe) -> bool:
        return all(getattr(probe, key) == value for key, value in match.items())

    found = report.outcome(sender, wanted)
    assert found, f"no probe of {sender} matches {match}"
    return [outcome for _, outcome in found]


def test_lockdown_qemu_lists_the_helpers_and_calls_each(matrix: Matrix) -> None:
    report = matrix("lockdown", "many-uids")
    assert outcomes(report, "qemu", kind="driver", member="ListQueuedOwners") == ["reply:as"]
    for helper, name in (("net", "vm.helper.net"), ("tpm", "vm.helper.tpm")):
        for via in ("unique", name):
            assert outcomes(report, "qemu", kind="call", target=helper, via=via, member="Save", **VMSTATE) == [
                ["reply:ay", f"error:{REQUESTED_ERROR}"]
            ]
            assert outcomes(report, "qemu", kind="call", target=helper, via=via, member="Load", **VMSTATE) == [
                ["reply:", f"error:{REQUESTED_ERROR}"]
            ]
            assert outcomes(
                report, "qemu", kind="call", target=helper, via=via, member="Get", path="/org/qemu/VMState1"
            ) == [["reply:v"]]
        # a wrong path, or no interface: denied even to QEMU
        assert all(
            all_denied(o)
            for o in outcomes(
                report, "qemu", kind="call", target=helper, via="unique", member="Load", path="/org/qemu/Elsewhere"
            )
        )
        assert all(
            all_denied(o)
            for o in outcomes(report, "qemu", kind="call", target=helper, via="unique", member="Save", interface=None)
        )
        assert outcomes(
            report, "qemu", kind="call", target=helper, via="unique", member="GetAll", path="/org/qemu/VMState1"
        ) == [["reply:a{sv}"]]


def test_lockdown_helpers_cannot_reach_each_other(matrix: Matrix) -> None:
    report = matrix("lockdown", "many-uids")
    # by unique name, by the other's own name, and through the shared name (whose primary owner is net)
    assert outcomes(report, "net", kind="call", target="tpm", via="unique", member="Save", **VMSTATE) == [[DENIED]]
    assert outcomes(report, "net", kind="call", target="tpm", via="vm.helper.tpm", member="Load", **VMSTATE) == [
        [DENIED]
    ]
    assert outcomes(report, "tpm", kind="call", target="net", via="org.qemu.VMState1", member="Save", **VMSTATE) == [
        [DENIED]
    ]
    assert outcomes(
        report, "tpm", kind="call", target="net", via="unique", member="Get", path="/org/qemu/VMState1"
    ) == [[DENIED]]
    assert outcomes(report, "net", kind="own", name="vm.helper.tpm") == [DENIED]
    assert outcomes(report, "tpm", kind="own", name="vm.helper.net") == [DENIED]
    assert outcomes(report, "net", kind="driver", member="ListQueuedOwners") == [DENIED]


def test_lockdown_helpers_cannot_call_qemu_or_watch_the_bus(matrix: Matrix) -> None:
    report = matrix("lockdown", "many-uids")
    for helper in ("net", "tpm"):
        calls = outcomes(report, helper, kind="call", target="qemu")
        assert calls
        assert all(all_denied(outcome) for outcome in calls)
        assert outcomes(report, helper, kind="own", name="org.qemu") == [DENIED]
        assert outcomes(report, helper, kind="driver", member="BecomeMonitor") == [DENIED]
        assert outcomes(report, helper, kind="driver", member="UpdateActivationEnvironment") == [DENIED]


def test_default_clients_and_manager(matrix: Matrix) -> None:
    report = matrix("default", "many-uids")
    # fd passing through the bus: the call that sets up the peer-to-peer listener connection
    assert outcomes(
        report,
        "viewer",
        kind="call",
        target="qemu",
        via="org.qemu",
        member="RegisterListener",
        interface="org.qemu.Display1.Console",
    ) == [["reply:", f"error:{REQUESTED_ERROR}"]]
    # QEMU calls a client's clipboard by unique name, but not a helper's
    assert outcomes(
        report,
        "qemu",
        kind="call",
        target="viewer",
        via="unique",
        member="Request",
        interface="org.qemu.Display1.Clipboard",
    ) == [["reply:say", f"error:{REQUESTED_ERROR}"]]
    assert outcomes(
        report,
        "qemu",
        kind="call",
        target="net",
        via="unique",
        member="Request",
        interface="org.qemu.Display1.Clipboard",
    ) == [[DENIED]]
    # only the manager controls qemu-vnc
    server = {"member": "SetPassword", "path": "/org/qemu/Vnc1/Server"}
    assert outcomes(report, "manager", kind="call", target="vnc", via="org.qemu.vnc", **server) == [
        ["reply:", f"error:{REQUESTED_ERROR}"]
    ]
    assert outcomes(report, "viewer", kind="call", target="vnc", via="org.qemu.vnc", **server) == [[DENIED]]
    assert outcomes(report, "qemu", kind="call", target="vnc", via="org.qemu.vnc", **server) == [[DENIED]]
    assert outcomes(
        report,
        "net",
        kind="call",
        target="qemu",
        via="org.qemu",
        member="Press",
        interface="org.qemu.Display1.Keyboard",
    ) == [[DENIED]]
    # peer-to-peer interfaces are never reachable over the bus
    assert all(
        all_denied(o) for o in outcomes(report, "qemu", kind="call", target="viewer", via="unique", member="Scanout")
    )
    assert all(
        all_denied(o) for o in outcomes(report, "viewer", kind="call", target="qemu", via="org.qemu", member="Scanout")
    )


def test_two_uids_separates_qemu_but_not_the_peers_sharing_the_bus_user(matrix: Matrix) -> None:
    report = matrix("default", "two-uids")
    # QEMU's name and QEMU's calls stay QEMU's
    assert outcomes(report, "net", kind="own", name="org.qemu") == [DENIED]
    assert outcomes(report, "net", kind="call", target="tpm", via="unique", member="Save", **VMSTATE) == [[DENIED]]
    # but a helper shares its user with the clients and the manager: it has their rights
    keyboard = {"member": "Press", "interface": "org.qemu.Display1.Keyboard"}
    assert outcomes(report, "net", kind="call", target="qemu", via="org.qemu", **keyboard) == [
        ["reply:", f"error:{REQUESTED_ERROR}"]
    ]
    assert outcomes(report, "net", kind="own", name="vm.helper.tpm") == ["reply:u=3"]  # allowed, and taken already


def test_single_uid_isolates_nothing(matrix: Matrix) -> None:
    report = matrix("default", "single-uid")
    assert outcomes(report, "net", kind="call", target="tpm", via="unique", member="Save", **VMSTATE) == [
        ["reply:ay", f"error:{REQUESTED_ERROR}"]
    ]
    assert outcomes(report, "net", kind="own", name="org.qemu") == ["reply:u=3"]
    # still not: names nobody owns, monitoring
    assert outcomes(report, "net", kind="own", name="org.qemu.Unlisted") == [DENIED]
    assert outcomes(report, "net", kind="driver", member="BecomeMonitor") == [DENIED]


def test_outsiders_cannot_connect(matrix: Matrix) -> None:
    for scenario in ("single-uid", "many-uids"):
        connect = [check for check in matrix("lockdown", scenario).checks if check.kind == "connect"]
        assert len(connect) == 1
        assert connect[0].ok, connect


# --- the matrix can fail ---------------------------------------------------------------------------

#: Rules that open a hole in the generated policy, and the kinds of check that must then fail.
HOLES = {
    "unrequested replies": (['<allow send_type="method_return" send_requested_reply="false"/>'], {"reply"}),
    "unrequested errors": (['<allow send_type="error" send_requested_reply="false"/>'], {"error"}),
    "unrequested errors, both ends": (
        [
            '<allow send_type="error" send_requested_reply="false"/>',
            '<allow receive_type="error" receive_requested_reply="false"/>',
        ],
        {"error"},
    ),
    "any user": (['<allow user="*"/>'], {"connect"}),
}


def _with_rules(config: str, rules: list[str]) -> str:
    """The generated configuration with ``rules`` added to its default policy."""
    head, policy, tail = config.partition('<policy context="default">')
    assert policy, config
    return head + policy + "".join(f"\n    {rule}" for rule in rules) + tail


@pytest.mark.parametrize("hole", list(HOLES))
def test_the_matrix_catches_a_hole_in_the_policy(registry: Registry, hole: str) -> None:
    """Every check of the kinds the hole concerns fails, and nothing else does."""
    rules, kinds = HOLES[hole]
    report = run_matrix(
        registry, builtin_deployment("lockdown"), "many-uids", mutate=lambda config: _with_rules(config, rules)
    )
    assert all(rule in report.config for rule in rules)
    concerned = [check for check in report.checks if check.kind in kinds]
    assert concerned
    assert {check.kind for check in report.failures} == kinds
    assert len(report.failures) == len(concerned)


def test_an_unrequested_error_is_refused_at_both_ends(registry: Registry) -> None:
    """With the hole on the sending side only, the receivers' rules still refuse the errors and
    none is delivered: only the daemon's words, "Rejected receive message" where "Rejected send
    message" is due, show the hole (the reason the check reads them)."""
    rules, _kinds = HOLES["unrequested errors"]
    report = run_matrix(
        registry, builtin_deployment("lockdown"), "many-uids", mutate=lambda config: _with_rules(config, rules)
    )
    errors = [check for check in report.checks if check.kind == "error"]
    assert len(errors) == 6  # three peers, each to the two others
    assert all(check.observed.startswith("not delivered") for check in errors)
    assert all("Rejected receive message" in check.observed for check in errors)
    assert not any(check.ok for check in errors)


# --- users are named by uid ---------------------------------------------------------------------------


def _helper_named_root() -> Deployment:
    """The lock-down deployment with the network helper's user named ``root`` (uid 64502): a
    deployment file may not say so any more, one built in code still can."""
    lockdown = builtin_deployment("lockdown")
    net = dataclasses.replace(lockdown.peer("net"), user=User("root", 64502))
    return dataclasses.replace(lockdown, peers=tuple(net if peer.id == "net" else peer for peer in lockdown.peers))


def test_a_user_named_root_has_its_uids_rights_and_root_none(registry: Registry) -> None:
    """dbus-daemon resolves a policy's user name through its passwd database: written by name,
    the helper's policy went to uid 0, and root owned the helper's names.  Written by uid, the
    helper (uid 64502) has exactly its rights, and root cannot even connect."""
    report = run_matrix(registry, _helper_named_root(), "many-uids")
    assert not report.failures, [f"{f.description}: {f.observed}" for f in report.failures]
    intruders = [check for check in report.checks if check.kind == "intruder" and check.description.startswith("root")]
    assert intruders
    assert all(check.observed == "disconnected" for check in intruders)


def test_by_name_root_took_the_helpers_names_by_uid_nobody_does(registry: Registry) -> None:
    """Item 7 of issue 21 on the daemon: the same policy written by name, as it was, let a uid 0
    process queue for the helper's names and shut the helper (uid 64502) out; written by uid,
    the helper gets them and root does not even connect."""
    deployment = _helper_named_root()
    bus = deployment.bus_user_in("many-uids")
    helper = deployment.peer("net").user
    names = list(deployment.peer("net").owns)
    claimants = [("root", User("root", 0), names), ("the helper", helper, names)]

    def by_uid(listen: str) -> str:
        return generate_policy(registry, deployment, "many-uids", listen)

    def by_name(listen: str) -> str:
        return by_uid(listen).replace('user="64502"', 'user="root"')

    users = all_users(deployment)
    as_written = {claim["label"]: claim for claim in claim_names(by_uid, bus, users, claimants)}
    as_it_was = {claim["label"]: claim for claim in claim_names(by_name, bus, users, claimants)}
    assert as_written["root"]["outcome"] == "disconnected"
    assert as_written["the helper"]["names"] == {"org.qemu.VMState1": "reply:u=1", "vm.helper.net": "reply:u=1"}
    assert as_it_was["root"]["names"] == {"org.qemu.VMState1": "reply:u=1", "vm.helper.net": "reply:u=1"}
    assert as_it_was["the helper"]["outcome"] == "disconnected"


def test_clients_cannot_queue_for_the_names_of_qemu_and_the_helpers(matrix: Matrix) -> None:
    """A place in a name's queue is a way in: QEMU calls every owner queued for
    org.qemu.VMState1, and whoever queues for org.qemu takes it over when QEMU leaves."""
    report = matrix("default", "many-uids")
    for client in ("viewer", "vnc", "manager"):
        for name in ("org.qemu", "org.qemu.VMState1"):
            assert outcomes(report, client, kind="own", name=name) == [DENIED], (client, name)
    for helper in ("net", "tpm"):
        assert outcomes(report, helper, kind="own", name="org.qemu") == [DENIED]


# --- what counts as refused -----------------------------------------------------------------------


def _one_connection(path: str, serve: Callable[[socket.socket], None]) -> threading.Thread:
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)

    def run() -> None:
        with server:
            connection, _ = server.accept()
            with connection:
                serve(connection)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _read_line(connection: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = connection.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def _authenticate_then_close(connection: socket.socket) -> None:
    """The server side of a successful EXTERNAL authentication, then a hang-up: what dbus-daemon
    does to a user its policy does not let connect."""
    assert b"AUTH EXTERNAL" in _read_line(connection)
    connection.sendall(b"OK 0123456789abcdef0123456789abcdef\r\n")
    assert b"NEGOTIATE_UNIX_FD" in _read_line(connection)
    connection.sendall(b"AGREE_UNIX_FD\r\n")
    assert b"BEGIN" in _read_line(connection)


@pytest.mark.parametrize(
    ("serve", "outcome"),
    [
        (None, "failed:connect:"),  # no socket at all
        (lambda connection: None, "failed:auth:"),  # hung up before authenticating
        (_authenticate_then_close, "disconnected"),
    ],
)
def test_only_the_daemons_refusal_counts_as_refused(
    tmp_path: Path, serve: Callable[[socket.socket], None] | None, outcome: str
) -> None:
    """The outsider's probe tells a refusal by the daemon from a connection that failed for any
    other reason, which proves nothing about the policy (a BrokenPipeError used to pass)."""
    path = str(tmp_path / "bus")
    thread = _one_connection(path, serve) if serve is not None else None
    result = connect_only(f"unix:path={path}")
    if thread is not None:
        thread.join(timeout=10)
    assert not result["ok"]
    assert str(result["outcome"]).startswith(outcome), result

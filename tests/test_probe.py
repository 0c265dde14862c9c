"""``qemu-dbus probe``: values, reproductions, results, order; fake peers with planted faults.

The fake peers (`probe_peer.py`) run under ``--launch`` exactly as a QEMU binary does: a real
``dbus-daemon``, a real process that crashes (SIGABRT), hangs, stalls or replies wrongly, killed
and relaunched by the probe.  Each planted fault must come out with its kind and, for integers,
its threshold; the validating peer must yield nothing.
"""

from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sphinxext_qemudbus.live.probe.descriptors import DATAGRAM, KINDS, make_descriptor
from sphinxext_qemudbus.live.probe.findings import reproduction
from sphinxext_qemudbus.live.probe.plan import Target, plan_targets
from sphinxext_qemudbus.live.probe.results import load_results, parse_results, record_release
from sphinxext_qemudbus.live.probe.values import arg_values, documented_values, neutral_value, type_values
from sphinxext_qemudbus.model.registry import Registry, packaged_registry

PEER = Path(__file__).resolve().parent / "probe_peer.py"
ROOT = Path(__file__).resolve().parent.parent


def probe(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sphinxext_qemudbus", "probe", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


@pytest.fixture
def fake_qemu(tmp_path: Path) -> str:
    """An executable that starts the fake peer the way a QEMU binary starts."""
    wrapper = tmp_path / "fake-qemu"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {PEER} "$@"\n', encoding="utf-8")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return str(wrapper)


# --- values -------------------------------------------------------------------------------------


def test_documented_numbers_and_named_bounds_are_tried_just_inside_and_outside() -> None:
    values = documented_values("t", ["QEMU checks num_slot < MaxSlots (10) and returns Invalid."], {"MaxSlots": 10})
    labels = {(v.value, v.label) for v in values}
    assert (9, "MaxSlots (10) read from the peer - 1") in labels
    assert (10, "MaxSlots (10) read from the peer") in labels
    assert (11, "MaxSlots (10) read from the peer + 1") in labels
    assert all(v.origin == "registry" for v in values)


def test_a_documented_range_stays_within_the_type() -> None:
    values = {v.value for v in documented_values("q", ["The full range, 0 to 65535, is accepted."], {})}
    assert values == {0, 1, 65534, 65535}  # -1 and 65536 are not uint16 values


def test_version_numbers_and_identifiers_are_not_bounds() -> None:
    assert documented_values("u", ["Since 7.0, Console_0 uses 0x1 flags"], {}) == []


def test_type_boundaries() -> None:
    assert [v.value for v in type_values("i")] == [0, 1, 2**31 - 1, -1, -(2**31), 2**30]
    doubles = [v.value for v in type_values("d")]
    assert any(math.isnan(d) for d in doubles)
    assert math.inf in doubles
    assert -math.inf in doubles
    assert any(d == 0 and math.copysign(1, d) < 0 for d in doubles)  # -0.0
    strings = [v.value for v in type_values("s")]
    assert "" in strings
    assert max(len(s) for s in strings) == 1 << 20


def test_values_are_seeded_and_without_repeats() -> None:
    first = arg_values("u", ["0 to 3"], {}, "seed:Member:kind")
    again = arg_values("u", ["0 to 3"], {}, "seed:Member:kind")
    other = arg_values("u", ["0 to 3"], {}, "other:Member:kind")
    assert [v.value for v in first] == [v.value for v in again]
    assert [v.value for v in first] != [v.value for v in other]
    assert len({v.value for v in first}) == len(first)
    assert first[0].origin == "registry"


def test_a_descriptor_argument_gets_every_kind() -> None:
    assert [v.value for v in arg_values("h", [], {}, "s", KINDS)] == list(KINDS)


def test_descriptors_are_what_they_say(tmp_path: Path) -> None:
    import socket

    for kind in KINDS:
        descriptor = make_descriptor(kind, str(tmp_path))
        try:
            mode = os.fstat(descriptor.fd).st_mode
            if kind == DATAGRAM:
                sock = socket.socket(fileno=os.dup(descriptor.fd))
                assert sock.type == socket.SOCK_DGRAM
                sock.close()
            assert stat.S_ISSOCK(mode) or stat.S_ISFIFO(mode) or stat.S_ISREG(mode) or stat.S_ISCHR(mode)
        finally:
            descriptor.close()
    assert list(tmp_path.iterdir()) == []


def test_neutral_values() -> None:
    assert neutral_value("u", ["0 left, 1 middle"]).value == 0
    assert neutral_value("u", ["from 3 to 9"]).value == 3
    assert neutral_value("as", []).value == []
    assert neutral_value("(ius)", []).value == (0, 0, "")


# --- reproductions --------------------------------------------------------------------------------


def test_busctl_reproduces_what_it_can_pass() -> None:
    line = reproduction("org.qemu", "/org/qemu/Display1/Console_0", "org.qemu.Display1.Mouse", "Press", ["u"], [9])
    assert (
        line == 'busctl --address="$BUS" call org.qemu /org/qemu/Display1/Console_0 org.qemu.Display1.Mouse Press u 9'
    )
    grab = reproduction("org.qemu", "/p", "org.qemu.Display1.Clipboard", "Grab", ["u", "u", "as"], [3, 0, ["a b"]])
    assert grab.endswith("Grab uuas 3 0 1 'a b'")


def test_python_reproduces_what_busctl_cannot_pass() -> None:
    line = reproduction("org.qemu", "/o", "org.qemu.Display1.Console", "RegisterListener", ["h"], [DATAGRAM])
    assert line.startswith("python3 -c ")
    assert "socket.SOCK_DGRAM" in line
    assert 'os.environ["BUS"]' in line
    long = reproduction("org.qemu", "/o", "i.f", "M", ["s"], ["A" * 100000])
    assert '"A"*100000' in long
    assert len(long) < 1000
    assert "'\"'\"'" not in long  # no single quote inside the shell's single quotes


# --- the plan ---------------------------------------------------------------------------------------


def test_the_order_a_real_client_needs() -> None:
    from sphinxext_qemudbus.live.conform import parse_reply

    registry = Registry.load([packaged_registry()])
    objects = [
        parse_reply(
            "org.qemu",
            path,
            "<node>" + "".join(f'<interface name="{name}"/>' for name in names) + "</node>",
        )
        for path, names in {
            "/org/qemu/Display1/Console_0": ["org.qemu.Display1.Console", "org.qemu.Display1.Mouse"],
            "/org/qemu/Display1/Clipboard": ["org.qemu.Display1.Clipboard"],
        }.items()
    ]
    targets = plan_targets(registry, objects, "unix")
    names = [t.name for t in targets]
    assert names[0] == "org.qemu.Display1.Console.RegisterListener"
    assert names.index("org.qemu.Display1.Clipboard.Register") < names.index("org.qemu.Display1.Clipboard.Grab")
    assert names[-1] == "org.qemu.Display1.Clipboard.Unregister"
    grab = next(t for t in targets if t.name.endswith("Clipboard.Grab"))
    assert grab.needs_registration
    assert grab.signature == ("u", "u", "as")
    assert "org.qemu.Display1.Error.Failed" in grab.documented_errors()
    register = next(t for t in targets if t.name.endswith("RegisterListener"))
    assert isinstance(register, Target)
    assert register.signature == ("h",)


# --- the recorded results ---------------------------------------------------------------------------


FAULT = {
    "kind": "crash", "code": "L201", "interface": "org.qemu.Display1.Mouse", "member": "Press",
    "path": "/org/qemu/Display1/Console_0", "call": "Press(button=9)", "threshold": "crashes for every value >= 9 of button",
    "trigger": "max", "evidence": "QEMU exited (killed by SIGABRT)", "command": "busctl ...",
}  # fmt: skip


def test_a_rerun_replaces_its_release_and_keeps_the_others(tmp_path: Path) -> None:
    record_release(str(tmp_path), "7.2.22", "1", "QEMU 7.2.22", ["org.qemu.Display1.Mouse.Press"], 10, [FAULT])
    record_release(str(tmp_path), "10.0.2", "1", "QEMU 10.0.2", ["org.qemu.Display1.Mouse.Press"], 10, [FAULT])
    assert [f.release for f in load_results(str(tmp_path)).for_member("org.qemu.Display1.Mouse.Press")] == [
        "7.2.22", "10.0.2",
    ]  # fmt: skip
    record_release(str(tmp_path), "10.0.2", "1", "QEMU 10.0.2", ["org.qemu.Display1.Mouse.Press"], 12, [])
    results = load_results(str(tmp_path))
    assert [f.release for f in results.for_member("org.qemu.Display1.Mouse.Press")] == ["7.2.22"]
    assert results.probed_in("org.qemu.Display1.Mouse.Press") == ["7.2.22", "10.0.2"]


def test_a_damaged_results_file_costs_only_what_is_damaged() -> None:
    document = {"format": 1, "releases": {"7.2": {"faults": [FAULT, {"kind": 3}]}, "not a release": {}}}
    results = parse_results(document)
    assert len(results.releases) == 1
    assert len(results.releases[0].faults) == 1
    assert len(results.problems) == 2
    assert parse_results([]).problems


# --- the command line -------------------------------------------------------------------------------


def test_an_existing_bus_is_refused_without_allow_destructive() -> None:
    result = probe("--address", "unix:path=/nonexistent")
    assert result.returncode == 2
    assert "refusing to probe a peer on an existing bus" in result.stderr


def test_qemu_arg_needs_launch() -> None:
    result = probe("--address", "unix:path=/x", "--allow-destructive", "--qemu-arg=-S")
    assert result.returncode == 2
    assert "--qemu-arg is for --launch" in result.stderr


# --- fake peers with planted faults -------------------------------------------------------------------


def _faults(result: subprocess.CompletedProcess[str]) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for item in json.loads(result.stdout):
        message = item["message"]
        member = message.split(": ", 1)[1].split(" ", 1)[0]
        found[(item["code"], member)] = message
    return found


def test_every_planted_fault_is_found_with_its_kind_and_threshold(fake_qemu: str) -> None:
    result = probe(
        "--launch", fake_qemu, "--stall", "0.5", "--hang-timeout", "3", "--call-timeout", "3", "--format", "json"
    )
    assert result.returncode == 1, result.stderr
    faults = _faults(result)
    crash = faults[("L201", "org.qemu.Display1.Mouse.Press")]
    assert "Press(button=7); crashes for every value >= 7 of button" in crash
    assert "killed by SIGABRT" in crash
    assert "Assertion `button < 7' failed" in crash
    assert (
        'busctl --address="$BUS" call org.qemu /org/qemu/Display1/Console_0 org.qemu.Display1.Mouse Press u 7' in crash
    )
    assert "Release(button=4294967295)" in faults[("L202", "org.qemu.Display1.Mouse.Release")]
    stall = faults[("L203", "org.qemu.Display1.Mouse.RelMotion")]
    assert "RelMotion(dx=-1, dy=0); stalls for every value <= -1 of dx" in stall
    assert "signature is 's', the registry's is ''" in faults[("L204", "org.qemu.Display1.Keyboard.Press")]
    assert "org.qemu.Display1.Error.Surprise" in faults[("L205", "org.qemu.Display1.Keyboard.Release")]
    assert set(faults) == {
        ("L201", "org.qemu.Display1.Mouse.Press"),
        ("L202", "org.qemu.Display1.Mouse.Release"),
        ("L203", "org.qemu.Display1.Mouse.RelMotion"),
        ("L204", "org.qemu.Display1.Keyboard.Press"),
        ("L205", "org.qemu.Display1.Keyboard.Release"),
    }


def test_a_peer_that_validates_everything_yields_nothing(fake_qemu: str) -> None:
    result = probe("--launch", fake_qemu, "--qemu-arg=--validate", "--stall", "0.5", "--hang-timeout", "3")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert "6 members of org.qemu probed (QEMU 10.0.2)" in result.stderr
    assert "0 relaunches" in result.stderr
    assert "nothing found" in result.stderr


def test_a_peer_it_did_not_launch_is_reported_then_left_alone(fake_qemu: str) -> None:
    """With --address (and --allow-destructive) the first crash is reported, and the run stops
    there, saying what was left: the probe cannot bring back a peer it did not start."""
    from sphinxext_qemudbus.live.launch import QemuLaunch

    with QemuLaunch(fake_qemu) as launched:
        result = probe(
            "--address", launched.address, "--allow-destructive", "--member", "org.qemu.Display1.Mouse.*",
            "--format", "json",
        )  # fmt: skip
        assert launched.wait_exit(10) == -6  # SIGABRT
    assert result.returncode == 1, result.stderr
    found = {(item["code"], item["message"].split(" (", 1)[0]) for item in json.loads(result.stdout)}
    assert ("L017", "org.qemu.Display1.Mouse.Press: not finished") in found
    assert ("L017", "org.qemu.Display1.Mouse.RelMotion: not probed") in found
    (crash,) = [item["message"] for item in json.loads(result.stdout) if item["code"] == "L201"]
    assert crash.startswith("crash: org.qemu.Display1.Mouse.Press Press(button=7): org.qemu left the bus")


def test_results_are_recorded_per_release(fake_qemu: str, tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    registry.mkdir()
    for source in Path(packaged_registry()).glob("org.qemu.Display1.*.xml"):
        (registry / source.name).write_bytes(source.read_bytes())
    args = ["--launch", fake_qemu, "--registry", str(registry), "--member", "org.qemu.Display1.Mouse.Press", "-q"]
    result = probe(*args, "--record")
    assert result.returncode == 1, result.stderr
    recorded = load_results(str(registry))
    assert [r.release for r in recorded.releases] == ["10.0.2"]
    (fault,) = recorded.releases[0].faults
    assert fault.threshold == "crashes for every value >= 7 of button"
    assert recorded.releases[0].qemu == "QEMU emulator version 10.0.2 (a fake peer with planted faults)"
    # The same release probed again, now validating: its fault no longer reproduces and is gone.
    again = probe(*args, "--record", "--qemu-arg=--validate")
    assert again.returncode == 0, again.stderr
    assert load_results(str(registry)).releases[0].faults == ()


def test_every_answer_qemu_waits_for_is_varied() -> None:
    from sphinxext_qemudbus.live.probe.engine import answer_probes
    from sphinxext_qemudbus.model.releases import parse_release

    registry = Registry.load([packaged_registry()])
    view = registry.at_release(parse_release("10.0") or (0, 0, 0), "unix")
    listener = view.interface("org.qemu.Display1.Listener")
    mapped = view.interface("org.qemu.Display1.Listener.Unix.Map")
    probes = answer_probes(listener, [mapped])
    keys = {(p.key, p.variant.kind) for p in probes}
    assert (("org.freedesktop.DBus.Properties", "GetAll", "org.qemu.Display1.Listener"), "silence") in keys
    assert (("org.freedesktop.DBus.Properties", "GetAll", "org.qemu.Display1.Listener.Unix.Map"), "error") in keys
    assert (("org.qemu.Display1.Listener.Unix.Map", "ScanoutMap", ""), "silence") in keys
    announced = [p for p in probes if p.key[0] == "org.qemu.Display1.Listener.Unix.Map"]
    assert all(p.interfaces == (listener, mapped) and p.setup for p in announced)
    reads = [p.variant.label for p in answer_probes(view.interface("org.qemu.Display1.AudioInListener"))]
    assert "1048576 bytes" in reads
    assert "zero values" in reads


@pytest.mark.parametrize("name", ["empty-struct", "string-without-nul"])
def test_a_malformed_message_on_a_listener_connection_is_a_finding(fake_qemu: str, name: str) -> None:
    """No bus daemon stands between QEMU and a listener: what QEMU's side sends there is validated
    before anything decodes it, and a malformed message breaks that connection (closed, with its
    descriptors), not the probe: it is reported against the registration, and the run goes on."""
    from .hostile import BY_NAME

    result = probe(
        "--launch", fake_qemu, f"--qemu-arg=--hostile-listener={name}", "--hang-timeout", "5",
        "--member", "org.qemu.Display1.Console.RegisterListener", "--per-member", "1", "--format", "json",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    faults = [item["message"] for item in json.loads(result.stdout) if item["code"] != "L017"]
    assert len(faults) == 1, faults
    assert faults[0].startswith("contract: org.qemu.Display1.Console.RegisterListener RegisterListener, then")
    assert "QEMU broke the listener connection" in faults[0]
    assert BY_NAME[name].words in faults[0]
    assert "probing org.qemu.Display1.Console.RegisterListener on" in result.stderr  # the run went on


def test_every_descriptor_of_a_run_is_closed(fake_qemu: str) -> None:
    """A run with a crash, a hang, a stall, relaunches, listener connections QEMU's side breaks and
    every kind of descriptor passed: once it is over, the probe's process holds exactly the
    descriptors it held before (counted in this process, which runs the probe itself)."""
    import time

    from sphinxext_qemudbus.live.launch import QemuLaunch
    from sphinxext_qemudbus.live.probe.engine import Options
    from sphinxext_qemudbus.live.probe.run import probe_peer
    from sphinxext_qemudbus.live.wire import connect_bus
    from sphinxext_qemudbus.model.releases import parse_release

    registry = Registry.load([packaged_registry()]).at_release(parse_release("10.0") or (0, 0, 0), "unix")
    options = Options(per_member=12, call_timeout=3, stall=0.5, hang_timeout=3, deadline=time.monotonic() + 200)
    with QemuLaunch(fake_qemu, ["--hostile-listener=string-without-nul"]) as launched:
        before = sorted(os.listdir("/proc/self/fd"))
        with connect_bus(launched.address, time.monotonic() + 10) as wire:
            members = ["org.qemu.Display1.Mouse.*", "org.qemu.Display1.Console.RegisterListener"]
            report = probe_peer(registry, wire, "org.qemu", options, launched, members, address=launched.address)
        after = sorted(os.listdir("/proc/self/fd"))
    assert {fault.kind for fault in report.faults} == {"crash", "hang", "stall", "contract"}
    assert report.relaunches >= 2
    assert after == before


def test_a_reply_over_the_tools_bound_is_refused_unread_and_said(fake_qemu: str) -> None:
    """A legal reply with more values than the tool reads is skipped without being decoded; the
    finding says so, rather than that no reply came."""
    result = probe(
        "--launch", fake_qemu, "--qemu-arg=--huge-reply", "--member", "org.qemu.Display1.Keyboard.Press",
        "--format", "json",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    (fault,) = [item["message"] for item in json.loads(result.stdout) if item["code"] == "L204"]
    assert fault.startswith("contract: org.qemu.Display1.Keyboard.Press Press(keycode=0): QEMU replied, but its reply")
    assert "over the tool's bound" in fault


def test_the_loop_serves_until_what_a_blocking_caller_waits_for_has_come() -> None:
    """The probe works one blocking step at a time on `live.loop`: a call waits for its reply by
    running the loop with a ``done`` predicate, and the loop hands control back as soon as it
    holds, with every other connection still open and served."""
    import socket
    import time

    from jeepney import DBusAddress, new_method_call

    from sphinxext_qemudbus.live.loop import Connection, Loop
    from sphinxext_qemudbus.live.message import MEMBER
    from sphinxext_qemudbus.live.wire import Received, Wire

    class Handler:
        def __init__(self) -> None:
            self.members: list[str | None] = []

        def opened(self, connection: Connection) -> None: ...

        def received(self, connection: Connection, received: Received) -> None:
            self.members.append(received.message.field(MEMBER))

        def refused(self, connection: Connection, error: object) -> None: ...

        def closed(self, connection: Connection, problem: str | None) -> None: ...

    loop = Loop()
    ours, theirs = socket.socketpair()
    handler = Handler()
    connection = Connection(loop, Wire(ours), "peer", handler)
    other = Wire(theirs)
    other.send(new_method_call(DBusAddress("/p", "org.example", "org.example.I"), "First"), time.monotonic() + 5)
    assert loop.run(time.monotonic() + 30, lambda: bool(handler.members))
    assert handler.members == ["First"]
    assert connection.state == "open"
    loop.close_all()
    other.close()

"""`qemu-dbus conform` against a real dbus-daemon and a real peer process.

The peer (``conform_service.py``, jeepney) owns ``org.qemu`` and answers Introspect with the XML
a test gives it, like QEMU's GDBus objects would; the command runs as its own process, as a
developer runs it against a VM's bus.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .test_conform import CONSOLE, VM

ROOT = Path(__file__).resolve().parent.parent
SERVICE = Path(__file__).resolve().parent / "conform_service.py"

CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={folder}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""

# A QEMU display's object tree: GDBus answers for the nodes between the root and each object.
TREE = {
    "/": '<node><node name="org"/></node>',
    "/org": '<node><node name="qemu"/></node>',
    "/org/qemu": '<node><node name="Display1"/></node>',
    "/org/qemu/Display1": '<node><node name="VM"/><node name="Console_0"/></node>',
    "/org/qemu/Display1/VM": VM,
    "/org/qemu/Display1/Console_0": CONSOLE,
}


@contextmanager
def private_bus(folder: Path, config_text: str = CONFIG) -> Iterator[str]:
    """A private dbus-daemon (the policy allows everything, monitoring included: same user);
    yields its address."""
    daemon = shutil.which("dbus-daemon")
    if daemon is None:
        if os.environ.get("QEMU_DBUS_REQUIRE_MATRIX"):
            pytest.fail("QEMU_DBUS_REQUIRE_MATRIX is set but there is no dbus-daemon")
        pytest.skip("no dbus-daemon on this machine")
    config = folder / "bus.conf"
    config.write_text(config_text.format(folder=folder))
    command = [daemon, f"--config-file={config}", "--nofork", "--print-address=1"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
        assert process.stdout is not None
        address = process.stdout.readline().strip()
        try:
            assert address.startswith("unix:"), address
            yield address
        finally:
            process.terminate()


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a private dbus-daemon for this module."""
    with private_bus(tmp_path_factory.mktemp("bus")) as address:
        yield address


@contextmanager
def peer(
    bus: str,
    objects: dict[str, str | None],
    folder: Path,
    name: str = "org.qemu",
    queue: bool = False,
    sent: dict[str, dict[str, dict[str, str | None]]] | None = None,
    listener: str | None = None,
    listeners: dict[str, str] | None = None,
) -> Iterator[str]:
    """A process that owns ``name`` (or, with ``queue``, may wait in its queue) and serves
    ``objects`` (object path → introspection XML), sending property values of the types the XML
    gives, or of those in ``sent``, and playing QEMU's side of the listeners registered on its
    consoles as ``listener`` says (or ``listeners``, console path → mode); yields the peer's
    unique name."""
    table_file = folder / f"table-{name}-{queue}.json"
    table_file.write_text(json.dumps({"objects": objects, "sent": sent or {}, "listeners": listeners or {}}))
    command = [sys.executable, str(SERVICE), bus, name, str(table_file), *(["--queue"] if queue else [])]
    command += ["--listener", listener] if listener else []
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        try:
            ready, unique = process.stdout.readline().split()
            assert ready == "ready"
            yield unique
        finally:
            process.terminate()


def conform(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sphinxext_qemudbus", "conform", "--platform", "unix", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def findings(result: subprocess.CompletedProcess[str]) -> list[tuple[str, str]]:
    return sorted((d["code"], d["path"]) for d in json.loads(result.stdout))


def test_a_conforming_peer(bus: str, tmp_path: Path) -> None:
    with peer(bus, TREE, tmp_path):
        result = conform("--address", bus, "--dest", "org.qemu", "--strict")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert "6 of 6 objects of org.qemu introspected (QEMU 11.1, unix): conforms to the registry" in result.stderr


def test_a_deviating_peer(bus: str, tmp_path: Path) -> None:
    tree = dict(TREE)
    tree["/org/qemu/Display1/Console_0"] = CONSOLE.replace('<property type="s" name="Type" access="read"/>', "")
    tree["/org/qemu/Display1/VM"] = VM.replace("</interface>\n</node>", '<method name="Quit"/></interface></node>')
    tree["/org/qemu/Display1"] = '<node><node name="VM"/><node name="Console_0"/><node name="Gone"/></node>'
    with peer(bus, tree, tmp_path):
        result = conform("--address", bus, "--dest", "org.qemu", "--format", "json")
    assert result.returncode == 1, result.stderr
    assert findings(result) == [
        ("L001", f"{ROOT}/interfaces/org.qemu.Display1.Console.xml"),
        ("L010", "org.qemu:/org/qemu/Display1/Gone"),
        ("L101", "org.qemu:/org/qemu/Display1/VM"),
    ]
    gone = next(d for d in json.loads(result.stdout) if d["code"] == "L010")
    assert "org.freedesktop.DBus.Error.UnknownObject" in gone["message"]


def test_the_release_is_detected_or_the_findings_say_none_matches(bus: str, tmp_path: Path) -> None:
    old_vm = VM.replace('<property type="as" name="Interfaces" access="read"/>', "")
    old_console = CONSOLE.replace('<property type="as" name="Interfaces" access="read"/>', "")
    tree = {**TREE, "/org/qemu/Display1/VM": old_vm, "/org/qemu/Display1/Console_0": old_console}
    with peer(bus, tree, tmp_path):
        older = conform("--address", bus, "--dest", "org.qemu", "--strict")
    assert older.returncode == 0, older.stdout + older.stderr
    assert "introspected (QEMU 8.0, unix): conforms to the registry" in older.stderr
    assert "  release: exports what QEMU 7.0 to 8.0 exported\n" in older.stderr
    # Console has the Interfaces property (8.1), VM not: no QEMU release looked like that.
    with peer(bus, {**TREE, "/org/qemu/Display1/VM": old_vm}, tmp_path):
        mixed = conform("--address", bus, "--dest", "org.qemu", "--format", "json")
        forced = conform("--address", bus, "--dest", "org.qemu", "--format", "json", "--qemu-version", "8.0")
    assert findings(mixed) == [("L001", f"{ROOT}/interfaces/org.qemu.Display1.VM.xml"), ("L110", "org.qemu")]
    unmatched = next(d for d in json.loads(mixed.stdout) if d["code"] == "L110")
    assert "org.qemu matches no QEMU release: it exports org.qemu.Display1.Console.Interfaces" in unmatched["message"]
    assert "checked against QEMU 8.1, the closest" in unmatched["message"]
    assert findings(forced) == [("L107", "org.qemu:/org/qemu/Display1/Console_0")]  # --qemu-version forces


def test_named_objects_only(bus: str, tmp_path: Path) -> None:
    tree = dict(TREE)
    tree["/org/qemu/Display1/Console_0"] = CONSOLE.replace('name="Head" access="read"', 'name="Head" access="write"')
    with peer(bus, tree, tmp_path):
        vm = conform("--address", bus, "--dest", "org.qemu", "--object", "/org/qemu/Display1/VM")
        console = conform("--address", bus, "--dest", "org.qemu", "--object", "/org/qemu/Display1/Console_0")
    assert vm.returncode == 0, vm.stdout + vm.stderr
    assert "1 of 1 objects" in vm.stderr
    assert console.returncode == 1
    assert "[L005]" in console.stdout
    assert "Console.xml:" in console.stdout


def test_property_values_sent_with_another_type(bus: str, tmp_path: Path) -> None:
    # A helper that builds its variants by hand: Head announced as 'u', sent as 'i'; Label left out.
    sent: dict[str, dict[str, dict[str, str | None]]] = {
        "/org/qemu/Display1/Console_0": {"org.qemu.Display1.Console": {"Head": "i", "Label": None}}
    }
    with peer(bus, TREE, tmp_path, sent=sent):
        result = conform("--address", bus, "--dest", "org.qemu", "--format", "json")
        unread = conform("--address", bus, "--dest", "org.qemu", "--no-values", "--strict")
    assert result.returncode == 1
    assert findings(result) == [
        ("L006", f"{ROOT}/interfaces/org.qemu.Display1.Console.xml"),
        ("L106", "org.qemu:/org/qemu/Display1/Console_0"),
    ]
    assert unread.returncode == 0, unread.stdout + unread.stderr


def test_a_peer_that_does_not_answer(bus: str, tmp_path: Path) -> None:
    tree: dict[str, str | None] = {**TREE, "/org/qemu/Display1/VM": None}
    with peer(bus, tree, tmp_path):
        result = conform("--address", bus, "--dest", "org.qemu", "--timeout", "0.5", "--format", "json")
    assert result.returncode == 1
    assert findings(result) == [("L010", "org.qemu:/org/qemu/Display1/VM")]
    assert "no reply to Introspect within 0.5 s" in json.loads(result.stdout)[0]["message"]


def test_a_peer_that_hangs_is_given_up_on(bus: str, tmp_path: Path) -> None:
    children = [f"Console_{n}" for n in range(5)]
    tree: dict[str, str | None] = {
        **{path: xml for path, xml in TREE.items() if not path.startswith("/org/qemu/Display1/")},
        "/org/qemu/Display1": "<node>" + "".join(f'<node name="{c}"/>' for c in children) + "</node>",
        **{f"/org/qemu/Display1/{c}": None for c in children},
    }
    with peer(bus, tree, tmp_path):
        result = conform("--address", bus, "--dest", "org.qemu", "--timeout", "0.3", "--format", "json")
    assert result.returncode == 1
    messages = [d["message"] for d in json.loads(result.stdout)]
    assert [d["code"] for d in json.loads(result.stdout)] == ["L010"] * 5
    assert sum("no reply to Introspect within 0.3 s" in m for m in messages) == 3
    assert sum("not sent: org.qemu left the last 3 calls unanswered" in m for m in messages) == 2


def test_a_name_nobody_owns(bus: str) -> None:
    for name in ("org.qemu.Nobody", ":1.9999"):
        result = conform("--address", bus, "--dest", name, "--object", "/")
        assert result.returncode == 2
        assert f"error: no peer owns {name} on this bus" in result.stderr
        assert result.stdout == ""


def test_bus_names_the_registry_gives(bus: str, tmp_path: Path) -> None:
    vmstate = {"/org/qemu/VMState1": (ROOT / "interfaces" / "org.qemu.VMState1.xml").read_text()}
    with (
        peer(bus, vmstate, tmp_path, "org.qemu.VMState1"),
        peer(bus, vmstate, tmp_path, "org.qemu.VMState1", queue=True) as queued,
        peer(bus, vmstate, tmp_path, "org.qemu.Helper"),
    ):
        # QEMU walks the queue of org.qemu.VMState1: a helper waiting in it is found.
        first = conform("--address", bus, "--dest", "org.qemu.VMState1", "--object", "/org/qemu/VMState1", "--strict")
        second = conform("--address", bus, "--dest", queued, "--object", "/org/qemu/VMState1", "--strict")
        third = conform(
            "--address", bus, "--dest", "org.qemu.Helper", "--object", "/org/qemu/VMState1", "--format", "json"
        )
    assert first.returncode == 0, first.stdout + first.stderr
    assert second.returncode == 0, second.stdout + second.stderr
    assert third.returncode == 0, third.stderr  # a warning
    assert findings(third) == [("L105", "org.qemu.Helper:/org/qemu/VMState1")]
    assert "neither owns nor queues for org.qemu.VMState1" in json.loads(third.stdout)[0]["message"]


def test_a_name_only_qemu_holds_has_one_owner(tmp_path: Path) -> None:
    """QEMU requests org.qemu without refusing the queue (GDBus, no flags): when another
    connection took the name first, QEMU waits behind it and every client talks to the other.
    On a real daemon, conform says so from both ends: QEMU queued, and someone queued."""
    vm = {path: xml for path, xml in TREE.items() if path != "/org/qemu/Display1/Console_0"}
    with (
        private_bus(tmp_path) as bus,
        peer(bus, vm, tmp_path, "org.qemu") as impostor,
        peer(bus, vm, tmp_path, "org.qemu", queue=True) as qemu,
    ):
        queued = conform("--address", bus, "--dest", qemu, "--object", "/org/qemu/Display1/VM", "--format", "json")
        owner = conform("--address", bus, "--dest", "org.qemu", "--object", "/org/qemu/Display1/VM", "--format", "json")
    assert findings(queued) == [("L105", f"{qemu}:/org/qemu/Display1/VM")], queued.stdout + queued.stderr
    assert f"its owner {impostor} gets every call made to org.qemu" in json.loads(queued.stdout)[0]["message"]
    assert findings(owner) == [("L105", "org.qemu:/org/qemu/Display1/VM")], owner.stdout + owner.stderr
    assert f"{qemu} queues for org.qemu behind org.qemu" in json.loads(owner.stdout)[0]["message"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--address", "unix:path=/nonexistent/bus", "--dest", "org.qemu"), "cannot connect to unix:path=/nonexistent"),
        (("--address", "nonsense", "--dest", "org.qemu"), "invalid --address 'nonsense': a D-Bus address reads"),
        (("--address", "bogus", "--dest", "org.qemu"), "invalid --address 'bogus'"),
        (("--address", "unix:path", "--dest", "org.qemu"), "'path' is not KEY=VALUE"),
        (("--address", "unix:guid=1", "--dest", "org.qemu"), "needs path= or abstract="),
        (("--address", "unix:path=/x", "--dest", "org.qemu", "--qemu-version", "seven"), "invalid --qemu-version"),
        (("--address", "unix:path=/x", "--dest", "org.qemu", "--deadline", "-1"), "positive number of seconds"),
        (("--address", "unix:path=/x"), "--dest is required"),
        (("--address", "SESSION", "--dest", "org.qemu"), "DBUS_SESSION_BUS_ADDRESS is not set"),
        (("--address", "tcp:host=localhost,port=1", "--dest", "org.qemu"), "not supported"),
        (("--address", "unix:path=/x", "--dest", "org..qemu"), "invalid --dest"),
        (("--address", "unix:path=/x", "--dest", "org.qemu", "--object", "rel"), "invalid --object"),
        (("--address", "unix:path=/x", "--dest", "org.qemu", "--registry", "/nonexistent"), "no such folder"),
        (("--address", "unix:path=/x", "--dest", "org.qemu", "--qemu-arg=-name"), "--qemu-arg is for --launch"),
        (("--address", "unix:path=/x", "--launch", "qemu-system-x86_64"), "not allowed with argument"),
        (("--launch", "/nonexistent/qemu"), "--launch: no QEMU at /nonexistent/qemu"),
        (
            (
                "--dest",
                "org.qemu",
            ),
            "one of the arguments --address --launch is required",
        ),
    ],
)
def test_usage_and_connection_problems(args: tuple[str, ...], words: str) -> None:
    result = conform(*args, env={k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"})
    assert result.returncode == 2
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_a_registry_with_xml_errors_is_refused(tmp_path: Path) -> None:
    (tmp_path / "org.qemu.Broken1.xml").write_text("<node><interface name='org.qemu.Broken1'>")
    result = conform("--address", "unix:path=/x", "--dest", "org.qemu", "--registry", str(tmp_path))
    assert result.returncode == 2
    assert "[X001]" in result.stdout
    assert "the registry has XML errors" in result.stderr


# --- --listen against a peer that plays QEMU's part, broken in one way each ---------------------


MAP = "Console_0 display-map:/org/qemu/Display1/Listener"


def listen_to(bus: str, folder: Path, mode: str, *extra: str) -> subprocess.CompletedProcess[str]:
    with peer(bus, TREE, folder, listener=mode):
        return conform(
            "--address",
            bus,
            "--dest",
            "org.qemu",
            "--no-values",
            "--listen",
            "1",
            "--timeout",
            "1",
            "--format",
            "json",
            *extra,
        )


@pytest.mark.parametrize(
    ("mode", "found", "words"),
    [
        ("good", [], ""),
        ("wrong-signature", [("L008", f"{ROOT}/interfaces/org.qemu.Display1.Listener.xml")], "with (iiiiuay)"),
        ("wrong-path", [("L009", "Console_0 display:/org/qemu/Display1/Other")], "places org.qemu.Display1.Listener"),
        ("outside", [("L108", "Console_0 display:/org/qemu/Display1/Listener")], "outside the latest Scanout (64x32)"),
        ("mode-switch", [], ""),
        ("hung-handshake", [("L013", "Console_0 display:/org/qemu/Display1/Listener")], "did not complete"),
        ("silent", [("L014", "org.qemu:/org/qemu/Display1/Console_0")], "no reply within 1 s"),
        ("garbage", [("L018", "Console_0 display:/org/qemu/Display1/Listener")], "not a D-Bus message"),
        # Listener.Unix.Map (a second listener on the console serves it; QEMU 9.2 and later use it):
        ("map-small", [("L108", MAP)], "holds 4096 bytes; offset 0 + stride 256 x height 32 is 8192"),
        ("map-pipe", [("L108", MAP)], "ScanoutMap passed a pipe, not a regular file or memfd"),
        ("map-outside", [("L108", MAP)], "UpdateMap (60,0 8x8) lies outside the mapped surface (64x32)"),
        ("map-reply", [("L108", MAP)], "UpdateMap expects a reply"),
        ("map-pixels", [("L108", MAP)], "32 of 32 rows of the mapped surface differ from the plain listener's image"),
        ("map-shrink", [("L108", MAP)], "the shared surface shrank to 0 bytes after ScanoutMap"),
        # A slow handshake is reported for what it is, not as silence.
        (
            "slow-handshake",
            [("L013", "Console_0 display:/org/qemu/Display1/Listener")],
            "the server answered AUTH after 0.7 s, then not NEGOTIATE_UNIX_FD within 1 s",
        ),
        # A bad answer is quoted in a few bytes, on one line.
        ("auth-garbage", [("L013", "Console_0 display:/org/qemu/Display1/Listener")], "... (9000 bytes)"),
    ],
)
def test_listen_finds_exactly_what_the_peer_breaks(
    bus: str, tmp_path: Path, mode: str, found: list[tuple[str, str]], words: str
) -> None:
    result = listen_to(bus, tmp_path, mode)
    assert findings(result) == found, result.stdout + result.stderr
    assert result.returncode == (1 if found and found[0][0] < "L1" else 0)
    assert all(words in d["message"] for d in json.loads(result.stdout))
    assert "Traceback" not in result.stderr


def test_listen_summary_names_what_was_observed(bus: str, tmp_path: Path) -> None:
    result = listen_to(bus, tmp_path, "good", "--object", "/org/qemu/Display1/Console_0", "--format", "text")
    assert result.returncode == 0, result.stderr
    assert "listeners registered: Console_0 display" in result.stderr
    assert "  org.qemu.Display1.Listener: Scanout x1, Update x1\n" in result.stderr
    assert "  org.qemu.Display1.Listener.Unix.Map: ScanoutMap x1, UpdateMap x1\n" in result.stderr
    assert (
        "  shared memory: Console_0 display-map: 1 ScanoutMap (memfd, sealed against seal, mapped read-only), 1 UpdateMap "
        "(0 outside the surface), pixels equal the plain listener's (64x32): checks passed\n"
    ) in result.stderr, result.stderr
    assert "  never exercised: org.qemu.Display1.Listener: ScanoutDMABUF, UpdateDMABUF" in result.stderr


def test_listen_follows_a_mode_switch_without_scanout(bus: str, tmp_path: Path) -> None:
    """QEMU sends no Scanout when the guest switches modes; the registry tells a client to read
    the console's size when an Update does not fit its image, and conform does as it says."""
    result = listen_to(bus, tmp_path, "mode-switch", "--format", "text", "--strict")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Console_0 display: 1 size change without a Scanout (now 128x64)" in result.stderr


def test_listen_checks_the_no_reply_flag_where_the_registry_says_noreply(bus: str, tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    shutil.copytree(ROOT / "interfaces", registry)
    listener = registry / "org.qemu.Display1.Listener.xml"
    listener.write_text(
        listener.read_text().replace(
            '<method name="Update">',
            '<method name="Update">\n<annotation name="org.freedesktop.DBus.Method.NoReply" value="true"/>',
        )
    )
    assert findings(listen_to(bus, tmp_path, "good", "--registry", str(registry))) == []
    result = listen_to(bus, tmp_path, "no-reply-flag", "--registry", str(registry))
    assert findings(result) == [("L011", "Console_0 display:/org/qemu/Display1/Listener")]
    assert result.returncode == 1


# --- bounds: time and memory --------------------------------------------------------------


def test_a_bus_that_never_answers_hello(tmp_path: Path) -> None:
    """A fake bus: it authenticates the client, then reads and never says a word."""
    path = tmp_path / "mute-bus"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)
    kept: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            kept.append(client)
            for line in client.makefile("rb"):
                if b"AUTH" in line:
                    client.sendall(b"OK 0123456789abcdef0123456789abcdef\r\n")
                elif line.startswith(b"NEGOTIATE_UNIX_FD"):
                    client.sendall(b"AGREE_UNIX_FD\r\n")
                elif line.startswith(b"BEGIN"):
                    break  # Hello arrives next: never answered

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        result = conform("--address", f"unix:path={path}", "--dest", "org.qemu", "--timeout", "1")
        elapsed = time.monotonic() - started
    finally:
        server.close()
        for client in kept:
            client.close()
    assert result.returncode == 2
    assert f"cannot connect to unix:path={path}: no answer within 1 s" in result.stderr
    assert elapsed < 30  # the process ends; how fast is for make bench, not a test


def test_the_deadline_bounds_the_whole_run(bus: str, tmp_path: Path) -> None:
    tree: dict[str, str | None] = {**TREE, "/org/qemu/Display1/VM": None, "/org/qemu/Display1/Console_0": None}
    with peer(bus, tree, tmp_path):
        result = conform(
            "--address", bus, "--dest", "org.qemu", "--deadline", "1", "--timeout", "20", "--format", "json"
        )
    assert result.returncode == 1
    codes = [d["code"] for d in json.loads(result.stdout)]
    assert "L017" in codes, result.stdout
    unchecked = next(d for d in json.loads(result.stdout) if d["code"] == "L017")
    assert "deadline" in unchecked["message"]


def test_long_paths_are_bounded_in_bytes_not_only_in_count(bus: str, tmp_path: Path) -> None:
    from sphinxext_qemudbus.live.conform import LiveBus, connect, introspect_objects

    element = "x" * 200
    tree: dict[str, str | None] = {"/": f'<node><node name="{element}"/></node>'}
    path = ""
    for _ in range(40):
        path += f"/{element}"
        tree[path] = f'<node><node name="{element}"/></node>'
    with peer(bus, tree, tmp_path):
        wire = connect(bus, 5, time.monotonic() + 60)
        with wire:
            walk = introspect_objects(LiveBus(wire, 5), "org.qemu", ["/"], True, max_bytes=20_000)
    assert len(walk.objects) < 20
    (unchecked,) = walk.unchecked
    assert unchecked.code == "L017"
    assert "bytes of object paths and introspection data" in unchecked.message


def test_a_bus_that_does_not_allow_monitoring(tmp_path: Path) -> None:
    deny = '<deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>'
    with private_bus(tmp_path, CONFIG.replace("</policy>", f"  {deny}\n  </policy>")) as address:
        result = conform("--address", address, "--monitor", "1")
    assert result.returncode == 2
    assert "cannot monitor" in result.stderr
    assert "the bus refused BecomeMonitor" in result.stderr
    assert "Traceback" not in result.stderr


def test_monitor_alone_sees_the_bus(bus: str, tmp_path: Path) -> None:
    # A conforming peer introspected by a second conform run while the first one monitors.
    with peer(bus, TREE, tmp_path):
        command = [sys.executable, "-m", "sphinxext_qemudbus", "conform", "--address", bus, "--monitor", "60"]
        with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as watcher:
            assert watcher.stderr is not None
            assert "monitoring" in watcher.stderr.readline()
            assert conform("--address", bus, "--dest", "org.qemu").returncode == 0
            watcher.send_signal(signal.SIGINT)
            out, err = watcher.communicate(timeout=60)
    # Ctrl-C stops monitoring early: the report covers what was seen, and the run does not pass.
    assert watcher.returncode == 130, out + err
    assert "interrupted before the end (nothing found so far)" in err
    assert "GetAll(org.qemu.Display1.Console) x1" in err
    assert "GetAll(org.qemu.Display1.VM) x1" in err

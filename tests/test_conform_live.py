"""`qemu-dbus conform` against a real dbus-daemon and a real peer process.

The peer (``conform_service.py``, jeepney) owns ``org.qemu`` and answers Introspect with the XML
a test gives it, like QEMU's GDBus objects would; the command runs as its own process, as a
developer runs it against a VM's bus.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
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


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a private dbus-daemon for this module."""
    daemon = shutil.which("dbus-daemon")
    if daemon is None:
        if os.environ.get("QEMU_DBUS_REQUIRE_MATRIX"):
            pytest.fail("QEMU_DBUS_REQUIRE_MATRIX is set but there is no dbus-daemon")
        pytest.skip("no dbus-daemon on this machine")
    folder = tmp_path_factory.mktemp("bus")
    config = folder / "bus.conf"
    config.write_text(CONFIG.format(folder=folder))
    command = [daemon, f"--config-file={config}", "--nofork", "--print-address=1"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
        assert process.stdout is not None
        address = process.stdout.readline().strip()
        try:
            assert address.startswith("unix:"), address
            yield address
        finally:
            process.terminate()


@contextmanager
def peer(
    bus: str,
    objects: dict[str, str | None],
    folder: Path,
    name: str = "org.qemu",
    queue: bool = False,
    sent: dict[str, dict[str, dict[str, str | None]]] | None = None,
) -> Iterator[str]:
    """A process that owns ``name`` (or, with ``queue``, may wait in its queue) and serves
    ``objects`` (object path → introspection XML), sending property values of the types the XML
    gives, or of those in ``sent``; yields the peer's unique name."""
    table_file = folder / f"table-{name}-{queue}.json"
    table_file.write_text(json.dumps({"objects": objects, "sent": sent or {}}))
    command = [sys.executable, str(SERVICE), bus, name, str(table_file), *(["--queue"] if queue else [])]
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
    assert "6 of 6 objects of org.qemu introspected (unix): conforms to the registry" in result.stderr


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
    result = conform("--address", bus, "--dest", "org.qemu.Nobody", "--object", "/", "--format", "json")
    assert result.returncode == 1
    assert findings(result) == [("L010", "org.qemu.Nobody:/")]
    assert "ServiceUnknown" in json.loads(result.stdout)[0]["message"]


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


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--address", "unix:path=/nonexistent/bus", "--dest", "org.qemu"), "cannot connect to unix:path=/nonexistent"),
        (("--address", "nonsense", "--dest", "org.qemu"), "cannot connect to nonsense"),
        (("--address", "SESSION", "--dest", "org.qemu"), "DBUS_SESSION_BUS_ADDRESS is not set"),
        (("--address", "tcp:host=localhost,port=1", "--dest", "org.qemu"), "not supported"),
        (("--address", "unix:path=/x", "--dest", "org..qemu"), "invalid --dest"),
        (("--address", "unix:path=/x", "--dest", "org.qemu", "--object", "rel"), "invalid --object"),
        (("--address", "unix:path=/x", "--dest", "org.qemu", "--registry", "/nonexistent"), "no such folder"),
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

"""`qemu-dbus conform` against a real QEMU: its D-Bus display, audio and chardev on a private bus,
and its dbus-vmstate object during a real migration to a file.

QEMU runs with TCG and no disk (the BIOS alone draws a screen), so any machine with Debian's
``qemu-system-x86`` and ``qemu-system-gui`` (the ``ui-dbus`` and ``audio-dbus`` modules) runs these
tests.  Elsewhere they are skipped, and say why; CI sets ``QEMU_DBUS_REQUIRE_QEMU=1`` (``.ci/run``
installs both packages), which turns a skip into a failure.  Every check runs the command as its
own process, as a developer runs it against a VM.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from .test_conform_live import ROOT, conform, private_bus

QEMU = "qemu-system-x86_64"
HELPER = Path(__file__).resolve().parent / "vmstate_helper.py"


def _unavailable() -> str | None:
    """Why this machine cannot run QEMU's D-Bus display, or None."""
    binary = shutil.which(QEMU)
    if binary is None:
        return f"no {QEMU} on this machine (Debian: qemu-system-x86)"
    listed = subprocess.run([binary, "-display", "help"], capture_output=True, text=True, timeout=60, check=False)
    if not re.search(r"^dbus$", listed.stdout, re.MULTILINE):
        return f"{QEMU} has no D-Bus display (Debian: qemu-system-gui holds the ui-dbus module)"
    return None


@pytest.fixture(scope="module")
def qemu_release() -> str:
    """The X.Y release of the QEMU on this machine; skips (or fails, in CI) without one."""
    reason = _unavailable()
    if reason is not None:
        skip(reason)
    version = subprocess.run([QEMU, "--version"], capture_output=True, text=True, timeout=60, check=True).stdout
    match = re.search(r"version (\d+)\.(\d+)", version)
    assert match, version
    return f"{match.group(1)}.{match.group(2)}"


def skip(reason: str) -> None:
    if os.environ.get("QEMU_DBUS_REQUIRE_QEMU"):
        pytest.fail(f"QEMU_DBUS_REQUIRE_QEMU is set, but {reason}")
    pytest.skip(reason)


def bare(address: str) -> str:
    """QEMU's option parser splits at commas: the address without its ``,guid=...``."""
    return address.split(",", 1)[0]


@contextmanager
def qemu(*args: str, folder: Path, name: str) -> Iterator[subprocess.Popen[bytes]]:
    log = (folder / f"{name}.log").open("wb")
    command = [QEMU, "-machine", "pc", "-accel", "tcg", "-nodefaults", "-m", "64", *args]
    with log, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT) as process:
        try:
            yield process
        finally:
            process.terminate()
            process.wait(30)


def wait_for_name(address: str, name: str, seconds: float = 60) -> None:
    from jeepney.bus_messages import message_bus
    from jeepney.io.blocking import open_dbus_connection

    with open_dbus_connection(bus=bare(address)) as connection:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if connection.send_and_get_reply(message_bus.NameHasOwner(name), timeout=10).body[0]:
                return
            time.sleep(0.1)
    pytest.fail(f"{name} did not appear on the bus within {seconds} s")


@pytest.fixture(scope="module")
def display(qemu_release: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A QEMU with the D-Bus display, audio and a D-Bus chardev on a private bus; its address."""
    folder = tmp_path_factory.mktemp("qemu-display")
    with private_bus(folder) as address:
        display = f"dbus,addr={bare(address)},gl=off,audiodev=snd0"
        with qemu(
            "-vga", "std", "-display", display, "-audiodev", "dbus,id=snd0",
            "-device", "intel-hda", "-device", "hda-output,audiodev=snd0",
            "-chardev", "dbus,id=ser0,name=org.qemu.console.serial.0", "-device", "isa-serial,chardev=ser0",
            "-monitor", "none", "-serial", "none",
            folder=folder, name="display",
        ):  # fmt: skip
            wait_for_name(address, "org.qemu")
            yield address


def test_introspection_against_the_release_qemu_runs(display: str, qemu_release: str) -> None:
    result = conform("--address", display, "--dest", "org.qemu", "--qemu-version", qemu_release, "--strict")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert f"objects of org.qemu introspected (QEMU {qemu_release}, unix): conforms to the registry" in result.stderr


def test_what_qemu_sends_its_listeners(display: str, qemu_release: str) -> None:
    result = conform(
        "--address", display, "--dest", "org.qemu", "--qemu-version", qemu_release, "--listen", "4", "--strict"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stderr
    assert "listeners registered: Console_0 display, Audio audio-out, Audio audio-in" in summary
    for member in (
        "Listener.Scanout x1",
        "Listener.Update x",
        "AudioOutListener.Init x",
        "AudioOutListener.SetEnabled x",
    ):
        assert f"org.qemu.Display1.{member}" in summary, summary
    assert "GetAll(org.qemu.Display1.Listener) x1" in summary  # QEMU reads the listener's properties
    # Every message had the registry's signature, path, flags and content.  After a mode switch
    # QEMU sends Updates for the new size with no new Scanout; conform reads the console's size
    # then, as the registry tells clients to, and counts the change instead of warning.
    assert result.stdout == ""


def qmp(path: Path, *commands: tuple[str, dict[str, object]]) -> list[dict[str, object]]:
    """Run QMP commands on QEMU's unix socket; their replies."""
    with socket.socket(socket.AF_UNIX) as sock:
        end = time.monotonic() + 30
        while True:
            try:
                sock.connect(str(path))
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)
        stream = sock.makefile("rw")
        stream.readline()  # the greeting
        replies = []
        for command, arguments in (("qmp_capabilities", {}), *commands):
            stream.write(json.dumps({"execute": command, "arguments": arguments}) + "\n")
            stream.flush()
            while "return" not in (reply := json.loads(stream.readline())) and "error" not in reply:
                pass  # an event
            replies.append(reply)
        return replies[1:]


def wait_for_migration(path: Path) -> str:
    end = time.monotonic() + 60
    while time.monotonic() < end:
        (reply,) = qmp(path, ("query-migrate", {}))
        status = reply["return"].get("status") if isinstance(reply.get("return"), dict) else None  # type: ignore[union-attr]
        if status in ("completed", "failed"):
            return str(status)
        time.sleep(0.1)
    return "timed out"


def vmstate_qemu(address: str, control: Path, folder: Path, name: str, *args: str) -> Any:
    """A QEMU with a dbus-vmstate object for the two helpers, controlled over QMP at ``control``."""
    vmstate = f"dbus-vmstate,id=dv,addr={bare(address)},id-list=helper-a,,helper-b"
    qmp_socket = f"unix:{control},server=on,wait=off"
    return qemu("-display", "none", "-object", vmstate, "-qmp", qmp_socket, *args, folder=folder, name=name)


@contextmanager
def helper(address: str, ident: str) -> Iterator[subprocess.Popen[str]]:
    with subprocess.Popen([sys.executable, str(HELPER), address, ident], stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        try:
            assert process.stdout.readline().startswith("ready")
            yield process
        finally:
            process.terminate()


def test_monitor_checks_the_vmstate_calls_of_a_migration(qemu_release: str, tmp_path: Path) -> None:
    if not re.search(
        r"^\s*dbus-vmstate$",
        subprocess.run([QEMU, "-object", "help"], capture_output=True, text=True, check=False).stdout,
        re.M,
    ):
        skip(f"{QEMU} has no dbus-vmstate object")
    stream = tmp_path / "migration"
    with private_bus(tmp_path) as address, helper(address, "helper-a") as first, helper(address, "helper-b") as second:
        command = [sys.executable, "-m", "sphinxext_qemudbus", "conform", "--address", address, "--monitor", "120"]
        command += ["--qemu-version", qemu_release]
        with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as monitor:
            assert monitor.stderr is not None
            assert "monitoring" in monitor.stderr.readline()
            source, target = tmp_path / "source.qmp", tmp_path / "target.qmp"
            with vmstate_qemu(address, source, tmp_path, "source"):
                qmp(source, ("migrate", {"uri": f"exec:cat > {stream}"}))
                assert wait_for_migration(source) == "completed"
            with vmstate_qemu(address, target, tmp_path, "target", "-incoming", f"exec:cat {stream}"):
                assert wait_for_migration(target) == "completed"
                time.sleep(0.5)  # the monitor's copies of the last replies are on their way
                monitor.send_signal(signal.SIGINT)  # ends monitoring early; the report follows
                out, err = monitor.communicate(timeout=60)
        first.terminate()
        second.terminate()
        loaded = sorted(
            line.strip() for process in (first, second) for line in process.communicate(timeout=30)[0].splitlines()
        )
    assert loaded == ["loaded state of helper-a", "loaded state of helper-b"]
    # Interrupted, the run never passes (130); the report covers the whole migration.
    assert monitor.returncode == 130, out + err
    assert out == ""
    assert "org.qemu.VMState1.Save x2" in err, err
    assert "org.qemu.VMState1.Load x2" in err, err
    assert "GetAll(org.qemu.VMState1)" in err
    assert "interrupted before the end (nothing found so far)" in err

"""`qemu-dbus conform` against real QEMU releases: their D-Bus display, audio and chardevs on a
private bus (``conform --launch``), and their dbus-vmstate object during a real migration to a file.

Two releases run: the system's QEMU (Debian 12: 7.2, packages ``qemu-system-x86`` and
``qemu-system-gui``) and QEMU 10.0.2 from Debian's bookworm-backports, which ``make qemu-releases``
unpacks into the cache (``ci/fetch-qemu``) beside the system's.  QEMU runs with TCG and no disk
(the BIOS alone draws a screen).  A release this machine lacks is skipped, saying why; CI sets
``QEMU_DBUS_REQUIRE_QEMU=1`` (``.ci/run`` installs the packages and runs ``make
qemu-releases``), which turns a skip into a failure.  Every check runs the command as its own
process, as a developer runs it against a VM.
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
from dataclasses import dataclass
from pathlib import Path

import pytest

from sphinxext_qemudbus.live.launch import LaunchError, QemuLaunch, qemu_option_address
from sphinxext_qemudbus.model.releases import feature_release, parse_release, release_text

from .test_conform_live import ROOT, conform, private_bus

HELPER = Path(__file__).resolve().parent / "vmstate_helper.py"
#: The release ci/fetch-qemu unpacks into the cache.
BACKPORTS = "10.0.2"


@dataclass(frozen=True)
class Qemu:
    """One QEMU binary to test, and the X.Y.Z release it says it is."""

    binary: str
    release: str

    @property
    def feature_release(self) -> str:
        """X.Y: what ``--qemu-version`` takes."""
        return ".".join(self.release.split(".")[:2])


def backports_binary() -> Path:
    """Where ci/fetch-qemu leaves QEMU 10.0.2 (its wrapper, which sets QEMU_MODULE_DIR)."""
    cache = os.environ.get("QEMU_DBUS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "qemu-dbus"
    )
    return Path(cache) / f"qemu-{BACKPORTS}" / "qemu-system-x86_64"


def _find(which: str) -> Qemu | str:
    """The QEMU to test as ``which``, or why this machine has none."""
    if which == "system":
        binary = shutil.which("qemu-system-x86_64")
        if binary is None:
            return "no qemu-system-x86_64 on this machine (Debian: qemu-system-x86 and qemu-system-gui)"
    else:
        binary = str(backports_binary())
        if not os.access(binary, os.X_OK):
            return f"no QEMU {BACKPORTS} at {binary}: run make qemu-releases (Debian 12: bookworm-backports)"
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60, check=False).stdout
    listed = subprocess.run([binary, "-display", "help"], capture_output=True, text=True, timeout=60, check=False)
    if not re.search(r"^dbus$", listed.stdout, re.MULTILINE):
        return f"{binary} has no D-Bus display (Debian: qemu-system-gui holds the ui-dbus module)"
    match = re.search(r"version (\d+\.\d+(?:\.\d+)?)", version)
    assert match, version
    return Qemu(binary, match.group(1))


def skip(reason: str) -> None:
    if os.environ.get("QEMU_DBUS_REQUIRE_QEMU"):
        pytest.fail(f"QEMU_DBUS_REQUIRE_QEMU is set, but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module", params=["system", "backports"], ids=["system-qemu", f"qemu-{BACKPORTS}"])
def qemu(request: pytest.FixtureRequest) -> Qemu:
    """Each QEMU release this machine has; skips (or fails, in CI) without it."""
    found = _find(request.param)
    if isinstance(found, str):
        skip(found)
    assert isinstance(found, Qemu)
    return found


@pytest.fixture(scope="module")
def display(qemu: Qemu) -> Iterator[QemuLaunch]:
    """A QEMU with every D-Bus object its display offers, on a private bus, for the module."""
    with QemuLaunch(qemu.binary) as launched:
        yield launched


def test_introspection_against_the_release_qemu_runs(display: QemuLaunch, qemu: Qemu) -> None:
    version = qemu.feature_release
    result = conform("--address", display.address, "--dest", "org.qemu", "--qemu-version", version, "--strict")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert (
        f"11 of 11 objects of org.qemu introspected (QEMU {version}, unix): conforms to the registry" in result.stderr
    )


def test_the_release_is_detected_from_what_qemu_exports(display: QemuLaunch, qemu: Qemu) -> None:
    """Without --qemu-version: the releases QEMU can be, judged from what it exports, include the
    one it runs, and it is checked against the newest of them without a finding."""
    result = conform("--address", display.address, "--dest", "org.qemu", "--strict")
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"release: exports what QEMU ([0-9.]+)(?: to ([0-9.]+))? exported", result.stderr)
    assert match, result.stderr
    oldest, newest = parse_release(match.group(1)), parse_release(match.group(2) or match.group(1))
    assert oldest is not None
    assert newest is not None
    assert oldest <= feature_release(parse_release(qemu.release) or (0, 0, 0)) <= newest
    assert f"introspected (QEMU {release_text(newest)}, unix): conforms to the registry" in result.stderr


def test_what_qemu_sends_its_listeners(display: QemuLaunch, qemu: Qemu) -> None:
    result = conform(
        "--address", display.address, "--dest", "org.qemu", "--qemu-version", qemu.feature_release,
        "--listen", "4", "--strict",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stderr
    registered = re.search(r"listeners registered: (.*)\n", summary)
    assert registered, summary
    consoles = ["Console_0 display", "Console_1 display"]
    if shares_memory(qemu):  # a second listener per console serves Listener.Unix.Map
        consoles += ["Console_0 display-map", "Console_1 display-map"]
    assert sorted(registered.group(1).split(", ")) == sorted(["Audio audio-in", "Audio audio-out", *consoles])
    assert re.search(r"  org\.qemu\.Display1\.Listener: .*Scanout x\d+, Update x\d+", summary), summary
    assert "  org.qemu.Display1.AudioOutListener: Init x1, SetEnabled x1" in summary
    # The clipboard client: QEMU reads its properties and calls Register on it inside the Register
    # handler, then passes the client's own Release (after a Grab) back to it.
    assert "  clipboard client: registered\n" in summary
    assert "GetAll(org.qemu.Display1.Clipboard) x1" in summary
    assert "  org.qemu.Display1.Clipboard: Register x1, Release x1\n" in summary
    assert f"GetAll(org.qemu.Display1.Listener) x{len(consoles)}" in summary  # QEMU reads each listener's
    # Every message had the registry's signature, path, flags and content.  After a mode switch
    # QEMU sends Updates for the new size with no new Scanout; conform reads the console's size
    # then, as the registry tells clients to, and counts the change instead of warning.
    assert result.stdout == ""


def shares_memory(qemu: Qemu) -> bool:
    """Listener.Unix.Map came with QEMU 9.2."""
    return feature_release(parse_release(qemu.release) or (0, 0, 0)) >= (9, 2, 0)


def test_a_shared_memory_listener_gets_the_console_in_a_memfd(qemu: Qemu) -> None:
    """The one command of the issue: ScanoutMap and UpdateMap observed, their checks passed (the
    descriptor, the read-only mapping, every rectangle inside the surface and sent without
    expecting a reply, the pixels equal to a plain listener's on the same console)."""
    if not shares_memory(qemu):
        pytest.skip(f"QEMU {qemu.release} has no Listener.Unix.Map (9.2 and later)")
    result = conform("--launch", qemu.binary, "--listen", "5")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert re.search(r"  org\.qemu\.Display1\.Listener\.Unix\.Map: ScanoutMap x\d+, UpdateMap x\d+\n", result.stderr)
    shared = re.search(
        r"Console_0 display-map: (\d+) ScanoutMap \(memfd, .*, mapped read-only\), (\d+) UpdateMap "
        r"\(0 outside the surface\), pixels equal the plain listener's \(\d+x\d+\): checks passed",
        result.stderr,
    )
    assert shared, result.stderr
    assert int(shared.group(2)) > 0  # the text console's cursor blinks


# --- --launch: the tool starts and stops the bus and QEMU itself ---------------------------------


def launched_pids(stderr: str) -> list[int]:
    match = re.search(r"\(QEMU pid (\d+), dbus-daemon pid (\d+)\)", stderr)
    assert match, stderr
    return [int(match.group(1)), int(match.group(2))]


def gone(pid: int) -> bool:
    """Whether no process has ``pid`` any more (the tool reaps its children before it exits)."""
    return not Path(f"/proc/{pid}").exists()


def test_launch_runs_and_stops_both(qemu: Qemu) -> None:
    result = conform("--launch", qemu.binary)  # the one command to try conform
    assert result.returncode == 0, result.stdout + result.stderr
    assert "11 of 11 objects of org.qemu introspected" in result.stderr
    assert all(gone(pid) for pid in launched_pids(result.stderr))


def test_launch_passes_arguments_and_reports_a_qemu_that_will_not_start(qemu: Qemu) -> None:
    result = conform("--launch", qemu.binary, "--qemu-arg=-no-such-option")
    assert result.returncode == 2
    assert "error: --launch: " in result.stderr
    assert "before it owned org.qemu" in result.stderr
    assert "-no-such-option" in result.stderr  # QEMU's own last words
    assert "Traceback" not in result.stderr
    named = conform(
        "--launch", qemu.binary, "--qemu-arg=-name", "--qemu-arg=checked", "--object", "/org/qemu/Display1/VM",
        "--qemu-version", qemu.feature_release,
    )  # fmt: skip
    assert named.returncode == 0, named.stdout + named.stderr


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_launch_stops_both_when_interrupted(qemu: Qemu, signal_number: int) -> None:
    command = [sys.executable, "-m", "sphinxext_qemudbus", "conform", "--launch", qemu.binary, "--listen", "60"]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as run:
        assert run.stderr is not None
        first = run.stderr.readline()
        assert "listening" in run.stderr.readline()
        run.send_signal(signal_number)
        out, err = run.communicate(timeout=60)
    # Interrupted (SIGTERM as Ctrl-C), the run never passes: the verdict says so, the status is 130.
    assert "interrupted before the end" in err, out + err
    assert run.returncode == 130, out + err
    assert all(gone(pid) for pid in launched_pids(first))


def test_launch_stops_both_at_the_deadline(qemu: Qemu) -> None:
    result = conform("--launch", qemu.binary, "--listen", "30", "--deadline", "3", "--format", "json")
    assert result.returncode == 1
    assert "L017" in [d["code"] for d in json.loads(result.stdout)]
    assert all(gone(pid) for pid in launched_pids(result.stderr))


def test_a_qemu_that_dies_during_the_run_is_a_finding(qemu: Qemu) -> None:
    command = [sys.executable, "-m", "sphinxext_qemudbus", "conform", "--launch", qemu.binary, "--listen", "60"]
    command += ["--format", "json"]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as run:
        assert run.stderr is not None
        qemu_pid, bus_pid = launched_pids(run.stderr.readline())
        assert "listening" in run.stderr.readline()
        os.kill(qemu_pid, signal.SIGKILL)
        out, err = run.communicate(timeout=90)
    assert run.returncode == 1, out + err
    (died,) = [d for d in json.loads(out) if d["code"] == "L015"]
    assert "the launched QEMU exited during the run (killed by SIGKILL)" in died["message"]
    assert gone(bus_pid)


def vm_name(address: str) -> str:
    from jeepney import DBusAddress, Properties
    from jeepney.io.blocking import open_dbus_connection

    vm = DBusAddress("/org/qemu/Display1/VM", bus_name="org.qemu", interface="org.qemu.Display1.VM")
    with open_dbus_connection(bus=address) as connection:
        reply = connection.send_and_get_reply(Properties(vm).get("Name"), timeout=10)
    return str(reply.body[0][1])


def test_the_launch_api_relaunches_reads_and_kills(qemu: Qemu) -> None:
    """What a prober needs: a crashed QEMU relaunched on the same bus, its last words, and a hung
    one (stopped with SIGSTOP: it ignores SIGTERM as a blocked main loop does) still ended."""
    with QemuLaunch(qemu.binary, ["-name", "probe"]) as launched:
        assert launched.qemu is not None
        first = launched.qemu.pid
        address = launched.address
        assert launched.kill_qemu() == -signal.SIGKILL
        assert launched.qemu_exit() == -signal.SIGKILL
        launched.restart()
        assert launched.qemu.pid != first
        assert launched.address == address
        assert launched.qemu_exit() is None
        assert vm_name(address) == "probe"  # the arguments given, on every start
        os.kill(launched.qemu.pid, signal.SIGSTOP)
        hung = launched.qemu.pid
        bus = launched.bus.pid if launched.bus is not None else 0
    assert gone(hung)
    assert gone(bus)
    with pytest.raises(LaunchError, match="bogus"):
        QemuLaunch(qemu.binary, ["-bogus"]).start()


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


@contextmanager
def vmstate_qemu(
    binary: str, address: str, control: Path, folder: Path, name: str, *args: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A QEMU with a dbus-vmstate object for the two helpers, controlled over QMP at ``control``."""
    vmstate = f"dbus-vmstate,id=dv,addr={qemu_option_address(address)},id-list=helper-a,,helper-b"
    command = [binary, "-machine", "pc", "-accel", "tcg", "-nodefaults", "-m", "64", "-display", "none"]
    command += ["-object", vmstate, "-qmp", f"unix:{control},server=on,wait=off", *args]
    with (folder / f"{name}.log").open("wb") as log, subprocess.Popen(command, stdout=log, stderr=log) as process:
        try:
            yield process
        finally:
            process.terminate()
            process.wait(30)


@contextmanager
def helper(address: str, ident: str) -> Iterator[subprocess.Popen[str]]:
    with subprocess.Popen([sys.executable, str(HELPER), address, ident], stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        try:
            assert process.stdout.readline().startswith("ready")
            yield process
        finally:
            process.terminate()


def test_monitor_checks_the_vmstate_calls_of_a_migration(qemu: Qemu, tmp_path: Path) -> None:
    if not re.search(
        r"^\s*dbus-vmstate$",
        subprocess.run([qemu.binary, "-object", "help"], capture_output=True, text=True, check=False).stdout,
        re.M,
    ):
        skip(f"{qemu.binary} has no dbus-vmstate object")
    stream = tmp_path / "migration"
    with private_bus(tmp_path) as address, helper(address, "helper-a") as first, helper(address, "helper-b") as second:
        command = [sys.executable, "-m", "sphinxext_qemudbus", "conform", "--address", address, "--monitor", "120"]
        command += ["--qemu-version", qemu.feature_release]
        with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as monitor:
            assert monitor.stderr is not None
            assert "monitoring" in monitor.stderr.readline()
            source, target = tmp_path / "source.qmp", tmp_path / "target.qmp"
            with vmstate_qemu(qemu.binary, address, source, tmp_path, "source"):
                qmp(source, ("migrate", {"uri": f"exec:cat > {stream}"}))
                assert wait_for_migration(source) == "completed"
            with vmstate_qemu(qemu.binary, address, target, tmp_path, "target", "-incoming", f"exec:cat {stream}"):
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
    assert "  org.qemu.VMState1: Load x2, Save x2\n" in err, err
    assert "GetAll(org.qemu.VMState1)" in err
    assert "interrupted before the end (nothing found so far)" in err

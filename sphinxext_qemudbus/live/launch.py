"""A private bus and a QEMU of one's own: what ``qemu-dbus conform --launch QEMU`` runs against.

`QemuLaunch` starts a ``dbus-daemon`` (a session bus in a fresh folder, open to this user only),
then the given QEMU binary on it in a full D-Bus configuration (`display_arguments`: two graphic
consoles, audio out and in, a serial port and the human monitor as D-Bus chardevs, the clipboard;
TCG, no disk: the BIOS alone draws a screen), and waits until QEMU owns ``org.qemu``.  It stops
both by process id, QEMU first, on every way out of its ``with`` block: success, an exception,
Ctrl-C.  Both run in a session of their own, so the terminal's Ctrl-C reaches only the tool, which
then stops them; and, where util-linux's ``setpriv`` can arrange it, the kernel kills both when the
thread that started them ends (a tool killed with SIGKILL leaves no QEMU behind).  Launch and
relaunch from a thread that lives as long as the QEMU should, the main thread in practice.

The API is what a prober needs as well: `QemuLaunch.restart` starts QEMU again on the same bus
after a crash, `QemuLaunch.stderr_tail` reads the last lines QEMU wrote (its stdout and stderr
go to a file, so a process that writes a lot never blocks on a pipe nobody reads),
`QemuLaunch.kill_qemu` ends a QEMU that no longer answers (one whose main loop is blocked
ignores SIGTERM), and `QemuLaunch.qemu_exit` says whether and how it ended.

The environment passes through to QEMU: a QEMU unpacked outside ``/usr`` needs
``QEMU_MODULE_DIR`` (``ci/fetch-qemu`` writes a wrapper that sets it).  The bus address handed to
QEMU is `qemu_option_address`: QEMU's option parser splits ``-display dbus,addr=...`` at commas,
so the daemon's ``,guid=...`` is dropped.

Everything here is imported by the command only when ``--launch`` is given.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from .wire import WireError, connect_bus, remaining

#: The bus name QEMU's D-Bus display owns.
DISPLAY_BUS_NAME = "org.qemu"
#: How long QEMU may take to own its bus name once started (TCG, modules loaded from disk, on a
#: machine shared with other work).
START_TIMEOUT = 60.0
#: How long a process is given to exit after SIGTERM before it is killed.
STOP_GRACE = 5.0
#: The most of QEMU's output `stderr_tail` reads back from the end of its log.
TAIL_BYTES = 64 << 10
_POLL = 0.05

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <!-- A private bus for one launched QEMU: only this user can connect (the daemon's own uid),
       and among its connections everything is allowed, monitoring included. -->
  <type>session</type>
  <listen>unix:dir={folder}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


class LaunchError(Exception):
    """The bus or QEMU could not be started, or QEMU ended before it owned its bus name.  The
    message says why, with the last lines QEMU wrote when there are any."""


def qemu_option_address(address: str) -> str:
    """``address`` as QEMU's ``-display dbus,addr=`` (and ``-object dbus-vmstate,addr=``) takes
    it: QEMU's option parser splits at commas, so the ``guid`` key (which only lets a client check
    whom it reached) is dropped and any other comma is doubled, the parser's escape for one."""
    first = address.split(";", 1)[0]
    transport, _, rest = first.partition(":")
    kept = [pair for pair in rest.split(",") if pair and not pair.startswith("guid=")]
    return f"{transport}:{','.join(kept)}".replace(",", ",,")


def display_arguments(address: str) -> list[str]:
    """QEMU's arguments for a VM with every D-Bus object the display offers, on the bus at
    ``address``: two graphic consoles (``Console_0``, ``Console_1``), audio out and in through
    ``Audio``, a serial port and the human monitor as ``Chardev_serial0`` and ``Chardev_monitor0``,
    and the ``Clipboard``.  TCG, no disk, 64 MiB: nothing to install but QEMU."""
    return [
        "-machine", "pc", "-accel", "tcg", "-m", "64", "-nodefaults", "-no-user-config",
        "-device", "VGA", "-device", "secondary-vga",
        "-display", f"dbus,addr={qemu_option_address(address)},gl=off,audiodev=snd0",
        "-audiodev", "dbus,id=snd0", "-device", "intel-hda", "-device", "hda-duplex,audiodev=snd0",
        "-chardev", "dbus,id=serial0,name=org.qemu.console.serial.0", "-device", "isa-serial,chardev=serial0",
        "-chardev", "dbus,id=monitor0,name=org.qemu.monitor.hmp.0", "-mon", "chardev=monitor0,mode=readline",
        "-serial", "none", "-monitor", "none",
    ]  # fmt: skip


class Process:
    """A started process, its output in a log file, stopped by its id."""

    def __init__(
        self, command: Sequence[str], log: Path, env: Mapping[str, str] | None = None, pass_fds: Sequence[int] = ()
    ) -> None:
        self.command = list(command)
        self.log = log
        with log.open("ab") as output:
            try:
                self.popen = subprocess.Popen(
                    [*_die_with_parent(), *self.command],
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=output,
                    env=None if env is None else dict(env),
                    start_new_session=True,  # the terminal's Ctrl-C is the tool's to handle
                    pass_fds=tuple(pass_fds),
                )
            except OSError as error:
                raise LaunchError(f"cannot run {self.command[0]}: {error.strerror or error}") from error

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        """The exit status (negative: the signal that ended it), or None while it runs."""
        return self.popen.poll()

    def stop(self, grace: float = STOP_GRACE) -> int:
        """SIGTERM, then SIGKILL after ``grace`` seconds; the exit status."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            try:
                return self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        return self.kill()

    def kill(self) -> int:
        """SIGKILL (a process whose main loop is blocked ignores SIGTERM); the exit status."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.kill()
        return self.popen.wait()

    def tail(self, lines: int = 20) -> list[str]:
        """The last ``lines`` lines of the process's output (at most `TAIL_BYTES` read)."""
        try:
            with self.log.open("rb") as stream:
                size = stream.seek(0, os.SEEK_END)
                stream.seek(max(0, size - TAIL_BYTES))
                data = stream.read()
        except OSError:
            return []
        text = data.decode("utf-8", "replace").splitlines()
        return text[-lines:] if lines > 0 else []


class QemuLaunch:
    """A private ``dbus-daemon`` and a QEMU on it; a context manager that stops both.

    ``QemuLaunch("qemu-system-x86_64", ["-name", "test"])`` starts nothing until `start` (or
    ``with``); then `address` is the bus to connect to and QEMU owns `DISPLAY_BUS_NAME` there.
    ``arguments`` are appended to `display_arguments`; ``env`` (default: this process's
    environment) is QEMU's environment.
    """

    def __init__(
        self,
        qemu: str,
        arguments: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.binary = qemu
        self.arguments = list(arguments)
        self.env = env
        self.start_timeout = start_timeout
        self.folder: Path | None = None
        self.bus: Process | None = None
        self.address = ""
        self.qemu: Process | None = None
        self.starts = 0

    # --- starting -------------------------------------------------------------------------

    def start(self, deadline: float | None = None) -> QemuLaunch:
        """Start the bus and QEMU, and wait until QEMU owns its bus name, no later than
        ``deadline`` (default: `START_TIMEOUT` from now).  Raises `LaunchError`, having stopped
        whatever it started."""
        if shutil.which(self.binary) is None:
            raise LaunchError(f"no QEMU at {self.binary}: not found, or not executable")
        try:
            self.folder = Path(tempfile.mkdtemp(prefix="qemu-dbus-launch-"))
            self._start_bus(self._deadline(deadline))
            self._start_qemu(self._deadline(deadline))
        except BaseException:
            self.stop()
            raise
        return self

    def _deadline(self, deadline: float | None) -> float:
        own = time.monotonic() + self.start_timeout
        return own if deadline is None else min(own, deadline)

    def _start_bus(self, deadline: float) -> None:
        assert self.folder is not None
        daemon = shutil.which("dbus-daemon")
        if daemon is None:
            raise LaunchError("no dbus-daemon on this machine (Debian: the dbus-daemon package)")
        config = self.folder / "bus.conf"
        config.write_text(BUS_CONFIG.format(folder=escape(str(self.folder))), encoding="utf-8")
        reader, writer = os.pipe()
        try:
            command = [daemon, f"--config-file={config}", "--nofork", f"--print-address={writer}"]
            self.bus = Process(command, self.folder / "dbus-daemon.log", pass_fds=(writer,))
            os.close(writer)
            writer = -1
            self.address = _read_line(reader, deadline, self.bus)
        finally:
            os.close(reader)
            if writer >= 0:
                os.close(writer)

    def _start_qemu(self, deadline: float) -> None:
        assert self.folder is not None
        self.starts += 1
        command = [self.binary, *display_arguments(self.address), *self.arguments]
        self.qemu = Process(command, self.folder / f"qemu-{self.starts}.log", self.env)
        self._wait_for_name(deadline)

    def _wait_for_name(self, deadline: float) -> None:
        """Poll the bus until QEMU owns its name; fail at once when QEMU exits."""
        from jeepney.bus_messages import message_bus

        assert self.qemu is not None
        try:
            with connect_bus(self.address, deadline) as wire:
                while True:
                    if self.qemu.poll() is not None:
                        break
                    reply = wire.call(message_bus.NameHasOwner(DISPLAY_BUS_NAME), deadline).message
                    if reply.body == (True,):
                        return
                    if remaining(deadline) <= _POLL:
                        raise TimeoutError
                    time.sleep(_POLL)
        except TimeoutError:
            raise LaunchError(
                f"{self.binary} did not own {DISPLAY_BUS_NAME} on its bus in time{self._last_words()}"
            ) from None
        except WireError as error:
            raise LaunchError(f"cannot use the launched bus: {error}") from error
        status = self.qemu.poll()
        raise LaunchError(
            f"{self.binary} exited ({exit_text(status)}) before it owned {DISPLAY_BUS_NAME}{self._last_words()}"
        )

    def _last_words(self) -> str:
        lines = self.stderr_tail(5)
        return (": " + " / ".join(line.strip() for line in lines if line.strip())) if lines else ""

    # --- while it runs --------------------------------------------------------------------

    @property
    def qemu_address(self) -> str:
        """The bus address as QEMU's options take it (see `qemu_option_address`)."""
        return qemu_option_address(self.address)

    def qemu_exit(self) -> int | None:
        """QEMU's exit status (negative: the signal that ended it), or None while it runs."""
        return self.qemu.poll() if self.qemu is not None else None

    def owns_name(self, timeout: float = 5.0) -> bool | None:
        """Whether QEMU still owns its bus name (None: the bus did not answer in ``timeout``).  A
        QEMU that lost it is gone or going: its exit status may lag behind by a moment."""
        from jeepney.bus_messages import message_bus

        deadline = time.monotonic() + timeout
        try:
            with connect_bus(self.address, deadline) as wire:
                reply = wire.call(message_bus.NameHasOwner(DISPLAY_BUS_NAME), deadline).message
        except (TimeoutError, WireError):
            return None
        return bool(reply.body == (True,))

    def wait_exit(self, timeout: float) -> int | None:
        """QEMU's exit status once it has exited, waiting at most ``timeout`` seconds for it."""
        if self.qemu is None:
            return None
        try:
            return self.qemu.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stderr_tail(self, lines: int = 20) -> list[str]:
        """The last ``lines`` lines QEMU wrote (stdout and stderr), of its latest start."""
        return self.qemu.tail(lines) if self.qemu is not None else []

    def kill_qemu(self) -> int | None:
        """End QEMU at once (SIGKILL); its exit status."""
        return self.qemu.kill() if self.qemu is not None else None

    def restart(self, deadline: float | None = None) -> None:
        """Start QEMU again on the same bus (killing it first if it still runs) and wait until
        it owns its bus name.  Raises `LaunchError`."""
        if self.bus is None:
            raise LaunchError("the bus is not running: start() first")
        if self.qemu is not None:
            self.qemu.kill()
        self._start_qemu(self._deadline(deadline))

    # --- stopping -------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop QEMU, then the bus, by their process ids, and remove the folder.  Safe to call
        more than once, and after a failed start."""
        for process in (self.qemu, self.bus):
            if process is not None:
                process.stop()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> QemuLaunch:
        return self.start() if self.bus is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _read_line(fd: int, deadline: float, process: Process) -> str:
    """The first line the daemon prints on ``fd`` (its address), waiting until ``deadline``."""
    data = b""
    while b"\n" not in data:
        wait = remaining(deadline)
        if wait <= 0:
            raise LaunchError("dbus-daemon printed no address in time")
        ready, _, _ = select.select([fd], [], [], min(wait, 0.5))
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                status = process.poll()
                tail = " / ".join(process.tail(3))
                raise LaunchError(f"dbus-daemon exited ({exit_text(status)}) before printing its address: {tail}")
            data += chunk
    return data.split(b"\n", 1)[0].decode("utf-8", "replace").strip()


def exit_text(status: int | None) -> str:
    """A process's exit status in words: ``status 1``, ``killed by SIGBUS``."""
    if status is None:
        return "still running"
    if status < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-status).name}"
        return f"killed by signal {-status}"
    return f"status {status}"


@functools.lru_cache(maxsize=1)
def _die_with_parent() -> tuple[str, ...]:
    """A command prefix that makes the kernel kill the process when the thread that started it
    ends (``setpriv --pdeathsig``, util-linux 2.33 and later); nothing where that is not
    available.  ``setpriv`` execs the command, so the process id stays the command's."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return ()
    try:
        probe = subprocess.run([setpriv, "--pdeathsig", "KILL", "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ()
    return (setpriv, "--pdeathsig", "KILL") if probe.returncode == 0 else ()

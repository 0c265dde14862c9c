"""Hostile peers against ``conform``'s transport: every message of the catalog (`tests/hostile.py`)
played by a fake bus where ``conform`` waits for the reply to ``Hello``, and by QEMU's side of a
display listener's peer-to-peer socket, where no bus daemon validates anything; and the floods,
descriptors, interruptions and handshakes of issue 21.

Each run is the command in its own process, as a developer runs it; its peak RSS is read from the
kernel (``wait4``) and must stay under 512 MiB whatever the message.  How long each run takes
against its deadline is measured by ``bench/live_bench.py`` (``make bench``), not asserted here:
the machines are shared.  A run that spins forever still fails here, on the process timeout.
"""

from __future__ import annotations

import array
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from .hostile import BY_NAME, CATALOG, MIB, Context, Hostile, flood_signal
from .test_conform import CONSOLE
from .test_conform_live import ROOT, TREE, peer, private_bus

MAX_RSS = 512 * MIB
GUID = b"0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a private dbus-daemon for this module."""
    with private_bus(tmp_path_factory.mktemp("bus")) as address:
        yield address


@dataclass
class Measured:
    returncode: int
    stdout: str
    stderr: str
    rss: int  # peak resident set size, bytes
    seconds: float

    @property
    def findings(self) -> list[dict[str, str]]:
        return json.loads(self.stdout) if self.stdout.strip() else []


#: Runs a command as its child and writes the child's peak RSS (KiB) to the file named first: the
#: command is spawned from this small process, not from the test process, whose memory (hostile
#: messages of 120 MiB) a child forked from it would count as its own until it execs.
MEASURE = """
import os, resource, subprocess, sys
limit = int(sys.argv[2])
if limit:
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
child = subprocess.Popen(sys.argv[3:])
_, status, usage = os.wait4(child.pid, 0)
child.returncode = 0
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""


def measured(
    *args: str,
    timeout: float = 120,
    limit_files: int = 0,
    once: tuple[str, Callable[[], None]] | None = None,
) -> Measured:
    """``qemu-dbus conform ARGS`` in its own process, with its peak RSS (``wait4``) and how long
    it took; ``limit_files`` lowers its limit on open files; ``once`` = (words, action): the action
    runs once the command has printed the words (on stderr)."""
    command = [sys.executable, "-m", "sphinxext_qemudbus", "conform", "--platform", "unix", *args]
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile() as err, tempfile.NamedTemporaryFile() as rss:
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-c", MEASURE, rss.name, str(limit_files), *command],
            cwd=ROOT,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        while process.poll() is None:
            if once is not None and once[0] in Path(err.name).read_text(errors="replace"):
                once[1]()
                once = None
            if time.monotonic() - started > timeout:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                pytest.fail(f"conform {' '.join(args)} still ran after {timeout} s")
            time.sleep(0.02)
        elapsed = time.monotonic() - started
        out.seek(0)
        return Measured(
            process.returncode,
            out.read().decode("utf-8", "replace"),
            Path(err.name).read_text(errors="replace"),
            int(Path(rss.name).read_text() or 0) * 1024,
            elapsed,
        )


def send(sock: socket.socket, data: bytes, fds: int) -> None:
    """``data`` on ``sock``, with ``fds`` descriptors (copies of /dev/null) passed along."""
    if fds:
        with open(os.devnull, "rb") as null:
            passed = array.array("i", [null.fileno()] * fds)
            sent = sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, passed)])
        data = data[sent:]
    sock.sendall(data)


class FakeBus:
    """A bus that authenticates its client and then plays ``entry``: as the reply to ``Hello``
    (``at="hello"``), or, after answering ``Hello`` and ``GetNameOwner`` as a bus does, as the reply
    to the first ``Introspect`` (``at="introspect"``).  Other calls get errors.  One connection at a
    time, each in a thread; everything stops when the test ends."""

    def __init__(self, folder: Path, entry: Hostile | None, at: str = "hello", auth: bytes | None = None) -> None:
        self.path = folder / "bus"
        self.entry = entry
        self.at = at
        self.auth = auth
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(self.path))
        self.server.listen(4)
        self.clients: list[socket.socket] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"unix:path={self.path}"

    def close(self) -> None:
        self.server.close()
        for client in self.clients:
            client.close()

    def serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.clients.append(client)
            threading.Thread(target=self.conversation, args=(client,), daemon=True).start()

    def conversation(self, client: socket.socket) -> None:
        try:
            if self.handshake(client):
                self.messages(client)
        except OSError:
            pass  # the tool gave up on this connection, as it should

    def handshake(self, client: socket.socket) -> bool:
        line = b""
        while True:
            byte = client.recv(1)
            if not byte:
                return False
            line += byte
            if not line.endswith(b"\r\n"):
                continue
            if b"AUTH" in line:
                client.sendall(self.auth if self.auth is not None else b"OK " + GUID + b"\r\n")
                if self.auth is not None:
                    return False
            elif line.startswith(b"NEGOTIATE_UNIX_FD"):
                client.sendall(b"AGREE_UNIX_FD\r\n")
            elif line.startswith(b"BEGIN"):
                return True
            line = b""

    def messages(self, client: socket.socket) -> None:
        from jeepney import HeaderFields, MessageType, Parser
        from jeepney.wrappers import new_error, new_method_return

        parser = Parser()
        serial = iter(range(1, 1 << 30))
        while True:
            data = client.recv(65536)
            if not data:
                return
            parser.add_data(data)
            while (call := parser.get_next_message()) is not None:
                if call.header.message_type is not MessageType.method_call:
                    continue
                name = call.header.fields.get(HeaderFields.member)
                if self.entry is not None and name == {"hello": "Hello", "introspect": "Introspect"}[self.at]:
                    for raw, fds in self.entry.build(Context(call.header.serial)):
                        send(client, raw, fds)
                    if self.entry.name != "flood":
                        continue  # the hostile message was the reply
                if name == "Hello":
                    answer = new_method_return(call, "s", (":1.1",))
                elif name == "GetNameOwner" and self.at == "introspect":
                    answer = new_method_return(call, "s", (":1.2",))
                elif name == "GetNameOwner":
                    answer = new_error(call, "org.freedesktop.DBus.Error.NameHasNoOwner", "s", ("nobody",))
                else:
                    answer = new_error(call, "org.freedesktop.DBus.Error.UnknownMethod", "s", ("no",))
                client.sendall(answer.serialise(serial=next(serial)))


@contextmanager
def fake_bus(folder: Path, entry: Hostile | None, at: str = "hello", auth: bytes | None = None) -> Iterator[FakeBus]:
    bus = FakeBus(folder, entry, at, auth)
    try:
        yield bus
    finally:
        bus.close()


def no_traceback(result: Measured) -> None:
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "Exception in thread" not in result.stderr, result.stderr[-3000:]


# --- the bus side: every hostile message as the reply to Hello ------------------------------


@pytest.mark.parametrize("entry", CATALOG, ids=[entry.name for entry in CATALOG])
def test_every_hostile_message_from_a_bus(tmp_path: Path, entry: Hostile) -> None:
    timeout = "20" if entry.name == "flood" else "2"  # 1.1 GB cross the socket before the reply
    with fake_bus(tmp_path, entry) as bus:
        result = measured("--address", bus.address, "--dest", "org.qemu", "--timeout", timeout, "--deadline", "30")
    no_traceback(result)
    assert result.rss < MAX_RSS, f"{entry.name}: peak RSS {result.rss >> 20} MiB"
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr[:3000]
    assert len(lines[0]) < 400, lines[0][:3000]
    if entry.name == "flood":
        # 1,100 messages of 1 MiB with 4 descriptors each arrive before the reply: dropped, and
        # the connection goes on to find that nobody owns the name.
        assert "no peer owns org.qemu on this bus" in lines[0]
    else:
        assert f"cannot connect to {bus.address}: " in lines[0]
        assert entry.words in lines[0]


@pytest.mark.parametrize("name", ["empty-struct", "string-without-nul", "variants-32-mib", "nested-variants"])
def test_a_hostile_introspection_reply_is_a_finding(tmp_path: Path, name: str) -> None:
    with fake_bus(tmp_path, BY_NAME[name], at="introspect") as bus:
        result = measured(
            "--address", bus.address, "--dest", "org.qemu", "--object", "/", "--timeout", "2", "--format", "json"
        )
    no_traceback(result)
    assert result.rss < MAX_RSS
    assert result.returncode == 1, result.stdout + result.stderr
    (finding,) = result.findings
    assert finding["code"] == "L010"
    assert "cannot introspect /" in finding["message"]
    assert BY_NAME[name].words in finding["message"]


def test_a_handshake_error_is_one_short_line(tmp_path: Path) -> None:
    with fake_bus(tmp_path, None, auth=b"X" * 9000 + b"\r\n") as bus:
        result = measured("--address", bus.address, "--dest", "org.qemu", "--timeout", "2")
    no_traceback(result)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "authentication failed" in line
    assert len(line) < 300, line
    assert "(9000 bytes)" in line


# --- the listener side: every hostile message from QEMU's side of a listener socket ------------


def consoles(count: int) -> dict[str, str | None]:
    children = "".join(f'<node name="Console_{n}"/>' for n in range(count))
    tree: dict[str, str | None] = {path: xml for path, xml in TREE.items() if not path.startswith("/org/qemu/Display1")}
    tree["/org/qemu/Display1"] = f"<node>{children}</node>"
    tree.update({f"/org/qemu/Display1/Console_{n}": CONSOLE for n in range(count)})
    return tree


def test_every_hostile_message_on_a_listener(bus: str, tmp_path: Path) -> None:
    """One run, one console per message of the catalog: each connection is reported for what its
    peer sent, and what one sends costs the others nothing."""
    # 32 MiB is the listener case; the flood goes last (the peer serves one at a time).
    entries = [entry for entry in CATALOG if "120" not in entry.name and entry.name != "flood"]
    entries.append(BY_NAME["flood"])
    listeners = {f"/org/qemu/Display1/Console_{n}": f"hostile:{entry.name}" for n, entry in enumerate(entries)}
    with peer(bus, consoles(len(entries)), tmp_path, listeners=listeners):
        result = measured(
            "--address", bus, "--dest", "org.qemu", "--no-values", "--listen", "4", "--timeout", "2", "--format", "json"
        )
    no_traceback(result)
    assert result.rss < MAX_RSS, f"peak RSS {result.rss >> 20} MiB"
    assert result.returncode == 1, result.stdout + result.stderr
    assert "conforms" not in result.stderr
    for n, entry in enumerate(entries):
        label = f"Console_{n} display"
        mine = [d for d in result.findings if d["path"].startswith(f"{label}:") or label in d["message"]]
        words = "calls org.qemu.Display1.Listener.Update with (ay)" if entry.name == "flood" else entry.words
        assert any(words in d["message"] for d in mine), (entry.name, mine)
        if not entry.legal:
            assert any(d["code"] == "L018" for d in mine), (entry.name, mine)


# --- floods, descriptors, many consoles --------------------------------------------------------


def test_descriptors_of_a_malformed_message_are_closed() -> None:
    """The file descriptors that come with a message the tool refuses are closed at once."""
    from sphinxext_qemudbus.live.wire import Wire, WireError

    opened = len(os.listdir("/proc/self/fd"))
    ours, theirs = socket.socketpair()
    with Wire(ours) as wire:
        for name in ("fd-index", "empty-struct"):
            raw, _ = next(iter(BY_NAME[name].build(Context(None))))
            send(theirs, raw[:20], 3)
            send(theirs, raw[20:], 0)
            with pytest.raises(WireError):
                wire.receive(time.monotonic() + 5)
            assert len(os.listdir("/proc/self/fd")) == opened + 2, name  # the socket pair alone
    theirs.close()


def test_a_peer_with_1500_consoles(bus: str, tmp_path: Path) -> None:
    """Every console is listened to on one event loop, not a thread each; descriptors are a
    resource like any other: when they run out, the report says what was not listened to."""
    with peer(bus, consoles(1500), tmp_path, listener="good"):
        result = measured(
            "--address", bus, "--dest", "org.qemu", "--no-values", "--listen", "5", "--timeout", "5",
            "--format", "json", limit_files=256, timeout=300,
        )  # fmt: skip
    no_traceback(result)
    assert result.returncode == 1, result.stdout + result.stderr
    (unheard,) = result.findings
    assert unheard["code"] == "L017"
    assert "consoles were not listened to" in unheard["message"]
    assert "no more file descriptors (at most" in unheard["message"]


def monitor_flooded(bus: str, *options: str) -> Measured:
    """``conform --address BUS OPTIONS`` (a ``--monitor``) while a peer emits legal signals of
    30 MiB (7.8 million one-byte variants) on the bus, from the moment the monitor is in place:
    a daemon busy validating 30 MiB messages (seconds each, on a busy machine) answers a new
    client's Hello late."""
    from jeepney.io.blocking import open_dbus_connection

    raw = flood_signal(30 * MIB)
    stop = threading.Event()

    def emit() -> None:
        with open_dbus_connection(bus=bus) as connection:
            while not stop.is_set():
                connection.sock.sendall(raw)

    emitter = threading.Thread(target=emit, daemon=True)
    try:
        return measured("--address", bus, *options, once=("monitoring", emitter.start))
    finally:
        stop.set()
        if emitter.is_alive():
            emitter.join(30)


def test_monitoring_30_mib_signals_on_a_real_daemon(tmp_path: Path) -> None:
    """Legal messages of 30 MiB on a real dbus-daemon: refused past the bound on values per
    message, said, and memory stays bounded.  (A daemon of its own: the flood keeps it busy for
    a while.)"""
    with private_bus(tmp_path) as bus:
        result = monitor_flooded(bus, "--monitor", "8", "--deadline", "15", "--format", "json")
    no_traceback(result)
    assert result.rss < MAX_RSS, f"peak RSS {result.rss >> 20} MiB"
    assert result.returncode == 1
    (skipped,) = [d for d in result.findings if d["code"] == "L017"]
    assert "over the tool's bound" in skipped["message"]


# --- interruptions ------------------------------------------------------------------------------


def interrupted(bus: str, folder: Path, *args: str, after: str, wait: float) -> subprocess.CompletedProcess[str]:
    """Run conform, wait for a line of its own that contains ``after`` and ``wait`` seconds more,
    then press Ctrl-C (SIGINT)."""
    command = [sys.executable, "-m", "sphinxext_qemudbus", "conform", "--platform", "unix", "--address", bus, *args]
    with (
        peer(bus, TREE, folder, listener="good"),
        subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process,
    ):
        assert process.stderr is not None
        seen = ""
        while after not in seen:
            line = process.stderr.readline()
            assert line, seen
            seen += line
        time.sleep(wait)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(command, process.returncode, out, seen + err)


def test_an_interrupted_run_never_reports_success(bus: str, tmp_path: Path) -> None:
    result = interrupted(bus, tmp_path, "--dest", "org.qemu", "--listen", "30", after="listening to", wait=1.5)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 130, result.stderr
    assert "conforms" not in result.stderr
    assert "interrupted" in result.stderr
    assert "listeners registered: Console_0 display" in result.stderr


def test_ctrl_c_after_monitoring_has_finished(bus: str, tmp_path: Path) -> None:
    result = interrupted(
        bus, tmp_path, "--dest", "org.qemu", "--monitor", "1", "--listen", "30", after="monitoring", wait=2.5
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert "Bad file descriptor" not in result.stderr
    assert result.returncode == 130, result.stderr
    assert "messages monitored" in result.stderr
    assert "conforms" not in result.stderr


# --- introspection replies: bounded in what they cost ---------------------------------------------


def test_introspection_replies_are_bounded_in_what_they_cost(bus: str, tmp_path: Path) -> None:
    """Twenty objects of 3.5 MB of introspection XML are not parsed (each is a finding of its
    own), and a reply under the bound that holds 10,000 unregistered members gives a hundred
    findings and one line saying how many more there were."""
    from .test_conform import VM

    extra = "".join(f'<method name="Extra{n}"/>' for n in range(10_000))
    big = "<node>" + "<!-- padding -->" * (3_500_000 // 16) + "</node>"
    tree: dict[str, str | None] = dict(TREE)
    head, tail = VM.rsplit("</interface>", 1)
    tree["/org/qemu/Display1/VM"] = f"{head}{extra}</interface>{tail}"
    children = "".join(f'<node name="Big_{n}"/>' for n in range(20))
    tree["/org/qemu/Display1"] = f'<node><node name="VM"/><node name="Console_0"/>{children}</node>'
    tree.update({f"/org/qemu/Display1/Big_{n}": big for n in range(20)})
    with peer(bus, tree, tmp_path):
        result = measured("--address", bus, "--dest", "org.qemu", "--no-values", "--format", "json")
    no_traceback(result)
    assert result.rss < MAX_RSS
    assert result.returncode == 1
    refused = [d for d in result.findings if d["code"] == "L010"]
    assert len(refused) == 20
    assert all("over the limit of 262144" in d["message"] for d in refused)
    unregistered = [d for d in result.findings if d["code"] == "L101"]
    assert len(unregistered) == 101
    cut = "9900 more L101 finding(s) on org.qemu:/org/qemu/Display1/VM not shown (at most 100 per object)"
    assert [d["message"] for d in unregistered if "not shown" in d["message"]] == [cut]


def test_what_all_connections_hold_at_once_is_bounded(bus: str, tmp_path: Path) -> None:
    """Three listener connections each announce a message of 100 MiB and send the start of it:
    the run holds at most its bound at once (192 MiB), refuses the connection that would take it
    past, and reports the others as cut short."""
    listeners = {f"/org/qemu/Display1/Console_{n}": "hostile:half-sent" for n in range(3)}
    with peer(bus, consoles(3), tmp_path, listeners=listeners):
        result = measured(
            "--address", bus, "--dest", "org.qemu", "--no-values", "--listen", "2", "--timeout", "1", "--format", "json"
        )
    no_traceback(result)
    assert result.rss < MAX_RSS, f"peak RSS {result.rss >> 20} MiB"
    messages = sorted(d["message"] for d in result.findings)
    assert len(messages) == 3, messages
    assert sum("more than the tool holds at once" in m for m in messages) == 2, messages
    assert sum("cut short" in m for m in messages) == 1, messages

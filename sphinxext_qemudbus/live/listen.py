"""``conform --listen``: be a display client and check everything QEMU sends to its listeners.

For every console the tool calls ``Console.RegisterListener`` with one end of a socket pair, and
where the peer exports ``Audio``, ``RegisterOutListener`` and ``RegisterInListener``.  On each
socket QEMU is the D-Bus authentication *server* and says nothing until the client speaks; the
client authenticates, then serves the listener object.  QEMU does all of this in its main loop and
waits for it: for the handshake (`g_dbus_connection_new_sync`), then for the answer to
``Properties.GetAll`` on the listener (the proxy it creates reads the properties), then, for
audio input, for every ``Read``.  A listener that is slow to answer stalls the whole VM, so every
socket is served by a thread of its own that answers each call as soon as it arrives, from the
first byte on; the bus calls are made meanwhile from the main thread.

Every message QEMU sends is checked by `traffic.TrafficCheck`; the tool replies to the calls it
receives the way a conforming client would (the registered out args, zero values), and to
``Properties``, ``Introspectable`` and ``Peer`` calls properly.  Each thread stops at the end of
the listening time or the run's deadline, whichever comes first; every file descriptor received
is closed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import quoteattr

from ..diagnostics.diagnostic import Diagnostic, Location
from ..diagnostics.rules import diagnostic
from ..model.introspection import Direction, Interface, Method, Property
from .traffic import NO_REPLY_EXPECTED, PROPERTIES, Seen, TrafficCheck
from .wire import Received, Wire, WireError, authenticate_client, error_text, remaining

CONSOLE = "org.qemu.Display1.Console"
AUDIO = "org.qemu.Display1.Audio"
LISTENER = "org.qemu.Display1.Listener"
AUDIO_OUT = "org.qemu.Display1.AudioOutListener"
AUDIO_IN = "org.qemu.Display1.AudioInListener"
INTROSPECTABLE = "org.freedesktop.DBus.Introspectable"
PEER = "org.freedesktop.DBus.Peer"

#: What each registration call hands over: (interface called, method, the listener's interface,
#: the object the client serves on the new connection).
REGISTRATIONS = {
    "display": (CONSOLE, "RegisterListener", LISTENER, "/org/qemu/Display1/Listener"),
    "audio-out": (AUDIO, "RegisterOutListener", AUDIO_OUT, "/org/qemu/Display1/AudioOutListener"),
    "audio-in": (AUDIO, "RegisterInListener", AUDIO_IN, "/org/qemu/Display1/AudioInListener"),
}


@dataclass
class ListenResult:
    """What listening found besides the traffic check's own findings."""

    findings: list[Diagnostic] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)  # "Console_0 display", ...
    #: How long QEMU took to complete each handshake, in seconds.
    handshakes: dict[str, float] = field(default_factory=dict)


class _Served(threading.Thread):
    """One listener connection: authenticate, then serve ``objects`` until ``stop_at``."""

    def __init__(
        self,
        sock: socket.socket,
        label: str,
        objects: dict[str, tuple[Interface, ...]],
        check: TrafficCheck,
        lock: threading.Lock,
        timeout: float,
        stop_at: float,
        result: ListenResult,
    ) -> None:
        super().__init__(name=f"listener {label}", daemon=True)
        self.sock = sock
        self.label = label
        self.objects = objects
        self.check = check
        self.lock = lock
        self.timeout = timeout
        self.stop_at = stop_at
        self.result = result
        self.stopping = threading.Event()
        #: What went wrong on the connection (reported unless the registration itself failed).
        self.problem: Diagnostic | None = None
        self.handshake: float | None = None
        self.registered = False

    def run(self) -> None:
        where = Location(f"{self.label}:{next(iter(self.objects))}")
        started = time.monotonic()
        try:
            authenticate_client(self.sock, min(started + self.timeout, self.stop_at))
        except TimeoutError:
            self.problem = diagnostic(
                "L013",
                where,
                f"the handshake on {self.label}'s listener socket did not complete: no answer within {self.timeout:g} s",
            )
            return
        except WireError as error:
            message = f"the handshake on {self.label}'s listener socket did not complete: {error}"
            self.problem = diagnostic("L013", where, message)
            return
        self.handshake = time.monotonic() - started
        wire = Wire(self.sock)
        try:
            while True:
                received = wire.receive(self.stop_at)
                try:
                    self._handle(wire, received)
                finally:
                    received.close()
        except TimeoutError:
            pass  # the listening time is over
        except WireError as error:
            if not self.stopping.is_set() and "closed the connection" not in str(error):
                self.problem = diagnostic("L018", where, f"{self.label}'s listener connection failed: {error}")
        finally:
            wire.close()

    def _handle(self, wire: Wire, received: Received) -> None:
        # Answer first, check after: QEMU may be waiting for the answer in its main loop, and the
        # check may wait (for the shared lock, or for the console's size on the bus).
        seen = Seen.of(received.message, len(received.fds))
        if seen.kind == 1 and not seen.flags & NO_REPLY_EXPECTED:
            reply = self._answer(received.message, seen)
            try:
                wire.send(reply, time.monotonic() + self.timeout)
            except TimeoutError as error:
                raise WireError("QEMU does not read the listener's replies") from error
        with self.lock:
            self.check.check(seen, self.label, self.label)

    def _answer(self, message: Any, seen: Seen) -> Any:
        from jeepney.wrappers import new_error, new_method_return

        path = seen.field(1) or ""
        interface, member = seen.field(2), seen.field(3)
        served = self.objects.get(path)
        if served is None:
            return new_error(message, "org.freedesktop.DBus.Error.UnknownObject", "s", (f"no object at {path}",))
        if interface == PEER and member == "Ping":
            return new_method_return(message)
        if interface == PEER and member == "GetMachineId":
            return new_method_return(message, "s", (_machine_id(),))
        if interface == INTROSPECTABLE and member == "Introspect":
            return new_method_return(message, "s", (introspection_xml(served),))
        if interface == PROPERTIES:
            return self._properties(message, seen, served)
        for candidate in served:
            if interface in (None, candidate.name):
                method = next((m for m in candidate.members if isinstance(m, Method) and m.name == member), None)
                if method is not None:
                    out = "".join(arg.type for arg in method.args if arg.direction is Direction.OUT)
                    return new_method_return(message, out, default_body(out))
        return new_error(message, "org.freedesktop.DBus.Error.UnknownMethod", "s", (f"no method {member}",))

    def _properties(self, message: Any, seen: Seen, served: tuple[Interface, ...]) -> Any:
        from jeepney.wrappers import new_error, new_method_return

        body = seen.body
        target = next((i for i in served if body and i.name == body[0]), None)
        readable = {p.name: p for p in target.members if isinstance(p, Property)} if target else {}
        if seen.field(3) == "GetAll" and seen.signature == "s":
            if target is None:
                return new_error(message, "org.freedesktop.DBus.Error.UnknownInterface", "s", (str(body[0]),))
            values = {name: (p.type, default_value(p.type)) for name, p in readable.items() if p.access.readable}
            return new_method_return(message, "a{sv}", (values,))
        if seen.field(3) == "Get" and seen.signature == "ss" and body[1] in readable:
            prop = readable[body[1]]
            return new_method_return(message, "v", ((prop.type, default_value(prop.type)),))
        if seen.field(3) == "Set":
            return new_error(message, "org.freedesktop.DBus.Error.PropertyReadOnly", "s", ("read-only",))
        return new_error(message, "org.freedesktop.DBus.Error.UnknownProperty", "s", ("no such property",))


def default_value(single: str) -> Any:
    """The zero value of one complete type, as jeepney serialises it."""
    code = single[0]
    if code in "ynqiuxt":
        return 0
    if code == "b":
        return False
    if code == "d":
        return 0.0
    if code in "sg":
        return ""
    if code == "o":
        return "/"
    if code == "v":
        return ("s", "")
    if code == "(":
        return tuple(default_body(single[1:-1]))
    if single == "ay":
        return b""
    if single.startswith("a{"):
        return {}
    return []  # h never appears in a listener's out args


def default_body(signature: str) -> tuple[Any, ...]:
    from ..model.signature import parse_signature

    return tuple(default_value(t.code) for t in parse_signature(signature))


def introspection_xml(interfaces: tuple[Interface, ...]) -> str:
    """The introspection data of a served object, written from the registry."""
    out = ['<node>\n  <interface name="org.freedesktop.DBus.Peer"/>\n']
    for interface in interfaces:
        out.append(f"  <interface name={quoteattr(interface.name)}>\n")
        for member in interface.members:
            if isinstance(member, Property):
                out.append(
                    f"    <property name={quoteattr(member.name)} type={quoteattr(member.type)} "
                    f'access="{member.access.value}"/>\n'
                )
                continue
            out.append(f"    <{member.kind} name={quoteattr(member.name)}>\n")
            for arg in member.args:
                name = f" name={quoteattr(arg.name)}" if arg.name else ""
                out.append(f'      <arg type={quoteattr(arg.type)}{name} direction="{arg.direction.value}"/>\n')
            out.append(f"    </{member.kind}>\n")
        out.append("  </interface>\n")
    out.append("</node>\n")
    return "".join(out)


def _machine_id() -> str:
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            with open(path, encoding="ascii") as stream:
                value = stream.read(64).strip()
        except (OSError, UnicodeDecodeError):
            continue
        if len(value) == 32:
            return value
    return "0" * 32


# --- registering on the bus -----------------------------------------------------------------


@dataclass
class Target:
    """One registration to make: ``kind`` (a key of `REGISTRATIONS`) on the object at ``path``."""

    kind: str
    path: str

    @property
    def label(self) -> str:
        return f"{self.path.rsplit('/', 1)[-1]} {self.kind}"


def listen(
    bus: Wire,
    dest: str,
    targets: list[Target],
    check: TrafficCheck,
    seconds: float,
    timeout: float,
    deadline: float,
    lock: threading.Lock | None = None,
) -> ListenResult:
    """Register a listener for every target, serve them all for ``seconds`` (no later than
    ``deadline``), and return what went wrong besides the traffic findings.  ``lock`` guards
    ``check``, which other threads (a monitor) may share."""
    from jeepney import DBusAddress, new_method_call

    result = ListenResult()
    lock = lock or threading.Lock()
    stop_at = min(time.monotonic() + seconds, deadline)
    threads: list[_Served] = []
    # The bus connection serves the registrations (this thread) and the listener threads that
    # read a console's size after a mode switch: one call at a time.
    bus_lock = threading.Lock()
    consoles = {target.label: target.path for target in targets if target.kind == "display"}

    def console_size(label: str) -> tuple[int, int] | None:
        path = consoles.get(label)
        if path is None:
            return None
        call = new_method_call(DBusAddress(path, bus_name=dest, interface=PROPERTIES), "GetAll", "s", (CONSOLE,))
        try:
            with bus_lock:
                reply = bus.call(call, min(time.monotonic() + timeout, stop_at)).message
        except (TimeoutError, WireError):
            return None
        return _size(reply.body)

    check.console_size = console_size
    try:
        for target in targets:
            if remaining(stop_at) <= 0:
                break
            interface, method, served, path = REGISTRATIONS[target.kind]
            listener = check.interface(served)
            if listener is None:
                continue  # not in the registry for this release and platform
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            thread = _Served(ours, target.label, {path: (listener,)}, check, lock, timeout, stop_at, result)
            thread.start()
            threads.append(thread)
            call = new_method_call(
                DBusAddress(target.path, bus_name=dest, interface=interface), method, "h", (theirs.fileno(),)
            )
            where = Location(f"{dest}:{target.path}")
            problem: str | None
            try:
                with bus_lock:
                    reply = bus.call(call, min(time.monotonic() + timeout, stop_at)).message
            except TimeoutError:
                problem = f"no reply within {timeout:g} s"
            except WireError as error:
                problem = str(error)
            else:
                problem = error_text(reply)
            finally:
                theirs.close()  # QEMU has its own copy now (or never will)
            if problem is not None:
                thread.stopping.set()
                _shut(ours)
                message = f"{interface}.{method} on {target.path} failed: {problem}"
                result.findings.append(diagnostic("L014", where, message))
            else:
                thread.registered = True
                result.registered.append(target.label)
        for thread in threads:
            thread.join(max(remaining(stop_at), 0) + 1.0)
    finally:
        for thread in threads:
            thread.stopping.set()
            _shut(thread.sock)
        for thread in threads:
            thread.join(timeout)
            thread.sock.close()
    for thread in threads:
        # A failed registration explains whatever its connection did next.
        if thread.registered and thread.problem is not None and not thread.is_alive():
            result.findings.append(thread.problem)
        if thread.handshake is not None:
            result.handshakes[thread.label] = thread.handshake
    return result


def _size(body: Any) -> tuple[int, int] | None:
    """(Width, Height) from a console's GetAll answer, when both are there as ``u``."""
    values = body[0] if isinstance(body, tuple) and len(body) == 1 and isinstance(body[0], dict) else {}
    width, height = values.get("Width"), values.get("Height")
    if not (isinstance(width, tuple) and isinstance(height, tuple) and width[:1] == height[:1] == ("u",)):
        return None
    if not (isinstance(width[1], int) and isinstance(height[1], int)):
        return None
    return width[1], height[1]


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def targets_of(objects: Iterator[tuple[str, tuple[str, ...]]]) -> list[Target]:
    """The registrations to make for introspected objects: (path, interface names) pairs."""
    found = []
    for path, interfaces in objects:
        if CONSOLE in interfaces:
            found.append(Target("display", path))
        if AUDIO in interfaces:
            found += [Target("audio-out", path), Target("audio-in", path)]
    return found

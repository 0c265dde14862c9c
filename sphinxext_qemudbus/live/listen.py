"""``conform --listen``: be a display client and check everything QEMU sends to its listeners.

For every console the tool calls ``Console.RegisterListener`` with one end of a socket pair, and
where the peer exports ``Audio``, ``RegisterOutListener`` and ``RegisterInListener``.  On each
socket QEMU is the D-Bus authentication *server* and says nothing until the client speaks; the
client authenticates, then serves the listener object.  QEMU does all of this in its main loop and
waits for it: for the handshake (`g_dbus_connection_new_sync`), then for the answer to
``Properties.GetAll`` on the listener (the proxy it creates reads the properties), then, for
audio input, for every ``Read``.  A listener that is slow to answer stalls the whole VM, so every
socket, and the bus connection the registrations and console reads go through, is served by one
event loop (`loop`) that answers each call as soon as it arrives; no connection waits for another.

What each registration serves is a table (`REGISTRATIONS`): the registration call, and the object
the new connection serves with the registered interfaces it implements (the listener's own first;
its ``Interfaces`` property lists the others).  Serving one more interface is one more name there.
Objects the tool serves on the bus connection itself (`BUS_OBJECTS`) are answered the same way.

Every message QEMU sends is checked by `traffic.TrafficCheck`; the tool replies to the calls it
receives the way a conforming client would (`served`).  Listening stops at the end of the listening
time or the run's deadline, whichever comes first; a message that has begun to arrive then gets
``timeout`` more seconds to complete, and is reported if it does not; every file descriptor
received is closed.  Listeners are bounded in number (`MAX_LISTENERS`) and by the descriptors the
process may open: what was not listened to is said.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..diagnostics.diagnostic import Diagnostic, Location
from ..diagnostics.rules import diagnostic
from ..model.introspection import Interface
from .loop import Connection, Loop
from .message import METHOD_CALL, METHOD_RETURN, NO_REPLY_EXPECTED, OverBound
from .served import PROPERTIES, ServedObject, answer
from .traffic import Seen, TrafficCheck, shown
from .wire import Budget, Handshake, Received, Wire, error_text

CONSOLE = "org.qemu.Display1.Console"
AUDIO = "org.qemu.Display1.Audio"
LISTENER = "org.qemu.Display1.Listener"
AUDIO_OUT = "org.qemu.Display1.AudioOutListener"
AUDIO_IN = "org.qemu.Display1.AudioInListener"

#: Listener connections at most, whatever the peer exports.
MAX_LISTENERS = 4096
#: Registrations waiting for their reply at once: one, as a display client makes them.  QEMU
#: handles them one by one in its main loop, so each call's timeout then measures QEMU's answer to
#: it, not the time it waited behind the others.
MAX_IN_FLIGHT = 1
#: Descriptors kept free for everything else (received descriptors, the report).
SPARE_FDS = 64
#: How the tool names itself as the recipient of QEMU's messages on a listener connection.
TOOL = "conform"


@dataclass(frozen=True)
class Registration:
    """One kind of listener: the call that registers it, and what its connection serves."""

    interface: str
    method: str
    #: The registered interfaces the listener object implements, its own first.
    served: tuple[str, ...]
    path: str


REGISTRATIONS = {
    "display": Registration(CONSOLE, "RegisterListener", (LISTENER,), "/org/qemu/Display1/Listener"),
    "audio-out": Registration(AUDIO, "RegisterOutListener", (AUDIO_OUT,), "/org/qemu/Display1/AudioOutListener"),
    "audio-in": Registration(AUDIO, "RegisterInListener", (AUDIO_IN,), "/org/qemu/Display1/AudioInListener"),
}
#: Objects the tool serves on the bus connection while it listens: path → registered interfaces.
BUS_OBJECTS: dict[str, tuple[str, ...]] = {}


@dataclass
class ListenResult:
    """What listening found besides the traffic check's own findings."""

    findings: list[Diagnostic] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)  # "Console_0 display", ...
    #: How long QEMU took to complete each handshake, in seconds.
    handshakes: dict[str, float] = field(default_factory=dict)
    #: Whether listening lasted as long as it was asked to (not cut by the run's deadline).
    complete: bool = False


@dataclass
class Target:
    """One registration to make: ``kind`` (a key of `REGISTRATIONS`) on the object at ``path``."""

    kind: str
    path: str

    @property
    def label(self) -> str:
        return f"{self.path.rsplit('/', 1)[-1]} {self.kind}"


def targets_of(objects: Iterator[tuple[str, tuple[str, ...]]]) -> list[Target]:
    """The registrations to make for introspected objects: (path, interface names) pairs."""
    found = []
    for path, interfaces in objects:
        if CONSOLE in interfaces:
            found.append(Target("display", path))
        if AUDIO in interfaces:
            found += [Target("audio-out", path), Target("audio-in", path)]
    return found


def served_object(check: TrafficCheck, path: str, names: tuple[str, ...]) -> ServedObject | None:
    """The object serving ``names`` (those the registry has for this release and platform), or
    None when the first, the object's own interface, is not there."""
    interfaces = [check.interface(name) for name in names]
    if not interfaces or interfaces[0] is None:
        return None
    present: tuple[Interface, ...] = tuple(i for i in interfaces if i is not None)
    served = ServedObject(path, present)
    own = present[0]
    if any(p.name == "Interfaces" for p in own.properties):
        served.values[(own.name, "Interfaces")] = [i.name for i in present[1:]]
    return served


class Listening:
    """The registrations and listener connections of one ``--listen``, on ``loop``, with the
    bus connection (already connected) adopted by the loop meanwhile."""

    def __init__(
        self,
        loop: Loop,
        bus: Wire,
        dest: str,
        targets: list[Target],
        check: TrafficCheck,
        seconds: float,
        timeout: float,
        deadline: float,
    ) -> None:
        self.loop = loop
        self.dest = dest
        self.check = check
        self.timeout = timeout
        self.deadline = deadline
        self.result = ListenResult()
        #: The run's bound on the bytes of messages held at once (the bus connection's too).
        self.budget: Budget = bus.reader.budget
        self.stop_at = min(time.monotonic() + seconds, deadline)
        self._queue = list(reversed(targets))
        self._in_flight = 0
        self._listeners: dict[str, _Listener] = {}
        self._consoles = {target.label: target.path for target in targets if target.kind == "display"}
        self._stopped = False
        self._late: list[str] = []  # consoles whose registration was answered only after listening ended
        self._closing = False
        self._limit = _listener_limit()
        objects = {path: served_object(check, path, names) for path, names in BUS_OBJECTS.items()}
        bus_objects = {path: served for path, served in objects.items() if served is not None}
        self.bus = Connection(loop, bus, dest, _BusSide(bus_objects), owned=False)

    def start(self) -> None:
        self.loop.at(self.stop_at, self.stop, keep_running=True)
        self._register_more()

    # --- registering ----------------------------------------------------------------------

    def _register_more(self) -> None:
        while self._queue and self._in_flight < MAX_IN_FLIGHT and not self._stopped:
            if len(self._listeners) >= self._limit:
                self._unheard(f"the process may open no more file descriptors (at most {self._limit} listeners)")
                return
            target = self._queue.pop()
            registration = REGISTRATIONS[target.kind]
            served = served_object(self.check, registration.path, registration.served)
            if served is None:
                continue  # not in the registry for this release and platform
            try:
                ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            except OSError as error:
                self._queue.append(target)
                self._unheard(f"no more file descriptors: {error.strerror or error}")
                return
            self._register(target, registration, served, ours, theirs)

    def _register(
        self,
        target: Target,
        registration: Registration,
        served: ServedObject,
        ours: socket.socket,
        theirs: socket.socket,
    ) -> None:
        from jeepney import DBusAddress, new_method_call

        listener = _Listener(self, target.label, {served.path: served})
        # QEMU answers the handshake only once it has the socket: the handshake's clock starts now.
        connection = Connection(
            self.loop,
            Wire(ours, "QEMU", self.budget),
            target.label,
            listener,
            handshake=Handshake(),
            handshake_deadline=time.monotonic() + self.timeout,
        )
        listener.connection = connection
        self._listeners[target.label] = listener
        address = DBusAddress(target.path, bus_name=self.dest, interface=registration.interface)
        call = new_method_call(address, registration.method, "h", (theirs.fileno(),))
        self._in_flight += 1

        def registered(reply: Received | None, problem: str | None) -> None:
            self._in_flight -= 1
            if problem is None and reply is not None:
                problem = error_text(reply.message)
            if (problem is None and self._stopped) or self._closing:
                # Answered after listening ended, or not before the run did: the tool's doing.
                listener.abandoned = True
                connection.close(None)
                if target.kind == "display":
                    self._late.append(target.path)
            elif problem is None:
                listener.registered = True
                self.result.registered.append(target.label)
            else:
                listener.failed = True
                connection.close(None)
                message = f"{registration.interface}.{registration.method} on {target.path} failed: {problem}"
                self.result.findings.append(diagnostic("L014", Location(f"{self.dest}:{target.path}"), message))
            self._register_more()

        self.bus.call(call, self.timeout, registered, handing_over=[theirs])

    def _unheard(self, why: str) -> None:
        """Report the consoles still to register as not listened to, and why."""
        left = [target.path for target in reversed(self._queue) if target.kind == "display"]
        self._queue = []
        self._not_listened(left, why)

    def _not_listened(self, left: list[str], why: str) -> None:
        if left:
            message = f"{len(left)} consoles were not listened to, starting with {shown(left[0])}: {why}"
            self.result.findings.append(diagnostic("L017", Location(self.dest), message))

    # --- stopping -------------------------------------------------------------------------

    def stop(self) -> None:
        """The listening time is over: finish every connection (a message on its way gets
        ``timeout`` more seconds, never past the deadline)."""
        if self._stopped:
            return
        self._stopped = True
        self.result.complete = time.monotonic() < self.deadline
        self._unheard("listening ended before they were registered")
        grace = min(time.monotonic() + self.timeout, self.deadline)
        for listener in self._listeners.values():
            if listener.registered:
                listener.connection.finish(grace, "listening ended")
        # Registrations on their way get their reply or their timeout (a finding), no later.
        self.bus.finish(grace, "listening ended")

    def close(self) -> None:
        """The loop is over (or interrupted): whatever is still open closes now."""
        self._closing = True
        for listener in self._listeners.values():
            listener.connection.close(None)
        self.bus.close(None)
        for listener in self._listeners.values():
            if listener.problem is not None and listener.registered:
                self.result.findings.append(listener.problem)
        self._not_listened(self._late, "listening ended before their registration was answered")

    # --- the console's size, read on the bus ---------------------------------------------

    def read_console_size(self, label: str, then: Any) -> None:
        """Read the Width and Height of the console behind ``label`` on the bus, then call
        ``then`` (the size is put in the check's `console_sizes` first, when it was read)."""
        from jeepney import DBusAddress, new_method_call

        path = self._consoles.get(label)
        if path is None or self.bus.state == "closed":
            then()
            return
        call = new_method_call(DBusAddress(path, bus_name=self.dest, interface=PROPERTIES), "GetAll", "s", (CONSOLE,))

        def read(reply: Received | None, problem: str | None) -> None:
            if reply is not None and reply.message.kind == METHOD_RETURN and reply.message.signature == "a{sv}":
                size = _size(reply.message.body)
                if size is not None:
                    self.check.console_sizes[label] = size
            then()

        self.bus.call(call, self.timeout, read)


class _BusSide:
    """The bus connection while listening: replies go to the calls that wait for them (the loop
    pairs them); calls to the objects the tool serves there are answered."""

    def __init__(self, objects: dict[str, ServedObject]) -> None:
        self.objects = objects

    def opened(self, connection: Connection) -> None:
        pass

    def received(self, connection: Connection, received: Received) -> None:
        message = received.message
        if message.kind == METHOD_CALL and not message.flags & NO_REPLY_EXPECTED and self.objects:
            connection.send(answer(self.objects, message))

    def refused(self, connection: Connection, error: OverBound) -> None:
        pass  # a message to someone else, or a signal: the bus delivers what the tool never asked for

    def closed(self, connection: Connection, problem: str | None) -> None:
        pass


class _Listener:
    """One listener connection: answer first, then check."""

    def __init__(self, listening: Listening, label: str, objects: dict[str, ServedObject]) -> None:
        self.listening = listening
        self.label = label
        self.objects = objects
        self.connection: Connection
        self.registered = False
        self.failed = False
        #: Its registration was still on its way when listening ended.
        self.abandoned = False
        self.problem: Diagnostic | None = None
        self.where = Location(f"{label}:{next(iter(objects))}")

    def opened(self, connection: Connection) -> None:
        handshake = connection.handshake
        if handshake is not None:
            self.listening.result.handshakes[self.label] = time.monotonic() - handshake.started

    def received(self, connection: Connection, received: Received) -> None:
        # Answer first, check after: QEMU may be waiting for the answer in its main loop.
        message = received.message
        if message.kind == METHOD_CALL and not message.flags & NO_REPLY_EXPECTED:
            connection.send(answer(self.objects, message))
        seen = Seen.of(message, len(received.fds))
        check = self.listening.check
        if check.wants_console_size(seen, self.label):
            # Read the console's size on the bus, and hold this connection's later messages
            # (still unread in its socket) until it is known; the others go on being served.
            connection.pause()

            def then() -> None:
                check.check(seen, self.label, self.label, TOOL)
                connection.resume()

            self.listening.read_console_size(self.label, then)
            return
        check.check(seen, self.label, self.label, TOOL)

    def refused(self, connection: Connection, error: OverBound) -> None:
        what = f"QEMU sent {self.label}'s listener {error}; it was not checked"
        self.listening.check.findings.add(("over bound", self.label), diagnostic("L017", self.where, what))

    def closed(self, connection: Connection, problem: str | None) -> None:
        if problem is None or self.failed or self.abandoned:
            return  # closed by the tool; a failed registration explains the rest
        if connection.closed_by_peer:
            return  # QEMU may close a listener connection between two messages (the console went away)
        if connection.handshake is not None and not connection.handshake.done:
            message = f"the handshake on {self.label}'s listener socket did not complete: {problem}"
            self.problem = diagnostic("L013", self.where, message)
        else:
            self.problem = diagnostic("L018", self.where, f"{self.label}'s listener connection failed: {problem}")


def _size(body: Any) -> tuple[int, int] | None:
    """(Width, Height) from a console's GetAll answer, when both are there as ``u``."""
    values = body[0] if isinstance(body, tuple) and len(body) == 1 and isinstance(body[0], dict) else {}
    width, height = values.get("Width"), values.get("Height")
    if not (isinstance(width, tuple) and isinstance(height, tuple) and width[:1] == height[:1] == ("u",)):
        return None
    if not (isinstance(width[1], int) and isinstance(height[1], int)):
        return None
    return width[1], height[1]


def _listener_limit() -> int:
    """How many listener connections this process can hold besides what it needs otherwise:
    each holds one descriptor (two while its registration is on its way)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return MAX_LISTENERS
    if soft == getattr(resource, "RLIM_INFINITY", -1):
        return MAX_LISTENERS
    try:
        open_now = len(os.listdir("/proc/self/fd"))
    except OSError:
        open_now = 16
    return max(0, min(MAX_LISTENERS, soft - open_now - SPARE_FDS - MAX_IN_FLIGHT))

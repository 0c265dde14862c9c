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
Where the release has ``Listener.Unix.Map`` (9.2 and later), a second display listener per console
serves it: QEMU then sends that listener the console surface as a file descriptor (``ScanoutMap``)
and damaged rectangles (``UpdateMap``), which `shared_image` checks, down to the pixels, against
what the plain listener on the same console receives; the two images are compared in the last
moments of listening, until they agree, and once more at the end.

Objects the tool serves on the bus connection itself (`BUS_OBJECTS`) are answered the same way;
each comes with the calls that make the peer its client.  The clipboard is one: a client calls
``Clipboard.Register`` on QEMU, and QEMU, inside that call, reads the client's properties (waiting
for them, the VM stalled) and calls ``Register`` on the client's own
``/org/qemu/Display1/Clipboard``, by the unique name that called; only then does it reply.  The bus
connection is served by the loop while the call waits, so the answer comes at once.

Every message QEMU sends is checked by `traffic.TrafficCheck`; the tool replies to the calls it
receives the way a conforming client would (`served`).  Listening stops at the end of the listening
time or the run's deadline, whichever comes first; a message that has begun to arrive then gets
``timeout`` more seconds to complete, and is reported if it does not; every file descriptor
received is closed (a shared surface when listening is over).  Listeners are bounded in number
(`MAX_LISTENERS`) and by the descriptors the process may open (each registration says how many its
listener holds): what was not listened to is said.
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
from .message import INTERFACE, MEMBER, METHOD_CALL, METHOD_RETURN, NO_REPLY_EXPECTED, PATH, OverBound
from .served import PROPERTIES, ServedObject, answer
from .shared_image import PixelBudget, PlainImage, SharedImage, same_pixels, seals_text
from .traffic import Seen, TrafficCheck, shown
from .wire import Budget, Handshake, Received, Wire, error_text

CONSOLE = "org.qemu.Display1.Console"
AUDIO = "org.qemu.Display1.Audio"
LISTENER = "org.qemu.Display1.Listener"
LISTENER_MAP = "org.qemu.Display1.Listener.Unix.Map"
AUDIO_OUT = "org.qemu.Display1.AudioOutListener"
AUDIO_IN = "org.qemu.Display1.AudioInListener"
CLIPBOARD = "org.qemu.Display1.Clipboard"
LISTENER_PATH = "/org/qemu/Display1/Listener"
CLIPBOARD_PATH = "/org/qemu/Display1/Clipboard"

#: Listener connections at most, whatever the peer exports.
MAX_LISTENERS = 4096
#: Registrations under way at once: one, as a display client makes them.  QEMU handles them one by
#: one in its main loop, and after replying to one it does the handshake on the new socket there,
#: blocking everything else: so a registration is under way until its reply has come and its
#: listener's handshake is over, and each call's timeout measures QEMU's answer to it, not the time
#: it waited behind the others.
MAX_IN_FLIGHT = 1
#: Descriptors kept free for everything else (received descriptors, the report).
SPARE_FDS = 64
#: How the tool names itself as the recipient of QEMU's messages on a listener connection.
TOOL = "conform"
#: How long before the end of listening the Map listeners' pixels start being compared with their
#: plain twins', and how often: the guest keeps drawing (a blinking cursor), so the two are
#: compared until they agree at a moment when both have handled every update that reached them.
COMPARE_WINDOW = 1.5
COMPARE_EVERY = 0.1


@dataclass(frozen=True)
class Registration:
    """One kind of listener: the call that registers it, and what its connection serves."""

    interface: str
    method: str
    #: The registered interfaces the listener object implements, its own first.
    served: tuple[str, ...]
    path: str
    #: Registered only where the release has every interface of ``served`` on the platform (a
    #: listener that exists to serve them); else where it has the first.
    whole: bool = False
    #: The registration on the same object whose listener's image this listener's shared image
    #: must equal, pixel for pixel.
    twin: str | None = None
    #: Descriptors the listener holds: its socket, and the surface it is given to map.
    descriptors: int = 1


REGISTRATIONS = {
    "display": Registration(CONSOLE, "RegisterListener", (LISTENER,), LISTENER_PATH),
    "display-map": Registration(
        CONSOLE, "RegisterListener", (LISTENER, LISTENER_MAP), LISTENER_PATH, whole=True, twin="display", descriptors=2
    ),
    "audio-out": Registration(AUDIO, "RegisterOutListener", (AUDIO_OUT,), "/org/qemu/Display1/AudioOutListener"),
    "audio-in": Registration(AUDIO, "RegisterInListener", (AUDIO_IN,), "/org/qemu/Display1/AudioInListener"),
}


@dataclass(frozen=True)
class Call:
    """A call the tool makes on the peer's object (the path and interface of a `BusObject`)."""

    member: str
    signature: str = ""
    body: tuple[Any, ...] = ()


@dataclass(frozen=True)
class BusObject:
    """An object the tool serves on the bus connection while it listens, where the peer exports
    the object's own interface (``served[0]``) at the same path: ``label`` names it in the
    report, ``calls`` make the peer its client (on the peer's object, each once the one before is
    answered: the first registers), ``farewell`` is sent when listening ends (no reply expected),
    and ``errors`` are the methods it answers with an error, as a client in its state does
    (method → (error name, message))."""

    served: tuple[str, ...]
    label: str
    calls: tuple[Call, ...]
    farewell: Call | None = None
    errors: tuple[tuple[str, str, str], ...] = ()


#: Objects the tool serves on the bus connection while it listens, by path.
BUS_OBJECTS = {
    # A clipboard client: it takes the clipboard and lets it go (QEMU passes the release on to its
    # clipboard peers, this one included), and holds no data when QEMU asks for it.
    CLIPBOARD_PATH: BusObject(
        (CLIPBOARD,),
        "clipboard client",
        (Call("Register"), Call("Grab", "uuas", (0, 1, ["text/plain;charset=utf-8"])), Call("Release", "u", (0,))),
        farewell=Call("Unregister"),
        errors=(("Request", "org.qemu.Display1.Error.Failed", "Empty clipboard"),),
    ),
}
#: `Target.kind` of a `BUS_OBJECTS` entry.
CLIENT = "client"


@dataclass
class ListenResult:
    """What listening found besides the traffic check's own findings."""

    findings: list[Diagnostic] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)  # "Console_0 display", ...
    #: How long QEMU took to complete each handshake, in seconds.
    handshakes: dict[str, float] = field(default_factory=dict)
    #: Whether listening lasted as long as it was asked to (not cut by the run's deadline).
    complete: bool = False
    #: The registered interfaces served to the peer, which accepted the registrations.
    served: list[str] = field(default_factory=list)
    #: (label, "registered" or "not registered") of each `BUS_OBJECTS` client.
    clients: list[tuple[str, str]] = field(default_factory=list)
    #: What the shared-memory listeners found, one line per Map listener (for the summary).
    shared: list[str] = field(default_factory=list)


@dataclass
class Target:
    """One registration to make: ``kind`` (a key of `REGISTRATIONS`) on the object at ``path``."""

    kind: str
    path: str

    @property
    def label(self) -> str:
        if self.kind == CLIENT:
            return BUS_OBJECTS[self.path].label
        return f"{self.path.rsplit('/', 1)[-1]} {self.kind}"

    def twin_label(self) -> str | None:
        """The label of the listener on the same object whose image this one's must equal."""
        twin = REGISTRATIONS[self.kind].twin if self.kind in REGISTRATIONS else None
        return None if twin is None else Target(twin, self.path).label


def targets_of(objects: Iterator[tuple[str, tuple[str, ...]]]) -> list[Target]:
    """The registrations to make for introspected objects ((path, interface names) pairs): each
    kind of listener whose registration call the object offers, and each `BUS_OBJECTS` client of
    the object."""
    found = []
    for path, interfaces in objects:
        found += [Target(kind, path) for kind, r in REGISTRATIONS.items() if r.interface in interfaces]
        client = BUS_OBJECTS.get(path)
        if client is not None and client.served[0] in interfaces:
            found.append(Target(CLIENT, path))
    return found


def served_object(check: TrafficCheck, path: str, names: tuple[str, ...], whole: bool = False) -> ServedObject | None:
    """The object serving ``names`` (those the registry has for this release and platform), or
    None when the first, the object's own interface, is not there (with ``whole``: when any is
    not)."""
    interfaces = [check.interface(name) for name in names]
    if not interfaces or interfaces[0] is None or (whole and None in interfaces):
        return None
    present: tuple[Interface, ...] = tuple(i for i in interfaces if i is not None)
    served = ServedObject(path, present)
    own = present[0]
    if any(p.name == "Interfaces" for p in own.properties):
        served.values[(own.name, "Interfaces")] = [i.name for i in present[1:]]
    return served


def bus_object(check: TrafficCheck, path: str) -> ServedObject | None:
    """The `BUS_OBJECTS` entry at ``path``, served (None when the release does not have it)."""
    client = BUS_OBJECTS[path]
    served = served_object(check, path, client.served)
    if served is not None:
        served.errors.update({(client.served[0], member): (name, text) for member, name, text in client.errors})
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
        #: The run's bound on the pixels the plain twins of Map listeners hold.
        self.pixels = PixelBudget()
        self.stop_at = min(time.monotonic() + seconds, deadline)
        self._queue = list(reversed(targets))
        self._in_flight = 0
        self._listeners: dict[str, _Listener] = {}
        self._consoles = {target.label: target.path for target in targets if target.kind == "display"}
        #: The labels of the listeners a Map listener's image is compared with.
        self._twins = {
            label for target in targets if (label := target.twin_label()) is not None and self._available(target)
        }
        self._agreed: set[str] = set()  # Map listeners whose pixels equalled their twin's
        self._stopped = False
        self._late: list[str] = []  # consoles whose registration was answered only after listening ended
        self._closing = False
        self._descriptors = 0  # what the listeners registered so far hold
        self._limit = _descriptor_limit()
        objects = {t.path: bus_object(check, t.path) for t in targets if t.kind == CLIENT}
        self._clients: dict[str, bool] = {}  # path → whether the peer took the client
        self._bus_side = _BusSide(self, {path: served for path, served in objects.items() if served is not None})
        self.bus = Connection(loop, bus, dest, self._bus_side, owned=False)

    def start(self) -> None:
        self.loop.at(self.stop_at, self.stop, keep_running=True)
        self.loop.at(self.stop_at - COMPARE_WINDOW, self._compare)
        self._register_more()

    # --- registering ----------------------------------------------------------------------

    def _available(self, target: Target) -> bool:
        """Whether the release has what the listener of ``target`` serves, on this platform."""
        registration = REGISTRATIONS[target.kind]
        return served_object(self.check, registration.path, registration.served, registration.whole) is not None

    def _register_more(self) -> None:
        while self._queue and self._in_flight < MAX_IN_FLIGHT and not (self._stopped or self._closing):
            target = self._queue.pop()
            if target.kind == CLIENT:
                self._client(target)
                continue
            registration = REGISTRATIONS[target.kind]
            served = served_object(self.check, registration.path, registration.served, registration.whole)
            if served is None:
                continue  # not in the registry for this release and platform
            if len(self._listeners) >= MAX_LISTENERS or self._descriptors + registration.descriptors > self._limit:
                self._queue.append(target)
                limit = f"at most {self._limit} descriptors for listeners"
                self._unheard(f"the process may open no more file descriptors ({limit})")
                return
            try:
                ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            except OSError as error:
                self._queue.append(target)
                self._unheard(f"no more file descriptors: {error.strerror or error}")
                return
            self._descriptors += registration.descriptors
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

        listener = _Listener(self, target, {served.path: served})
        if registration.twin is not None:
            listener.shared = SharedImage()
        if target.label in self._twins:
            listener.plain = PlainImage(self.pixels)
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
            listener.answered = True
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
                self._serving(registration.served)
            else:
                listener.failed = True
                connection.close(None)
                message = f"{registration.interface}.{registration.method} on {target.path} failed: {problem}"
                self.result.findings.append(diagnostic("L014", Location(f"{self.dest}:{target.path}"), message))
            self.under_way(listener)

        self.bus.call(call, self.timeout, registered, handing_over=[theirs])

    def under_way(self, listener: _Listener) -> None:
        """The next registration may be made once this one is over: answered, and its listener's
        handshake done (or its connection closed)."""
        if listener.under_way and listener.answered and listener.connection.state != "handshake":
            listener.under_way = False
            self._in_flight -= 1
            self._register_more()

    def _client(self, target: Target) -> None:
        """Make the peer a client of the `BUS_OBJECTS` entry at ``target.path``: its calls, each
        once the one before is answered; the first holds the place of a registration."""
        client = BUS_OBJECTS[target.path]
        if target.path not in self._bus_side.objects:
            return  # not in the registry for this release and platform
        self._clients[target.path] = False
        self._in_flight += 1

        def then(step: int, reply: Received | None, problem: str | None) -> None:
            if step == 0:
                self._in_flight -= 1
            if self._closing:
                return  # not answered before the run ended: the tool's doing
            if problem is None and reply is not None:
                problem = error_text(reply.message)
            if problem is not None:
                member = f"{client.served[0]}.{client.calls[step].member}"
                message = f"{member} from the {client.label} failed: {problem}"
                self.result.findings.append(diagnostic("L014", Location(f"{self.dest}:{target.path}"), message))
            elif step == 0:
                self._clients[target.path] = True
                self._serving(client.served)
                if self._stopped:
                    self._farewell(target.path)
            if problem is None and step + 1 < len(client.calls) and not self._stopped:
                self._client_call(target.path, step + 1, then)
            if step == 0:
                self._register_more()

        self._client_call(target.path, 0, then)

    def _client_call(self, path: str, step: int, then: Any) -> None:
        from jeepney import DBusAddress, new_method_call

        client = BUS_OBJECTS[path]
        made = client.calls[step]
        address = DBusAddress(path, bus_name=self.dest, interface=client.served[0])
        call = new_method_call(address, made.member, made.signature, made.body)
        self.bus.call(call, self.timeout, lambda reply, problem: then(step, reply, problem))

    def _farewell(self, path: str) -> None:
        from jeepney import DBusAddress, MessageFlag, new_method_call

        client = BUS_OBJECTS[path]
        if client.farewell is None or self.bus.state == "closed":
            return
        address = DBusAddress(path, bus_name=self.dest, interface=client.served[0])
        call = new_method_call(address, client.farewell.member, client.farewell.signature, client.farewell.body)
        call.header.flags |= MessageFlag.no_reply_expected
        self.bus.send(call)

    def _serving(self, names: tuple[str, ...]) -> None:
        """Note the interfaces of an object the peer now uses (those the release has)."""
        for name in names:
            if name not in self.result.served and self.check.interface(name) is not None:
                self.result.served.append(name)

    def _unheard(self, why: str) -> None:
        """Report the consoles still to register as not listened to, and why."""
        left = [target.path for target in reversed(self._queue) if target.kind == "display"]
        self._queue = []
        self._not_listened(left, why)

    def _not_listened(self, left: list[str], why: str) -> None:
        if left:
            message = f"{len(left)} consoles were not listened to, starting with {shown(left[0])}: {why}"
            self.result.findings.append(diagnostic("L017", Location(self.dest), message))

    # --- the shared images ---------------------------------------------------------------

    def _pairs(self) -> Iterator[tuple[_Listener, SharedImage, PlainImage | None]]:
        """(Map listener, its shared image, its plain twin's image or None when the twin was not
        registered) of every registered Map listener."""
        for listener in self._listeners.values():
            if listener.shared is None or not listener.registered:
                continue
            twin_label = listener.target.twin_label()
            twin = self._listeners.get(twin_label) if twin_label is not None else None
            yield listener, listener.shared, twin.plain if twin is not None and twin.registered else None

    def _compare(self) -> None:
        """Compare each Map listener's pixels with its twin's while the guest draws, until they
        agree; again every `COMPARE_EVERY` seconds until listening ends."""
        if self._stopped or self._closing:
            return
        for listener, shared, plain in self._pairs():
            if listener.label in self._agreed or plain is None:
                continue
            if (shared.changed or plain.changed) and plain.pixels and shared.fd >= 0:
                shared.changed = plain.changed = False
                if same_pixels(shared, plain) is None:
                    self._agreed.add(listener.label)
        self.loop.at(time.monotonic() + COMPARE_EVERY, self._compare)

    def _describe_shared(self) -> None:
        """What each Map listener was given and how its pixels compared, once listening is over.
        A pair that never agreed while QEMU was drawing is compared once more now that both have
        handled every message they received: that comparison is the verdict."""
        for listener, shared, plain in self._pairs():
            if not shared.scanouts:
                self.result.shared.append(f"{listener.label}: no ScanoutMap (QEMU used Scanout instead)")
                continue
            described = (
                f"{listener.label}: {shared.scanouts} ScanoutMap ({shared.kind}, {seals_text(shared.seals)}, mapped "
                f"read-only), {shared.updates} UpdateMap ({shared.updates_outside} outside the surface)"
            )
            difference = shared.shrunk() if shared.fd >= 0 else None  # at any moment, whatever it showed before
            if difference is not None:
                described += ", its file shrank after ScanoutMap"
            elif listener.label in self._agreed:
                described += f", pixels equal the plain listener's ({shared.width}x{shared.height})"
            elif shared.fd < 0:
                described += ", pixels not compared"  # the ScanoutMap could not be used: a finding already
            elif plain is None or not plain.pixels:
                why = plain.dropped if plain is not None else ""
                described += f", pixels not compared ({why or 'the plain listener on the console got no image'})"
            else:
                difference = same_pixels(shared, plain)
                if difference is None:
                    described += f", pixels equal the plain listener's ({shared.width}x{shared.height})"
                else:
                    described += ", pixels differ from the plain listener's"
            if difference is not None:
                shared.problems += 1
                self.check.findings.add(
                    ("map", listener.label, "pixels"),
                    diagnostic(
                        "L108", listener.where, f"{listener.label}: {difference} (compared until the end of listening)"
                    ),
                )
            verdict = f"{shared.problems} problem(s), reported above" if shared.problems else "checks passed"
            self.result.shared.append(f"{described}: {verdict}")

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
        for path, taken in self._clients.items():
            if taken:
                self._farewell(path)
        # Registrations on their way get their reply or their timeout (a finding), no later.
        self.bus.finish(grace, "listening ended")

    def close(self) -> None:
        """The loop is over (or interrupted): whatever is still open closes now, and what the
        listeners were given is described; every descriptor they kept is closed."""
        self._closing = True
        for listener in self._listeners.values():
            listener.connection.close(None)
        self.bus.close(None)
        for listener in self._listeners.values():
            if listener.problem is not None and listener.registered:
                self.result.findings.append(listener.problem)
        self._not_listened(self._late, "listening ended before their registration was answered")
        for path, taken in self._clients.items():
            self.result.clients.append((BUS_OBJECTS[path].label, "registered" if taken else "not registered"))
        try:
            self._describe_shared()
        finally:
            for listener in self._listeners.values():
                listener.close_images()

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
    pairs them); calls to the objects the tool serves there are answered, then checked."""

    def __init__(self, listening: Listening, objects: dict[str, ServedObject]) -> None:
        self.listening = listening
        self.objects = objects

    def opened(self, connection: Connection) -> None:
        pass

    def received(self, connection: Connection, received: Received) -> None:
        message = received.message
        if message.kind != METHOD_CALL or not self.objects:
            return
        if not message.flags & NO_REPLY_EXPECTED:
            connection.send(answer(self.objects, message))
        path = message.field(PATH) or ""
        if path in self.objects:
            label = BUS_OBJECTS[path].label
            self.listening.check.check(Seen.of(message, len(received.fds)), label, label, TOOL)

    def refused(self, connection: Connection, error: OverBound) -> None:
        pass  # a message to someone else, or a signal: the bus delivers what the tool never asked for

    def closed(self, connection: Connection, problem: str | None) -> None:
        pass


class _Listener:
    """One listener connection: answer first, then check."""

    def __init__(self, listening: Listening, target: Target, objects: dict[str, ServedObject]) -> None:
        self.listening = listening
        self.target = target
        self.label = target.label
        self.objects = objects
        self.connection: Connection
        self.registered = False
        self.failed = False
        #: Its registration was still on its way when listening ended.
        self.abandoned = False
        #: Its registration has been answered; it is still under way (see `Listening.under_way`).
        self.answered = False
        self.under_way = True
        self.problem: Diagnostic | None = None
        self.where = Location(f"{self.label}:{next(iter(objects))}")
        #: A Map listener's shared surface; a plain listener's drawn image when a Map listener's
        #: pixels are compared with it.
        self.shared: SharedImage | None = None
        self.plain: PlainImage | None = None

    def opened(self, connection: Connection) -> None:
        handshake = connection.handshake
        if handshake is not None:
            self.listening.result.handshakes[self.label] = time.monotonic() - handshake.started
        self.listening.under_way(self)

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
                size = check.console_sizes.get(self.label)  # the check takes it
                check.check(seen, self.label, self.label, TOOL)
                self._draw(seen, size)
                connection.resume()

            self.listening.read_console_size(self.label, then)
            return
        check.check(seen, self.label, self.label, TOOL)
        if message.kind == METHOD_CALL:
            self._images(seen, received)

    def _images(self, seen: Seen, received: Received) -> None:
        """Keep the images of a Map listener and of its plain twin, checking what the Map
        listener is given: the surface's descriptor is taken out of the message and kept."""
        interface, member = seen.field(INTERFACE), seen.field(MEMBER)
        if interface == LISTENER and self.plain is not None:
            self._draw(seen, None)
            return
        if interface != LISTENER_MAP or self.shared is None:
            return
        problems: list[str] = []
        if member == "ScanoutMap" and seen.signature == "huuuuu" and received.fds:
            index, *geometry = seen.body
            problems = self.shared.scanout(received.keep(index), *geometry)
        elif member == "UpdateMap" and seen.signature == "iiii":
            problems = self.shared.update(*seen.body)
            if not seen.flags & NO_REPLY_EXPECTED:
                problems.append("UpdateMap expects a reply; QEMU sends it without waiting for one")
        self.shared.problems += len(problems)
        for problem in problems:
            where = Location(f"{self.label}:{shown(seen.field(PATH) or '?')}")
            self.listening.check.findings.add(
                ("map", self.label, problem[:60]), diagnostic("L108", where, f"{self.label}: {problem}")
            )

    def _draw(self, seen: Seen, size: tuple[int, int] | None) -> None:
        """Draw a plain listener's Scanout or Update into its image, as a client does."""
        if self.plain is None or seen.field(INTERFACE) != LISTENER:
            return
        member = seen.field(MEMBER)
        if member == "Scanout" and seen.signature == "uuuuay":
            self.plain.scanout(*seen.body)
        elif member == "Update" and seen.signature == "iiiiuuay":
            x, y, width, height, stride, _format, data = seen.body
            self.plain.update(x, y, width, height, stride, data, size)

    def close_images(self) -> None:
        if self.shared is not None:
            self.shared.close()
        if self.plain is not None:
            self.plain.close()

    def refused(self, connection: Connection, error: OverBound) -> None:
        what = f"QEMU sent {self.label}'s listener {error}; it was not checked"
        self.listening.check.findings.add(("over bound", self.label), diagnostic("L017", self.where, what))

    def closed(self, connection: Connection, problem: str | None) -> None:
        self.listening.under_way(self)
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


def _descriptor_limit() -> int:
    """How many descriptors listener connections may hold besides what the process needs
    otherwise (each registration says how many its listener holds; one more is on its way to
    QEMU while a registration is)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return 2 * MAX_LISTENERS
    if soft == getattr(resource, "RLIM_INFINITY", -1):
        return 2 * MAX_LISTENERS
    try:
        open_now = len(os.listdir("/proc/self/fd"))
    except OSError:
        open_now = 16
    return max(0, min(2 * MAX_LISTENERS, soft - open_now - SPARE_FDS - MAX_IN_FLIGHT))

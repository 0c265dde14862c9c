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
from .shared_image import PlainImage, SharedImage, same_pixels, seals_text
from .traffic import NO_REPLY_EXPECTED, PROPERTIES, Seen, TrafficCheck
from .wire import Received, Wire, WireError, authenticate_client, error_text, remaining

CONSOLE = "org.qemu.Display1.Console"
AUDIO = "org.qemu.Display1.Audio"
LISTENER = "org.qemu.Display1.Listener"
LISTENER_MAP = "org.qemu.Display1.Listener.Unix.Map"
AUDIO_OUT = "org.qemu.Display1.AudioOutListener"
AUDIO_IN = "org.qemu.Display1.AudioInListener"
INTROSPECTABLE = "org.freedesktop.DBus.Introspectable"
PEER = "org.freedesktop.DBus.Peer"

#: What each registration call hands over: (interface called, method, the listener's interface,
#: the object the client serves on the new connection).
REGISTRATIONS = {
    "display": (CONSOLE, "RegisterListener", LISTENER, "/org/qemu/Display1/Listener"),
    # A second display listener on the same console that also serves Listener.Unix.Map: its
    # shared image is compared with the plain one's pixels.
    "display-map": (CONSOLE, "RegisterListener", LISTENER, "/org/qemu/Display1/Listener"),
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
    #: What the shared-memory listeners found, one line per Map listener (for the summary).
    shared: list[str] = field(default_factory=list)


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
        #: The optional listener interfaces served beside the listener's own (its Interfaces).
        self.optional = [i.name for found in objects.values() for i in found[1:]]
        #: A Map listener's shared image; a plain listener's drawn image when it has a Map twin.
        self.shared: SharedImage | None = SharedImage() if LISTENER_MAP in self.optional else None
        self.plain: PlainImage | None = None
        self.console_size: Any = None

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
            self._images(seen, received)

    def _images(self, seen: Seen, received: Received) -> None:
        """Keep the images a Map listener and its plain twin hold, checking what the Map
        listener is given (its descriptor is only valid until the message is closed)."""
        interface, member, body = seen.field(2), seen.field(3), seen.body
        problems: list[str] = []
        if interface == LISTENER_MAP and self.shared is not None:
            if member == "ScanoutMap" and seen.signature == "huuuuu" and received.fds:
                problems = self.shared.scanout(received.fds[0], *body[1:])
            elif member == "UpdateMap" and seen.signature == "iiii":
                problems = self.shared.update(*body)
                if not seen.flags & NO_REPLY_EXPECTED:
                    problems.append("UpdateMap expects a reply; QEMU sends it without waiting for one")
        elif interface == LISTENER and self.plain is not None:
            if member == "Scanout" and seen.signature == "uuuuay":
                self.plain.scanout(*body)
            elif member == "Update" and seen.signature == "iiiiuuay":
                x, y, width, height, stride, _format, data = body
                fits = x + width <= self.plain.width and y + height <= self.plain.height
                size = None if fits or self.console_size is None else self.console_size(self.label)
                self.plain.update(x, y, width, height, stride, data, size)
        if self.shared is not None:
            self.shared.problems += len(problems)
        for problem in problems:
            where = Location(f"{self.label}:{seen.field(1) or '?'}")
            self.check.findings.add(
                ("map", self.label, problem[:60]), diagnostic("L108", where, f"{self.label}: {problem}")
            )

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
            if target.name == LISTENER and "Interfaces" in values:
                values["Interfaces"] = ("as", list(self.optional))  # the optional interfaces served
            return new_method_return(message, "a{sv}", (values,))
        if seen.field(3) == "Get" and seen.signature == "ss" and body[1] in readable:
            prop = readable[body[1]]
            value = list(self.optional) if (target and target.name, prop.name) == (LISTENER, "Interfaces") else None
            return new_method_return(message, "v", ((prop.type, value or default_value(prop.type)),))
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
    differences: dict[str, str | None] = {}
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
        # The traffic check asks from inside check(), under ``lock``.  QEMU may be waiting, in its
        # main loop, for another listener thread to answer (a GetAll at set-up), and that thread
        # needs ``lock`` to get to its next message: holding it across this call would stall
        # everything until the timeouts.  Only this connection's state changes meanwhile.
        lock.release()
        try:
            with bus_lock:
                reply = bus.call(call, min(time.monotonic() + timeout, stop_at)).message
        except (TimeoutError, WireError):
            return None
        finally:
            lock.acquire()
        return _size(reply.body)

    check.console_size = console_size
    mapped = check.interface(LISTENER_MAP) is not None
    twinned = {target.label for target in targets if target.kind == "display-map" and mapped}
    try:
        for target in targets:
            if remaining(stop_at) <= 0:
                break
            interface, method, served, path = REGISTRATIONS[target.kind]
            listener = check.interface(served)
            if listener is None:
                continue  # not in the registry for this release and platform
            optional: tuple[Interface, ...] = ()
            if target.kind == "display-map":
                shared = check.interface(LISTENER_MAP)
                if shared is None:
                    continue  # no Unix.Map in this release or on this platform
                optional = (shared,)
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            thread = _Served(ours, target.label, {path: (listener, *optional)}, check, lock, timeout, stop_at, result)
            thread.console_size = console_size
            if target.kind == "display" and _twin(target.label) in twinned:
                thread.plain = PlainImage()  # its pixels are compared with the Map listener's
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
        differences = _compare_shared_images(threads, lock, stop_at)
        for thread in threads:
            thread.join(max(remaining(stop_at), 0) + 1.0)
    finally:
        for thread in threads:
            thread.stopping.set()
            _shut(thread.sock)
        for thread in threads:
            thread.join(timeout)
            thread.sock.close()
            if thread.shared is not None:
                thread.shared.close()
    _describe_shared(threads, differences, result)
    for thread in threads:
        # A failed registration explains whatever its connection did next.
        if thread.registered and thread.problem is not None and not thread.is_alive():
            result.findings.append(thread.problem)
        if thread.handshake is not None:
            result.handshakes[thread.label] = thread.handshake
    return result


def _twin(label: str) -> str:
    """``Console_0 display-map`` ↔ ``Console_0 display``: the plain listener of a Map listener."""
    return label[: -len("-map")] if label.endswith("-map") else f"{label}-map"


#: How long before the end of listening the Map listeners' pixels start being compared with
#: their plain twins', and how often: the guest keeps drawing (a blinking cursor), so the two
#: are compared until they agree at a moment when both have handled every update sent.
COMPARE_WINDOW = 1.5
COMPARE_EVERY = 0.1
NOT_COMPARED = "not compared"


def _compare_shared_images(threads: list[_Served], lock: threading.Lock, stop_at: float) -> dict[str, str | None]:
    """Wait for the listening time to end, comparing each Map listener's mapped pixels with its
    plain twin's image in its last moments: Map listener → how the pixels differ (None: equal)."""
    pairs = [
        (thread, twin)
        for thread in threads
        if thread.shared is not None
        for twin in threads
        if twin.label == _twin(thread.label) and twin.plain is not None
    ]
    time.sleep(max(0.0, remaining(stop_at) - COMPARE_WINDOW))
    differences: dict[str, str | None] = {thread.label: NOT_COMPARED for thread, _ in pairs}
    while pairs and remaining(stop_at) > 0:
        for thread, twin in pairs:
            if differences[thread.label] is None or thread.shared is None or twin.plain is None:
                continue
            with lock:
                # A plain listener that got no image, or a ScanoutMap that could not be used (already
                # a finding), leaves nothing to compare.
                if twin.plain.pixels and thread.shared.fd >= 0:
                    differences[thread.label] = same_pixels(thread.shared, twin.plain)
        if all(value is None for value in differences.values()):
            break
        time.sleep(COMPARE_EVERY)
    return differences


def _describe_shared(threads: list[_Served], differences: dict[str, str | None], result: ListenResult) -> None:
    """What each Map listener was given and how its pixels compared, once listening is over.  A
    pair that never agreed while QEMU was drawing is compared once more now that both have
    handled every message they received: that comparison is the verdict."""
    plain = {thread.label: thread.plain for thread in threads if thread.plain is not None}
    for thread in threads:
        shared = thread.shared
        if shared is None or not thread.registered or thread.label not in differences:
            continue
        twin = plain.get(_twin(thread.label))
        if differences[thread.label] is not None and twin is not None and twin.pixels and shared.fd >= 0:
            differences[thread.label] = same_pixels(shared, twin)
        if not shared.scanouts:
            result.shared.append(f"{thread.label}: no ScanoutMap (QEMU used Scanout instead)")
            continue
        described = (
            f"{thread.label}: {shared.scanouts} ScanoutMap ({shared.kind}, {seals_text(shared.seals)}, mapped "
            f"read-only), {shared.updates} UpdateMap ({shared.updates_outside} outside the surface)"
        )
        difference = differences.get(thread.label)
        if difference is None:
            described += f", pixels equal the plain listener's ({shared.width}x{shared.height})"
        elif difference == NOT_COMPARED:
            described += ", pixels not compared (the plain listener on the console got no image)"
        else:
            described += ", pixels differ from the plain listener's"
            shared.problems += 1
            where = Location(f"{thread.label}:/org/qemu/Display1/Listener")
            thread.check.findings.add(
                ("map", thread.label, "pixels"),
                diagnostic("L108", where, f"{thread.label}: {difference} (compared until the end of listening)"),
            )
        verdict = f"{shared.problems} problem(s), reported above" if shared.problems else "checks passed"
        result.shared.append(f"{described}: {verdict}")


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
            found += [Target("display", path), Target("display-map", path)]
        if AUDIO in interfaces:
            found += [Target("audio-out", path), Target("audio-in", path)]
    return found

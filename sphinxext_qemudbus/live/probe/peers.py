"""The client side QEMU talks to: a bus connection that serves while it calls, and listeners.

QEMU waits for its peers: for the answer to ``Properties.GetAll`` on a listener it was handed
(up to 25 s, its main loop blocked), for ``AudioInListener.Read``, for the clipboard client's
``GetAll`` and ``Register``.  So the probe answers every call that reaches it at once, also while
it waits for a reply itself (`BusClient.call` serves the calls that arrive meanwhile), and a
listener's connection is served by a thread of its own (`ListenerPeer`).

A `Responder` answers like a conforming client (the registered out args, zero values, the
registry's properties), except for the one call a `ReplyVariant` replaces: that is how the probe
tries QEMU's handling of what its peers answer (an error, a wrong signature, no answer, hostile
values).  Every call the responder receives is counted, so a variant that QEMU never asked for is
reported as not exercised rather than as passed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from jeepney import HeaderFields, MessageType
from jeepney.wrappers import new_error, new_method_return

from ...diagnostics.frozen import record
from ...model.introspection import Direction, Interface, Method, Property
from ..listen import INTROSPECTABLE, PEER, default_body, default_value, introspection_xml
from ..traffic import PROPERTIES
from ..wire import Received, Wire, WireError, authenticate_client, remaining


@record(frozen=True)
class ReplyVariant:
    """How to answer one call QEMU makes to a peer instead of conforming: ``kind`` is ``error``
    (an error reply), ``silence`` (no reply at all) or ``body`` (a reply of ``signature`` with
    ``body``, which may break the registry on purpose)."""

    label: str
    kind: str
    signature: str = ""
    body: tuple[Any, ...] = ()


#: (interface, member, the interface GetAll asks for or "") → a variant.
Replacements = Mapping[tuple[str, str, str], ReplyVariant]


class Responder:
    """Answers the calls that reach the objects a client serves (``objects``: path → the
    interfaces there), conforming unless ``replacements`` says otherwise."""

    def __init__(self, objects: Mapping[str, tuple[Interface, ...]], replacements: Replacements | None = None) -> None:
        self.objects = objects
        self.replacements = dict(replacements or {})
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()

    def answer(self, message: Any) -> Any | None:
        """The reply to send to ``message``, or None when none is to be sent."""
        fields = message.header.fields
        path = fields.get(HeaderFields.path, "")
        interface, member = fields.get(HeaderFields.interface), fields.get(HeaderFields.member)
        asked = str(message.body[0]) if member in ("GetAll", "Get") and message.body else ""
        with self.lock:
            self.calls[f"{interface}.{member}({asked})" if asked else f"{interface}.{member}"] += 1
        variant = self.replacements.get((str(interface), str(member), asked))
        if variant is not None:
            if variant.kind == "silence":
                return None
            if variant.kind == "error":
                return new_error(message, "org.qemu.Probe.Error.Refused", "s", (variant.label,))
            return new_method_return(message, variant.signature, variant.body)
        if message.header.flags & 1:  # NO_REPLY_EXPECTED
            return None
        served = self.objects.get(path)
        if served is None:
            return new_error(message, "org.freedesktop.DBus.Error.UnknownObject", "s", (f"no object at {path}",))
        if interface == PEER:
            return (
                new_method_return(message, "s", ("0" * 32,)) if member == "GetMachineId" else new_method_return(message)
            )
        if interface == INTROSPECTABLE:
            return new_method_return(message, "s", (introspection_xml(served),))
        if interface == PROPERTIES:
            return _properties(message, served, member, asked)
        for candidate in served:
            if interface in (None, candidate.name):
                method = next((m for m in candidate.members if isinstance(m, Method) and m.name == member), None)
                if method is not None:
                    out = "".join(arg.type for arg in method.args if arg.direction is Direction.OUT)
                    return new_method_return(message, out, default_body(out))
        return new_error(message, "org.freedesktop.DBus.Error.UnknownMethod", "s", (f"no method {member}",))


def _properties(message: Any, served: tuple[Interface, ...], member: str, asked: str) -> Any:
    target = next((i for i in served if i.name == asked), None)
    if target is None:
        return new_error(message, "org.freedesktop.DBus.Error.UnknownInterface", "s", (asked,))
    readable = {p.name: p for p in target.members if isinstance(p, Property) and p.access.readable}
    if member == "GetAll":
        return new_method_return(message, "a{sv}", ({n: (p.type, default_value(p.type)) for n, p in readable.items()},))
    if member == "Get" and len(message.body) == 2 and message.body[1] in readable:
        prop = readable[message.body[1]]
        return new_method_return(message, "v", ((prop.type, default_value(prop.type)),))
    return new_error(message, "org.freedesktop.DBus.Error.PropertyReadOnly", "s", ("read-only",))


class BusClient:
    """The probe's bus connection: calls with a timeout, several at once if need be, serving
    meanwhile the calls that reach the objects it serves (the clipboard client QEMU calls back
    after ``Register``)."""

    #: Replies kept for calls nobody waits for any more (after a hang): a bound, not a cache.
    MAX_KEPT = 64

    def __init__(self, wire: Wire, responder: Responder) -> None:
        self.wire = wire
        self.responder = responder
        self._replies: dict[int, Received] = {}

    def send(self, message: Any, timeout: float = 5.0) -> int:
        """Send ``message``; its serial, for `collect`.  Raises `WireError`."""
        try:
            return self.wire.send(message, time.monotonic() + timeout)
        except TimeoutError as error:
            raise WireError("the bus does not read what the probe sends") from error

    def collect(self, serial: int, deadline: float) -> Received | None:
        """The reply to the call of ``serial``, waiting until ``deadline`` at most (None when
        none came).  Raises `WireError` when the bus connection broke."""
        while True:
            if serial in self._replies:
                return self._replies.pop(serial)
            try:
                received = self.wire.receive(deadline)
            except TimeoutError:
                return None
            header = received.message.header
            reply_to = header.fields.get(HeaderFields.reply_serial)
            if reply_to is not None:
                if reply_to == serial:
                    return received
                if len(self._replies) >= self.MAX_KEPT:
                    self.forget()
                self._replies[reply_to] = received
                continue
            try:
                if header.message_type is MessageType.method_call:
                    reply = self.responder.answer(received.message)
                    if reply is not None:
                        self.send(reply)
            finally:
                received.close()

    def call(self, message: Any, timeout: float) -> Received | None:
        """The reply (a method return or an error) to ``message``, or None when none came within
        ``timeout`` seconds.  Raises `WireError` when the bus connection broke."""
        deadline = time.monotonic() + timeout
        return self.collect(self.send(message), deadline)

    def forget(self) -> None:
        """Drop the replies kept for calls nobody waits for."""
        for received in self._replies.values():
            received.close()
        self._replies = {}


class ListenerPeer(threading.Thread):
    """One listener connection handed to QEMU: authenticate as its client, then serve the
    listener object with ``responder`` until `stop`."""

    def __init__(self, sock: socket.socket, responder: Responder, handshake_timeout: float) -> None:
        super().__init__(name="probe listener", daemon=True)
        self.sock = sock
        self.responder = responder
        self.handshake_timeout = handshake_timeout
        self.stopping = threading.Event()
        self.authenticated = threading.Event()
        self.problem: str | None = None

    def run(self) -> None:
        try:
            authenticate_client(self.sock, time.monotonic() + self.handshake_timeout)
        except (TimeoutError, WireError) as error:
            self.problem = f"handshake: {error or 'no answer'}"
            return
        self.authenticated.set()
        wire = Wire(self.sock)
        try:
            while not self.stopping.is_set():
                try:
                    received = wire.receive(time.monotonic() + 0.5)
                except TimeoutError:
                    continue
                try:
                    if received.message.header.message_type is MessageType.method_call:
                        reply = self.responder.answer(received.message)
                        if reply is not None:
                            wire.send(reply, time.monotonic() + 5.0)
                finally:
                    received.close()
        except (WireError, TimeoutError, OSError) as error:
            if not self.stopping.is_set() and "closed the connection" not in str(error):
                self.problem = str(error)
        finally:
            with contextlib.suppress(OSError):
                self.sock.close()

    def stop(self) -> None:
        self.stopping.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.join(2.0)


def wait_for_calls(responder: Responder, names: list[str], timeout: float) -> bool:
    """Wait until ``responder`` received one of the calls ``names`` (``iface.Member(asked)``
    keys), at most ``timeout`` seconds; whether it did."""
    deadline = time.monotonic() + timeout
    while True:
        with responder.lock:
            if any(responder.calls[name] for name in names):
                return True
        if remaining(deadline) <= 0:
            return False
        time.sleep(0.02)

"""The client side QEMU talks to: bus connections that serve while they call, and listeners.

QEMU waits for its peers: for the answer to ``Properties.GetAll`` on a listener it was handed
(up to 25 s, its main loop blocked), for ``AudioInListener.Read``, for the clipboard client's
``GetAll`` and ``Register``.  So the probe answers every call that reaches it at once, also while
it waits for a reply itself.  Every connection of a run (the bus connection, the registrants' bus
connections, each listener's peer-to-peer socket) is served by one event loop (`loop.Loop`, the
one ``conform --listen`` uses), in the probe's one thread: the probe works one blocking step at a
time (a call, then a liveness read), and each step runs the loop until what it waits for has
come (`Session.wait`), so that no connection ever waits for another.  Every message a peer sends
is validated before anything decodes it (`wire.Reader`), descriptors that come with it are closed
once it is handled, and the bytes all connections hold at once are bounded by one `wire.Budget`.

A `Responder` answers like a conforming client, from the served-object tables (`served`: the
registered out args as zero values, the registry's properties, the standard interfaces), except
for the one call a `ReplyVariant` replaces: that is how the probe tries QEMU's handling of what
its peers answer (an error, a wrong signature, no answer, hostile values).  Every call the
responder receives is counted, so a variant that QEMU never asked for is reported as not
exercised rather than as passed.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from ...diagnostics.frozen import record
from ..loop import Connection, Loop
from ..message import INTERFACE, MEMBER, METHOD_CALL, NO_REPLY_EXPECTED, Message, OverBound
from ..served import ServedObject, answer
from ..wire import Budget, Handshake, Received, Wire, WireError, error_reply, method_return


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
    """Answers the calls that reach the objects a client serves, conforming (`served.answer`)
    unless ``replacements`` says otherwise."""

    def __init__(self, objects: Mapping[str, ServedObject], replacements: Replacements | None = None) -> None:
        self.objects = objects
        self.replacements = dict(replacements or {})
        self.calls: Counter[str] = Counter()

    def answer(self, call: Message) -> Any | None:
        """The reply to send to ``call`` (a validated method call), or None when none is to be
        sent."""
        interface, member = call.field(INTERFACE), call.field(MEMBER)
        # Which interface a Get or GetAll asks for: decoded only when the signature says it is
        # there (a string first), so a hostile body is never decoded for it.
        asked = ""
        if member in ("GetAll", "Get") and call.signature[:1] == "s":
            asked = str(call.body[0])
        self.calls[f"{interface}.{member}({asked})" if asked else f"{interface}.{member}"] += 1
        variant = self.replacements.get((str(interface), str(member), asked))
        if variant is not None:
            if variant.kind == "silence":
                return None
            if variant.kind == "error":
                return error_reply(call, "org.qemu.Probe.Error.Refused", variant.label)
            return method_return(call, variant.signature, variant.body)
        if call.flags & NO_REPLY_EXPECTED:
            return None
        return answer(self.objects, call)


class _Served:
    """A connection's handler (`loop.Handler`): the calls that reach it are answered by its
    responder; replies go to the calls that wait for them (the loop pairs them)."""

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        #: Legal messages over the tool's bound that it skipped.
        self.over_bound = 0
        #: Why the peer's side broke the connection (a malformed message, a failed handshake),
        #: when it did: not when the tool closed it, nor when the peer closed it between messages.
        self.problem: str | None = None

    def opened(self, connection: Connection) -> None:
        pass

    def received(self, connection: Connection, received: Received) -> None:
        message = received.message
        if message.kind == METHOD_CALL:
            reply = self.responder.answer(message)
            if reply is not None:
                connection.send(reply)

    def refused(self, connection: Connection, error: OverBound) -> None:
        # A legal message over the tool's bound (its descriptors are closed): a call in it goes
        # unanswered, as from a client that could not read it.
        self.over_bound += 1

    def closed(self, connection: Connection, problem: str | None) -> None:
        if problem is not None and not connection.closed_by_peer:
            self.problem = problem


class Session:
    """The event loop of one probing run, and the bound on the bytes its connections hold."""

    def __init__(self, budget: Budget | None = None) -> None:
        self.loop = Loop()
        self.budget = budget or Budget()

    def wait(self, until: float, done: Callable[[], bool]) -> bool:
        """Serve every connection until ``done()`` or ``until``; whether ``done()``."""
        if not done():
            self.loop.run(until, done)
        return done()

    def close(self) -> None:
        self.loop.close_all()


class BusClient:
    """A bus connection of the probe: calls with a timeout, several at once if need be, serving
    meanwhile the calls that reach the objects it serves (the clipboard client QEMU calls back
    after ``Register``).  ``owned``: closing it closes the wire (the probe's first connection
    belongs to the command, which opened it)."""

    def __init__(self, session: Session, wire: Wire, responder: Responder, owned: bool = True) -> None:
        self.session = session
        self.wire = wire
        self.responder = responder
        self.connection = Connection(session.loop, wire, wire.peer, _Served(responder), owned=owned)
        #: Replies that came for the calls waited for, by serial (a call given up is forgotten).
        self._replies: dict[int, Received | None] = {}
        self._waiting: set[int] = set()
        #: Why the calls that got no reply got none, by serial ("its reply was refused: ..." for
        #: a reply over the tool's bound), until `collect` reads it into `refused`.
        self._problems: dict[int, str] = {}
        #: Why the reply `collect` last returned None for was refused (over the tool's bound).
        self.refused: str | None = None

    def send(self, message: Any, timeout: float, handing_over: list[socket.socket] | None = None) -> int:
        """Send the call ``message``, whose reply is waited for ``timeout`` seconds at most; its
        serial, for `collect`.  ``handing_over`` are sockets the call passes, closed once it is
        written.  Raises `WireError` when the connection is closed."""
        self._check()
        serial = self.connection.call(
            message,
            timeout,
            lambda reply, problem: self._replied(serial, reply, problem),
            handing_over=list(handing_over or ()),
        )
        self._waiting.add(serial)
        return serial

    def _replied(self, serial: int, reply: Received | None, problem: str | None) -> None:
        if serial in self._waiting:
            self._waiting.discard(serial)
            self._replies[serial] = reply
            if problem is not None and problem.startswith("its reply was refused"):
                self._problems[serial] = problem

    def collect(self, serial: int, deadline: float) -> Received | None:
        """The reply to the call of ``serial``, waiting until ``deadline`` at most (None when
        none came).  Its descriptors are closed already: no reply to the probe passes any it
        uses.  Raises `WireError` when the connection broke."""
        self.session.wait(deadline, lambda: serial in self._replies or self.connection.state == "closed")
        self.refused = self._problems.pop(serial, None)
        if serial in self._replies:
            reply = self._replies.pop(serial)
            if reply is None:
                self._check()  # no reply because the connection closed
            return reply
        self._waiting.discard(serial)  # given up: a late reply is dropped
        self._check()
        return None

    def call(self, message: Any, timeout: float, handing_over: list[socket.socket] | None = None) -> Received | None:
        """The reply (a method return or an error) to ``message``, or None when none came within
        ``timeout`` seconds.  Raises `WireError` when the connection broke."""
        deadline = time.monotonic() + timeout
        serial = self.send(message, timeout, handing_over)
        return self.collect(serial, deadline)

    def _check(self) -> None:
        if self.connection.state == "closed":
            raise WireError(self.connection.problem or f"the connection to {self.wire.peer} was closed")

    def close(self) -> None:
        self._waiting.clear()
        self._replies.clear()
        self._problems.clear()
        self.connection.close(None)


class ListenerPeer:
    """One listener connection handed to QEMU: authenticate as its client (within
    ``handshake_timeout``), then serve the listener object with ``responder`` until `stop`."""

    def __init__(self, session: Session, sock: socket.socket, responder: Responder, handshake_timeout: float) -> None:
        self.responder = responder
        self._served = _Served(responder)
        wire = Wire(sock, "QEMU's side of a listener connection", session.budget)
        self.connection = Connection(
            session.loop, wire, "listener", self._served, Handshake(), time.monotonic() + handshake_timeout
        )

    @property
    def problem(self) -> str | None:
        """Why QEMU's side broke the connection (a malformed message: it is closed then, with
        every descriptor that came with it), when it did."""
        return self._served.problem

    def stop(self) -> None:
        self.connection.close(None)


def wait_for_calls(session: Session, responder: Responder, names: list[str], timeout: float) -> bool:
    """Serve until ``responder`` received one of the calls ``names`` (``iface.Member(asked)``
    keys), at most ``timeout`` seconds; whether it did."""
    return session.wait(time.monotonic() + timeout, lambda: any(responder.calls[name] for name in names))


__all__ = [
    "BusClient",
    "ListenerPeer",
    "Replacements",
    "ReplyVariant",
    "Responder",
    "Session",
    "wait_for_calls",
]

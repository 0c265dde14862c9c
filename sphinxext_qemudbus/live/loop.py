"""One event loop for every connection ``conform`` serves while it listens and monitors.

QEMU waits, in its main loop, for each listener's handshake and for the answer to the
``Properties.GetAll`` it sends right after: a listener that is slow to answer stalls the whole VM,
and one that waits for another stalls it too.  So no connection ever waits for another: every
socket (the bus connection, each listener's peer-to-peer socket, a monitor connection) is
non-blocking and served by one `selectors` loop in the main thread.  A peer that exports 1,500
consoles costs 1,500 sockets, not 1,500 threads; Ctrl-C reaches the one thread there is.

A `Connection` owns what its socket needs: the SASL handshake (`wire.Handshake`, with a deadline),
the reader of its messages (`wire.Reader`), what waits to be written (bounded: a peer that does not
read is given up), and the calls it made that wait for a reply (each with a deadline).  What its
messages mean is its handler's business (listen, monitor): a handler is told when the connection
opens, each message, each message refused as over the tool's bound, and why it closed.  A handler
may pause a connection (its messages stay in the socket, unread) while it waits for an answer on
another one, and resume it.

When a connection is asked to finish (the listening time is over), it closes at once unless a
message is half-way through arriving; that one gets a grace period, and if it does not complete,
the connection closes saying that it was cut short.
"""

from __future__ import annotations

import heapq
import itertools
import selectors
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from .message import ERROR, METHOD_RETURN, REPLY_SERIAL, MessageError, OverBound
from .wire import Handshake, PeerClosed, Received, Wire, WireError, cut_short

#: Bytes waiting to be written to one peer before it is taken not to read them.
MAX_OUTGOING = 16 << 20

Callback = Callable[[], None]
#: How a call learns its outcome: (the reply, None) or (None, what went wrong).
ReplyCallback = Callable[["Received | None", "str | None"], None]


class Handler(Protocol):
    def opened(self, connection: Connection) -> None: ...
    def received(self, connection: Connection, received: Received) -> None: ...
    def refused(self, connection: Connection, error: OverBound) -> None: ...
    def closed(self, connection: Connection, problem: str | None) -> None: ...


class Loop:
    """The selector, the connections it serves, and timers."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.connections: set[Connection] = set()
        self._timers: list[tuple[float, int, Callback, bool]] = []
        self._order = itertools.count()
        self._waiting = 0  # timers that keep the loop running

    def at(self, when: float, callback: Callback, keep_running: bool = False) -> None:
        """Run ``callback`` at ``when`` (``time.monotonic``), if the loop still runs then; with
        ``keep_running``, the loop runs until then even with no connection left (a connection's
        own timers, such as a call's deadline, do not keep it running)."""
        heapq.heappush(self._timers, (when, next(self._order), callback, keep_running))
        self._waiting += keep_running

    def run(self, until: float, done: Callable[[], bool] | None = None) -> bool:
        """Serve every connection until none is left and no timer keeps the loop running, or
        until ``until``, or (``done``) until what a caller waits for has happened; whether it
        ended before ``until``.  ``done`` lets a caller that works one blocking step at a time
        (the probe: a call, then what became of QEMU) serve every connection while it waits."""
        while self.connections or self._waiting:
            now = time.monotonic()
            while self._timers and self._timers[0][0] <= now:
                _, _, callback, keep_running = heapq.heappop(self._timers)
                self._waiting -= keep_running
                callback()
            if done is not None and done():
                return True
            if not (self.connections or self._waiting):
                break
            if now >= until:
                return False
            wake = min(until, self._timers[0][0]) if self._timers else until
            for key, events in self.selector.select(max(0.0, wake - time.monotonic())):
                connection: Connection = key.data
                if events & selectors.EVENT_WRITE:
                    connection.writable()
                if events & selectors.EVENT_READ and connection.state != "closed":
                    connection.readable()
        return True

    def close_all(self) -> None:
        for connection in list(self.connections):
            connection.close(None)
        self._timers.clear()
        self._waiting = 0
        self.selector.close()


class Connection:
    """One socket served by the loop.  ``handshake``: the client side of SASL is still to be done
    (before ``handshake_deadline``).  ``owned``: closing the connection closes its wire (not so
    for the bus connection, which the introspection stage opened and closes)."""

    def __init__(
        self,
        loop: Loop,
        wire: Wire,
        label: str,
        handler: Handler,
        handshake: Handshake | None = None,
        handshake_deadline: float | None = None,
        owned: bool = True,
    ) -> None:
        self.loop = loop
        self.wire = wire
        self.label = label
        self.handler = handler
        self.handshake = handshake
        self.owned = owned
        self.state = "handshake" if handshake is not None else "open"
        self.paused = False
        self.problem: str | None = None
        #: The peer closed the connection between two messages (``problem`` says so too).
        self.closed_by_peer = False
        self._out: deque[tuple[bytes, Any, list[socket.socket]]] = deque()
        self._out_bytes = 0
        self._calls: dict[int, ReplyCallback] = {}  # serial → who waits for the reply
        self._events = 0
        #: Why the connection is finishing ("listening ended"), once it is.
        self._finishing: str | None = None
        wire.sock.setblocking(False)
        loop.connections.add(self)
        if handshake is not None:
            self._queue(handshake.outgoing(), None, [])
            if handshake_deadline is not None:
                allowed = handshake_deadline - handshake.started
                loop.at(handshake_deadline, lambda: self._handshake_expired(allowed))
        self._interest()

    # --- sending --------------------------------------------------------------------------

    def send(self, message: Any, handing_over: list[socket.socket] | None = None) -> int:
        """Queue ``message`` and write what the socket takes now; its serial.  ``handing_over``
        are sockets whose descriptors the message passes: they are closed once it is written."""
        serial, data, descriptors = self.wire.serialise(message)
        self._queue(data, descriptors if len(descriptors) else None, handing_over or [])
        return serial

    def call(self, message: Any, timeout: float, callback: ReplyCallback, **send: Any) -> int:
        """Send a method call; ``callback`` gets its reply, or what went wrong (no reply within
        ``timeout``, the connection closed)."""
        serial = self.send(message, **send)
        self._calls[serial] = callback
        self.loop.at(time.monotonic() + timeout, lambda: self._call_expired(serial, timeout))
        return serial

    def _call_expired(self, serial: int, timeout: float) -> None:
        callback = self._calls.pop(serial, None)
        if callback is not None:
            callback(None, f"no reply within {timeout:g} s")
            if self._finished():
                self.close(None)

    def _queue(self, data: bytes, descriptors: Any, handing_over: list[socket.socket]) -> None:
        if self.state == "closed":
            for sock in handing_over:
                sock.close()
            return
        self._out.append((data, descriptors, handing_over))
        self._out_bytes += len(data)
        if self._out_bytes > MAX_OUTGOING:
            self.close(f"{self.wire.peer} does not read what the tool sends ({self._out_bytes} bytes wait)")
            return
        self.writable()

    def writable(self) -> None:
        sock = self.wire.sock
        while self._out and self.state != "closed":
            data, descriptors, handing_over = self._out[0]
            try:
                if descriptors is not None:
                    sent = sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, descriptors)])
                else:
                    sent = sock.send(data)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as error:
                self.close(f"cannot write to {self.wire.peer}: {error.strerror or error}")
                return
            self._out_bytes -= sent
            if descriptors is not None:
                for handed in handing_over:  # the peer has its copies now
                    handed.close()
                handing_over = []
            if sent < len(data):
                self._out[0] = (data[sent:], None, handing_over)
                break
            self._out.popleft()
        if self._finished():
            self.close(None)
            return
        self._interest()

    # --- receiving ------------------------------------------------------------------------

    def readable(self) -> None:
        if self.state == "handshake":
            self._handshake_step()
            return
        try:
            self.wire.reader.read(self.wire.sock)
        except (BlockingIOError, InterruptedError):
            return
        except WireError as error:
            self._drain()
            self.closed_by_peer = isinstance(error, PeerClosed)
            self.close(str(error))
            return
        except OSError as error:
            self.close(f"the connection broke: {error.strerror or error}")
            return
        self._drain()

    def _handshake_step(self) -> None:
        assert self.handshake is not None
        try:
            data = self.wire.sock.recv(1024)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self.close(f"the handshake failed: {error.strerror or error}")
            return
        if not data:
            self.close(f"{self.wire.peer} closed the connection during the handshake ({self.handshake.progress()})")
            return
        try:
            self.handshake.feed(data)
        except WireError as error:
            self.close(str(error))
            return
        outgoing = self.handshake.outgoing()
        if outgoing:
            self._queue(outgoing, None, [])
        if self.handshake.done and self.state == "handshake":
            self.state = "open"
            self.handler.opened(self)
            if self._finished():
                self.close(None)

    def _handshake_expired(self, allowed: float) -> None:
        if self.state == "handshake" and self.handshake is not None:
            self.close(f"{self.handshake.progress()} within {allowed:.3g} s")

    def _drain(self) -> None:
        while not self.paused and self.state == "open":
            try:
                received = self.wire.reader.take()
            except OverBound as error:
                waiting = error.kind in (METHOD_RETURN, ERROR) and error.fields.get(REPLY_SERIAL) in self._calls
                if waiting:
                    self._calls.pop(error.fields[REPLY_SERIAL])(None, f"its reply was refused: {error}")
                else:
                    self.handler.refused(self, error)
                continue
            except MessageError as error:
                self.close(f"{self.wire.peer} sent a malformed message: {error}")
                return
            except WireError as error:  # past the run's bound on what it holds at once
                self.close(str(error))
                return
            if received is None:
                break
            try:
                self._dispatch(received)
            finally:
                received.close()
        if self._finished():
            self.close(None)

    def _dispatch(self, received: Received) -> None:
        message = received.message
        if message.kind in (METHOD_RETURN, ERROR):
            callback = self._calls.pop(message.reply_serial or 0, None)
            if callback is not None:
                callback(received, None)
                if self._finished():
                    self.close(None)
                return
        self.handler.received(self, received)

    # --- flow ------------------------------------------------------------------------------

    def pause(self) -> None:
        """Stop reading: what the peer sends waits in the socket until `resume`."""
        self.paused = True
        self._interest()

    def resume(self) -> None:
        if self.state == "closed":
            return
        self.paused = False
        self._interest()
        self._drain()

    def finish(self, grace: float, reason: str) -> None:
        """Close once what has begun to arrive has arrived, what waits to be written is written and
        the calls made have their replies; at ``grace`` at the latest, saying what was cut short
        when ``reason`` ("listening ended").  A handshake still going has until its own deadline."""
        if self.state == "closed":
            return
        self._finishing = reason
        if self.state == "handshake":
            return
        self.loop.at(grace, self._grace_over)
        self._drain()
        if self._finished():
            self.close(None)

    def _finished(self) -> bool:
        return (
            self._finishing is not None
            and self.state != "closed"
            and not self.paused
            and not self._out
            and not self._calls
            and self.wire.reader.partial() is None
        )

    def _grace_over(self) -> None:
        if self.state == "closed":
            return
        partial = self.wire.reader.partial()
        self.close(f"{cut_short(partial)} when {self._finishing}" if partial is not None else None)

    # --- the end ---------------------------------------------------------------------------

    def close(self, problem: str | None) -> None:
        """Close the connection (``problem``: why, when it was not the tool's choice).  Calls still
        waiting learn it; the handler learns it last."""
        if self.state == "closed":
            return
        self.state = "closed"
        self.problem = problem
        if self._events:
            self.loop.selector.unregister(self.wire.sock)
            self._events = 0
        self.loop.connections.discard(self)
        for _, _, handing_over in self._out:
            for sock in handing_over:
                sock.close()
        self._out.clear()
        calls, self._calls = self._calls, {}
        ended = f"when {self._finishing}" if self._finishing else "when the connection was closed"
        for callback in calls.values():
            callback(None, problem or f"no reply {ended}")
        if self.owned:
            self.wire.close()
        else:
            self.wire.sock.setblocking(True)
        self.handler.closed(self, problem)

    def _interest(self) -> None:
        if self.state == "closed":
            return
        events = 0 if self.paused else selectors.EVENT_READ
        if self._out:
            events |= selectors.EVENT_WRITE
        if events == self._events:
            return
        if not self._events:
            self.loop.selector.register(self.wire.sock, events, self)
        elif not events:
            self.loop.selector.unregister(self.wire.sock)
        else:
            self.loop.selector.modify(self.wire.sock, events, self)
        self._events = events

"""D-Bus on a raw socket, every step bounded: the transport of ``qemu-dbus conform``.

jeepney's connection classes wait without limit for a bus that authenticates and then never answers
``Hello``, and they assume a bus: a display listener's socket (handed to QEMU with
``RegisterListener``) is a peer-to-peer connection on which QEMU is the authentication *server*.
So the tool owns its sockets, and uses jeepney only for what it sends (its authenticator's state
machine and its serialiser).  What it receives is read here and in `message`:

* `Reader` cuts a byte stream into messages: a message's size is read from its fixed header and
  checked against the specification's limit before a byte of its body is buffered; a large message
  is read straight into a buffer of its own size (no copy, no over-read); every message is then
  validated (`message.read_message`) before anything decodes it.  File descriptors that arrive
  (``SCM_RIGHTS``) belong to the message that claims them and are closed with it; a malformed
  message closes every descriptor the connection holds.
* `Wire` is one connection, used blocking (each read and write waits at most until a deadline) by
  the introspection stage, or non-blocking by the event loop (`loop`) that serves listeners and
  monitors.  A call waits for its reply and drops what arrives meanwhile (closing its descriptors):
  nothing is queued, so a peer cannot fill the tool's memory while it waits.
* `Handshake` is the client side of the SASL handshake, step by step, so that one loop can hold
  many handshakes at once and say how far each got and how long each step took.

Everything here is imported lazily by the callers, so ``qemu-dbus`` starts without jeepney.
"""

from __future__ import annotations

import array
import contextlib
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from jeepney import HeaderFields, MessageFlag
from jeepney.auth import BEGIN, AuthenticationError, Authenticator
from jeepney.bus_messages import message_bus
from jeepney.low_level import Endianness, Header, MessageType
from jeepney.low_level import Message as Outgoing

from .address import AddressError, parse_address
from .message import (
    ERROR,
    ERROR_NAME,
    METHOD_RETURN,
    NO_REPLY_EXPECTED,
    REPLY_SERIAL,
    SENDER,
    Message,
    MessageError,
    OverBound,
    message_size,
    read_message,
)

#: File descriptors accepted with one read (``SCM_RIGHTS``); the kernel drops the rest
#: (``MSG_CTRUNC``), and the connection is then given up.
MAX_FDS_PER_READ = 64
#: Descriptors held that no complete message has claimed yet.
MAX_UNCLAIMED_FDS = 2 * MAX_FDS_PER_READ
_READ_SIZE = 1 << 16
#: A message larger than this is read into a buffer of its own, straight from the socket.
_LARGE = 1 << 20

__all__ = [
    "AddressError",
    "Budget",
    "Handshake",
    "PeerClosed",
    "Reader",
    "Received",
    "Wire",
    "WireError",
    "authenticate_client",
    "connect_bus",
    "parse_address",
]


class WireError(Exception):
    """The connection cannot be used any more: closed, broken, or data that is not D-Bus."""


class PeerClosed(WireError):
    """The peer closed the connection between two messages."""


def remaining(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


#: Bytes of messages a run holds at once over all its connections (see `Budget`): one message of
#: the specification's maximum size (128 MiB) and then some; peak memory stays well under 512 MiB.
MAX_HELD = 192 << 20


class Budget:
    """The bytes of messages that the connections of one run hold at once, while they arrive: a
    peer may announce 128 MiB on each of a thousand listener connections, and the memory of the run
    must not depend on that."""

    def __init__(self, limit: int = MAX_HELD) -> None:
        self.limit = limit
        self.held = 0

    def change(self, delta: int, peer: str) -> None:
        if delta > 0 and self.held + delta > self.limit:
            raise WireError(
                f"{peer} sent more than the tool holds at once ({self.held + delta} bytes of messages on their "
                f"way over all connections; the bound is {self.limit})"
            )
        self.held += delta


@dataclass
class Received:
    """One validated message and the file descriptors that came with it (owned here: `close`)."""

    message: Message
    fds: list[int] = field(default_factory=list)

    def keep(self, index: int) -> int:
        """Take descriptor ``index`` (an ``h`` value of the body) out of the message: whoever
        takes it owns it from now on, and closes it."""
        fd = self.fds[index]
        self.fds = self.fds[:index] + self.fds[index + 1 :]
        return fd

    def close(self) -> None:
        for fd in self.fds:
            _close(fd)
        self.fds = []


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


class Reader:
    """The messages in one connection's byte stream, and the descriptors that came with them.
    ``peer`` names the other side in errors."""

    def __init__(self, peer: str = "the peer", budget: Budget | None = None) -> None:
        self.peer = peer
        self.budget = budget or Budget()
        self._held = 0  # what this reader counts in the budget
        self._buffer = bytearray()
        self._fds: list[int] = []
        #: A large message being read into its own buffer, and how much of it has arrived.
        self._large: bytearray | None = None
        self._filled = 0

    # --- reading from a socket --------------------------------------------------------------

    def read(self, sock: socket.socket) -> None:
        """One read from ``sock``, blocking or not as the socket is set (`BlockingIOError`,
        `socket.timeout` pass through).  Raises `WireError` when the peer has closed the
        connection or the read fails."""
        space = socket.CMSG_SPACE(MAX_FDS_PER_READ * 4)
        if self._large is not None:
            view = memoryview(self._large)[self._filled :]
            try:
                count, ancillary, flags, _ = sock.recvmsg_into([view], space)
            finally:
                view.release()
            self._filled += count
        else:
            data, ancillary, flags, _ = sock.recvmsg(_READ_SIZE, space)
            count = len(data)
            self._buffer += data
            self._account()
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                usable = len(payload) - len(payload) % 4
                self._fds.extend(array.array("i", payload[:usable]))
        if flags & getattr(socket, "MSG_CTRUNC", 0):
            raise WireError(f"{self.peer} passed more than {MAX_FDS_PER_READ} file descriptors at once")
        if count == 0:
            partial = self.partial()
            if partial is not None:
                raise WireError(f"{self.peer} closed the connection: {cut_short(partial)}")
            raise PeerClosed(f"{self.peer} closed the connection")
        if len(self._fds) > MAX_UNCLAIMED_FDS:
            raise WireError(f"{self.peer} passed more than {MAX_UNCLAIMED_FDS} file descriptors that no message claims")

    def feed(self, data: bytes, fds: tuple[int, ...] = ()) -> None:
        """Bytes, and descriptors that came with them (owned here from now on), from elsewhere
        than a socket: what `read` does after reading, for the tests and the fuzz test."""
        self._fds.extend(fds)
        if self._large is not None:
            taken = min(len(data), len(self._large) - self._filled)
            self._large[self._filled : self._filled + taken] = data[:taken]
            self._filled += taken
            data = data[taken:]
        self._buffer += data  # after a large message: the next one's first bytes
        self._account()

    # --- messages ------------------------------------------------------------------------

    def take(self) -> Received | None:
        """The next complete message, validated, or None while it has not fully arrived.  Raises
        `MessageError` for a malformed one (every descriptor held is closed: the connection cannot
        go on), `OverBound` for a legal one over the tool's bound (its descriptors are closed, the
        connection can go on)."""
        if self._large is not None:
            if self._filled < len(self._large):
                return None
            raw: bytes | bytearray = self._large
            self._large, self._filled = None, 0
            self._account()
            return self._message(raw)
        if len(self._buffer) < 16:
            return None
        try:
            size = message_size(self._buffer)
        except MessageError:
            self.close()
            raise
        if len(self._buffer) >= size:
            raw = bytes(self._buffer[:size])
            del self._buffer[:size]
            self._account()
            return self._message(raw)
        if size > _LARGE:
            # Read the rest straight into a buffer of the message's size: no over-read, no copy.
            # The whole size counts from now on (the buffer is allocated, and filled, at once).
            try:
                self.budget.change(size - len(self._buffer), self.peer)
            except WireError:
                self.close()
                raise
            self._held += size - len(self._buffer)
            self._large = bytearray(size)
            self._large[: len(self._buffer)] = self._buffer
            self._filled = len(self._buffer)
            self._buffer = bytearray()
        return None

    def _message(self, raw: bytes | bytearray) -> Received:
        try:
            message = read_message(raw, len(self._fds))
        except OverBound as error:
            claimed = min(error.fds, len(self._fds))
            for fd in self._fds[:claimed]:
                _close(fd)
            del self._fds[:claimed]
            raise
        except MessageError:
            self.close()
            raise
        fds, self._fds = self._fds[: message.fds], self._fds[message.fds :]
        return Received(message, fds)

    def partial(self) -> tuple[int, int | None] | None:
        """(bytes arrived, bytes announced or None when the header is not complete) of a message
        that has begun to arrive; None between messages."""
        if self._large is not None:
            return self._filled, len(self._large)
        if not self._buffer:
            return None
        if len(self._buffer) < 16:
            return len(self._buffer), None
        try:
            return len(self._buffer), message_size(self._buffer)
        except MessageError:
            return len(self._buffer), None

    def close(self) -> None:
        """Close every descriptor held and forget what was buffered."""
        for fd in self._fds:
            _close(fd)
        self._fds = []
        self._buffer = bytearray()
        self._large, self._filled = None, 0
        self._account()

    def _account(self) -> None:
        """Bring this reader's share of the budget up to date (`WireError` when it would grow
        past the bound: the connection is then given up)."""
        held = len(self._buffer) + (len(self._large) if self._large is not None else 0)
        if held != self._held:
            self.budget.change(held - self._held, self.peer)
            self._held = held


def _progress(arrived: int, announced: int | None) -> str:
    if announced is None:
        return f"{arrived} bytes of a message header"
    return f"{arrived} of the {announced} bytes it announced"


def cut_short(partial: tuple[int, int | None]) -> str:
    """A message that stopped arriving, in words."""
    return f"a message was cut short: {_progress(*partial)} had arrived"


class Wire:
    """One D-Bus connection on a connected, authenticated stream socket.  Used by one thread."""

    def __init__(self, sock: socket.socket, peer: str = "the peer", budget: Budget | None = None) -> None:
        self.sock = sock
        self.peer = peer
        self.reader = Reader(peer, budget)
        self._serial = 0
        self.unique_name: str | None = None
        #: Messages that arrived while a call waited for its reply, dropped.
        self.dropped = 0
        self.closed = False
        #: Why the connection was given up (a malformed message, a broken socket): every later
        #: call fails at once with this.
        self.broken: str | None = None

    # --- sending ---------------------------------------------------------------------------

    def serialise(self, message: Outgoing) -> tuple[int, bytes, array.array[int]]:
        """(serial, bytes, descriptors to pass) of ``message``, numbered on this connection.  The
        values of its ``h`` args are file descriptors of this process."""
        self._serial += 1
        descriptors = array.array("i")
        data = message.serialise(serial=self._serial, fds=descriptors)
        return self._serial, data, descriptors

    def send(self, message: Outgoing, deadline: float) -> int:
        """Send ``message``, waiting at most until ``deadline``; its serial."""
        if self.broken is not None:
            raise WireError(self.broken)
        serial, data, descriptors = self.serialise(message)
        try:
            self.sock.settimeout(remaining(deadline) or 1e-3)
            if descriptors:
                sent = self.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, descriptors)])
                data = data[sent:]
            self.sock.sendall(data)
        except socket.timeout as error:  # TimeoutError itself from Python 3.10 on
            raise TimeoutError("the peer does not read what is sent to it") from error
        except OSError as error:
            self.broken = f"cannot send: {error.strerror or error}"
            raise WireError(self.broken) from error
        return serial

    # --- receiving -------------------------------------------------------------------------

    def receive(self, deadline: float) -> Received:
        """The next message, waiting at most until ``deadline`` (`TimeoutError`).  Raises
        `WireError` for a broken connection or a malformed message, `OverBound` for a legal
        message over the tool's bound (skipped: the connection goes on)."""
        if self.broken is not None:
            raise WireError(self.broken)
        while True:
            try:
                complete = self.reader.take()
            except OverBound:
                raise
            except MessageError as error:
                self.broken = f"{self.peer} sent a malformed message: {error}"
                raise WireError(self.broken) from error
            except WireError as error:
                self.broken = str(error)
                raise
            if complete is not None:
                return complete
            self._read(deadline)

    def _read(self, deadline: float) -> None:
        wait = remaining(deadline)
        if wait <= 0:
            raise TimeoutError
        self.sock.settimeout(wait)
        try:
            self.reader.read(self.sock)
        except socket.timeout as error:  # on Python 3.9 not a TimeoutError, which callers catch
            raise TimeoutError from error
        except WireError as error:
            self.broken = str(error)
            raise
        except OSError as error:
            self.broken = f"the connection broke: {error.strerror or error}"
            raise WireError(self.broken) from error

    def call(self, message: Outgoing, deadline: float) -> Received:
        """Send a method call and wait for its reply (a method return or an error).  What arrives
        meanwhile is dropped (descriptors closed), so nothing a peer sends piles up.  Raises
        `TimeoutError` (saying so when a reply had begun to arrive), `WireError`."""
        serial = self.send(message, deadline)
        while True:
            try:
                received = self.receive(deadline)
            except OverBound as error:
                if error.fields.get(REPLY_SERIAL) == serial and error.kind in (METHOD_RETURN, ERROR):
                    raise WireError(f"its reply was refused: {error}") from error
                self.dropped += 1
                continue
            except TimeoutError as error:
                partial = self.reader.partial()
                if partial is not None:
                    raise TimeoutError(cut_short(partial)) from error
                raise
            reply = received.message
            if reply.reply_serial == serial and reply.kind in (METHOD_RETURN, ERROR):
                return received
            received.close()
            self.dropped += 1

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.reader.close()
        self.sock.close()

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- replies the tool sends -----------------------------------------------------------------


def _reply_header(kind: MessageType, call: Message, signature: str | None) -> Header:
    header = Header(Endianness.little, kind, MessageFlag(0), 1, 0, -1, {})
    header.fields[HeaderFields.reply_serial] = call.serial
    sender = call.field(SENDER)
    if sender is not None:
        header.fields[HeaderFields.destination] = sender
    if signature:
        header.fields[HeaderFields.signature] = signature
    return header


def method_return(call: Message, signature: str | None = None, body: tuple[Any, ...] = ()) -> Outgoing:
    """The reply to ``call`` (a message received), for jeepney to write."""
    return Outgoing(_reply_header(MessageType.method_return, call, signature), body)


def error_reply(call: Message, name: str, text: str) -> Outgoing:
    """An error reply to ``call``, with its message."""
    header = _reply_header(MessageType.error, call, "s")
    header.fields[HeaderFields.error_name] = name
    return Outgoing(header, (text,))


#: An error reply's text longer than this is not decoded, only measured.
MAX_ERROR_TEXT = 1 << 16


def error_text(reply: Message) -> str | None:
    """``NAME: message`` of an error reply (the message cut to a line), or None when the reply is
    not an error."""
    if reply.kind != ERROR:
        return None
    name = reply.field(ERROR_NAME) or "an error"
    if not reply.signature.startswith("s"):
        return name
    if reply.body_length > MAX_ERROR_TEXT:
        return f"{name} (with a message of {reply.body_length} bytes, not shown)"
    text = str(reply.body[0])
    return f"{name}: {text[:200]}{'...' if len(text) > 200 else ''}"


def no_reply_expected(message: Message) -> bool:
    return bool(message.flags & NO_REPLY_EXPECTED)


# --- authentication ---------------------------------------------------------------------------


class Handshake:
    """The client side of the SASL handshake (EXTERNAL, then fd passing), as every D-Bus client
    does it, on a bus socket and on a listener's peer-to-peer socket alike (there QEMU is the
    server).  Fed what the server sends, it says what to send next; it remembers how long each of
    the server's answers took, so that a slow server is told from a silent one."""

    #: What the server answers, step by step.
    STEPS = ("AUTH", "NEGOTIATE_UNIX_FD")
    #: How much of a bad answer an error quotes.
    QUOTED = 40

    def __init__(self, enable_fds: bool = True) -> None:
        self._authenticator = Authenticator(enable_fds=enable_fds, inc_null_byte=True)
        self.started = time.monotonic()
        #: Seconds after the start at which the server answered each step.
        self.answers: list[float] = []
        self.received = 0

    @property
    def done(self) -> bool:
        return bool(self._authenticator.authenticated)

    def outgoing(self) -> bytes:
        """What to send now (``BEGIN`` once the handshake is complete)."""
        if self.done:
            return bytes(BEGIN)
        return bytes(self._authenticator.data_to_send() or b"")

    def feed(self, data: bytes) -> None:
        """The server's answer; raises `WireError` (in one short line) when it is not one."""
        self.received += len(data)
        before = self._authenticator.state
        try:
            self._authenticator.feed(data)
        except AuthenticationError as error:
            reason = "an unexpected answer" if error.msg == "Authentication failed" else error.msg.lower()
            raise WireError(f"authentication failed ({reason}): {_quoted(bytes(error.data), self.QUOTED)}") from None
        if self._authenticator.state is not before:
            self.answers.append(time.monotonic() - self.started)

    def progress(self) -> str:
        """How far the handshake got, in words: what was answered and when, what was not."""
        answered = [f"{step} after {when:.1f} s" for step, when in zip(self.STEPS, self.answers)]
        waiting = self.STEPS[len(self.answers)] if len(self.answers) < len(self.STEPS) else "BEGIN"
        if not answered:
            if self.received:
                return f"the server sent {self.received} bytes but no complete answer to AUTH"
            return "no answer to AUTH"
        return f"the server answered {', '.join(answered)}, then not {waiting}"


def _quoted(data: bytes, limit: int) -> str:
    """The first ``limit`` bytes of ``data``, escaped, and its length when there is more."""
    more = f"... ({len(data)} bytes)" if len(data) > limit else ""
    return f"{data[:limit]!r}{more}"


def authenticate_client(sock: socket.socket, deadline: float, enable_fds: bool = True) -> None:
    """The client side of the SASL handshake, blocking until ``deadline``.  Raises
    `TimeoutError` (saying how far the handshake got), `WireError`."""
    handshake = Handshake(enable_fds)
    try:
        while not handshake.done:
            outgoing = handshake.outgoing()
            sock.settimeout(remaining(deadline) or 1e-3)
            if outgoing:
                sock.sendall(outgoing)
            reply = sock.recv(1024)
            if not reply:
                raise WireError("the peer closed the connection during authentication")
            handshake.feed(reply)
        sock.settimeout(remaining(deadline) or 1e-3)
        sock.sendall(handshake.outgoing())
    except socket.timeout as error:
        raise TimeoutError(handshake.progress()) from error
    except OSError as error:
        raise WireError(f"authentication failed: {error.strerror or error}") from error


def connect_bus(address: str, deadline: float, budget: Budget | None = None) -> Wire:
    """A connection to the bus at ``address``: connected, authenticated and said ``Hello`` to,
    all before ``deadline`` (`TimeoutError` otherwise); its messages count in ``budget``.  Raises
    `AddressError`, `WireError`."""
    target = parse_address(address)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    wire = Wire(sock, "the bus", budget)
    try:
        sock.settimeout(remaining(deadline) or 1e-3)
        try:
            sock.connect(target)
        except socket.timeout as error:
            raise TimeoutError from error
        except OSError as error:
            raise WireError(error.strerror or str(error)) from error
        authenticate_client(sock, deadline)
        received = wire.call(message_bus.Hello(), deadline)
        received.close()  # a bus has no descriptors to pass with its answer
        reply = received.message
        if reply.kind != METHOD_RETURN or reply.signature != "s":
            raise WireError(f"the bus refused Hello{': ' + text if (text := error_text(reply)) else ''}")
        wire.unique_name = str(reply.body[0])
        return wire
    except BaseException:
        wire.close()  # the socket, and any descriptor the bus passed
        raise

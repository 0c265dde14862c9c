"""D-Bus on a raw socket, every step under a deadline: the transport of ``qemu-dbus conform``.

jeepney's connection classes wait without limit for a bus that authenticates and then never answers
``Hello``, and they assume a bus: a display listener's socket (handed to QEMU with
``RegisterListener``) is a peer-to-peer connection on which QEMU is the authentication *server*.
So the tool speaks the wire protocol itself with jeepney's low-level pieces (its authenticator,
message parser and serialiser) and owns the socket: every read waits at most until a deadline,
messages are bounded in size before they are buffered, and every file descriptor that arrives
(``SCM_RIGHTS``) is closed once its message is handled, whoever sent it.

Everything here is imported lazily by the callers, so ``qemu-dbus`` starts without jeepney.
"""

from __future__ import annotations

import array
import contextlib
import os
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from jeepney import HeaderFields, Message, MessageFlag, MessageType
from jeepney.auth import BEGIN, AuthenticationError, Authenticator
from jeepney.bus_messages import message_bus
from jeepney.low_level import calc_msg_size

from .address import AddressError, parse_address

#: The D-Bus specification's limit on one message (2^27 bytes): a peer that announces more is
#: broken or hostile, and the tool refuses it before buffering a byte of it.
MAX_MESSAGE = 1 << 27
#: File descriptors accepted with one read; the kernel drops the rest (MSG_CTRUNC), and the
#: connection is then given up.
MAX_FDS_PER_READ = 64
_READ_SIZE = 1 << 16


__all__ = ["AddressError", "Received", "Wire", "WireError", "authenticate_client", "connect_bus", "parse_address"]


class WireError(Exception):
    """The connection cannot be used any more: closed, broken, or data that is not D-Bus."""


def remaining(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


@dataclass
class Received:
    """One message and the file descriptors that came with it (owned here: `close` them)."""

    message: Any
    fds: list[int] = field(default_factory=list)

    def close(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = []


class Wire:
    """One D-Bus connection on a connected, authenticated stream socket.  Not thread-safe: one
    thread uses a wire."""

    def __init__(self, sock: socket.socket, max_message: int = MAX_MESSAGE) -> None:
        self.sock = sock
        self.max_message = max_message
        self._buffer = bytearray()
        self._fds: list[int] = []
        self._serial = 0
        self.unique_name: str | None = None
        self._early: list[Received] = []  # messages read while waiting for a reply

    # --- sending ---------------------------------------------------------------------------

    def send(self, message: Any, deadline: float) -> int:
        """Send ``message``; its serial.  The values of its ``h`` args are file descriptors of this
        process, passed along with it (``SCM_RIGHTS``)."""
        self._serial += 1
        descriptors = array.array("i")
        data = message.serialise(serial=self._serial, fds=descriptors)
        try:
            self.sock.settimeout(remaining(deadline) or 1e-3)
            if descriptors:
                sent = self.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, descriptors)])
                data = data[sent:]
            self.sock.sendall(data)
        except socket.timeout as error:  # TimeoutError itself from Python 3.10 on
            raise TimeoutError("the peer does not read what is sent to it") from error
        except OSError as error:
            raise WireError(f"cannot send: {error.strerror or error}") from error
        return self._serial

    # --- receiving -------------------------------------------------------------------------

    def receive(self, deadline: float) -> Received:
        """The next message, waiting at most until ``deadline`` (`TimeoutError`)."""
        if self._early:
            return self._early.pop(0)
        while True:
            complete = self._take_message()
            if complete is not None:
                return complete
            self._read(deadline)

    def _take_message(self) -> Received | None:
        if len(self._buffer) < 16:
            return None
        try:
            size = calc_msg_size(bytes(self._buffer[:16]))
        except (KeyError, struct.error, ValueError) as error:
            raise WireError("the peer sent data that is not a D-Bus message") from error
        if size > self.max_message:
            raise WireError(f"the peer announced a message of {size} bytes, over the limit of {self.max_message}")
        if len(self._buffer) < size:
            return None
        raw = bytes(self._buffer[:size])
        del self._buffer[:size]
        try:
            wanted = _unix_fds(raw)
            fds, self._fds = self._fds[:wanted], self._fds[wanted:]
            message = Message.from_buffer(raw, fds=fds)
        except (ValueError, KeyError, IndexError, TypeError, struct.error, RecursionError, UnicodeDecodeError) as error:
            for fd in self._fds:
                _close(fd)
            self._fds = []
            raise WireError(f"the peer sent a malformed message: {error}") from error
        return Received(message, fds)

    def _read(self, deadline: float) -> None:
        wait = remaining(deadline)
        if wait <= 0:
            raise TimeoutError
        self.sock.settimeout(wait)
        try:
            data, ancillary, flags, _ = self.sock.recvmsg(_READ_SIZE, socket.CMSG_SPACE(MAX_FDS_PER_READ * 4))
        except socket.timeout as error:  # on Python 3.9 not a TimeoutError, which callers catch
            raise TimeoutError from error
        except OSError as error:
            raise WireError(f"the connection broke: {error.strerror or error}") from error
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                usable = len(payload) - len(payload) % 4
                self._fds.extend(array.array("i", payload[:usable]))
        if flags & getattr(socket, "MSG_CTRUNC", 0):
            raise WireError(f"the peer passed more than {MAX_FDS_PER_READ} file descriptors at once")
        if not data:
            raise WireError("the peer closed the connection")
        self._buffer += data
        if len(self._fds) > 4 * MAX_FDS_PER_READ:
            raise WireError("the peer passed file descriptors that no message claims")

    def call(self, message: Any, deadline: float) -> Received:
        """Send a method call and wait for its reply (a method return or an error); the messages
        that arrive meanwhile are kept for `receive`."""
        serial = self.send(message, deadline)
        while True:
            while (complete := self._take_message()) is None:
                self._read(deadline)
            if complete.message.header.fields.get(HeaderFields.reply_serial) == serial:
                return complete
            if len(self._early) >= 1024:
                complete.close()  # a peer flooding us while we wait: drop, bounded
            else:
                self._early.append(complete)

    def close(self) -> None:
        for received in self._early:
            received.close()
        self._early = []
        for fd in self._fds:
            _close(fd)
        self._fds = []
        self.sock.close()

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def error_text(reply: Message) -> str | None:
    """``NAME: message`` of an error reply, or None when the reply is not an error."""
    if reply.header.message_type is not MessageType.error:
        return None
    name = reply.header.fields.get(HeaderFields.error_name, "an error")
    detail = f": {reply.body[0]}" if reply.body and isinstance(reply.body[0], str) else ""
    return f"{name}{detail}"


def _unix_fds(raw: bytes) -> int:
    from jeepney.low_level import Header

    header, _ = Header.from_buffer(raw)
    count = header.fields.get(HeaderFields.unix_fds, 0)
    return count if isinstance(count, int) else 0


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


# --- authentication ---------------------------------------------------------------------------


def authenticate_client(sock: socket.socket, deadline: float, enable_fds: bool = True) -> None:
    """The client side of the SASL handshake (EXTERNAL, then fd passing), as every D-Bus client
    does it, on a bus socket and on a listener's peer-to-peer socket alike (there QEMU is the
    server).  Raises `TimeoutError`, `WireError`."""
    authenticator = Authenticator(enable_fds=enable_fds, inc_null_byte=True)
    try:
        for line in authenticator:
            sock.settimeout(remaining(deadline) or 1e-3)
            sock.sendall(line)
            reply = sock.recv(1024)
            if not reply:
                raise WireError("the peer closed the connection during authentication")
            authenticator.feed(reply)
        sock.settimeout(remaining(deadline) or 1e-3)
        sock.sendall(BEGIN)
    except AuthenticationError as error:
        raise WireError(f"authentication failed: {error}") from error
    except socket.timeout as error:
        raise TimeoutError from error
    except OSError as error:
        raise WireError(f"authentication failed: {error.strerror or error}") from error


def connect_bus(address: str, deadline: float) -> Wire:
    """A connection to the bus at ``address``: connected, authenticated and said ``Hello`` to,
    all before ``deadline`` (`TimeoutError` otherwise).  Raises `AddressError`, `WireError`."""
    target = parse_address(address)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(remaining(deadline) or 1e-3)
        try:
            sock.connect(target)
        except socket.timeout as error:
            raise TimeoutError from error
        except OSError as error:
            raise WireError(error.strerror or str(error)) from error
        authenticate_client(sock, deadline)
        wire = Wire(sock)
        reply = wire.call(message_bus.Hello(), deadline).message
        if reply.header.message_type is not MessageType.method_return or not reply.body:
            raise WireError("the bus refused Hello")
        wire.unique_name = str(reply.body[0])
        return wire
    except BaseException:
        sock.close()
        raise


def no_reply_expected(message: Any) -> bool:
    return bool(message.header.flags & MessageFlag.no_reply_expected)

"""Every kind of file descriptor a peer can pass for an ``h`` argument.

D-Bus passes descriptors with ``SCM_RIGHTS``; the receiver gets whatever the sender had open.
QEMU's registration methods expect one end of a connected stream socket pair (a listener's
D-Bus connection, a chardev's byte stream), and nothing stops a peer from passing anything else:
`KINDS` are the kinds the probe passes, and `make_descriptor` opens one.  The sender's own end
(a socket pair's other end, a pipe's write end) stays open in `Descriptor.kept` until the probe
closes it, so that "the other end never speaks" and "the other end is closed" are both tried.

`python_expression` is the shortest standard way to make the same descriptor by hand: neither
``busctl`` nor ``dbus-send`` can pass a descriptor, so the reproduction of a finding on an ``h``
argument is a ``python3 -c`` line.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
from dataclasses import dataclass, field

#: The descriptor kinds, in the order they are tried.  "served" is the well-behaved case: the
#: probe serves the other end (a D-Bus client on a listener socket, a reader on a chardev's).
SERVED = "stream socket pair, served"
SILENT = "stream socket pair whose other end never speaks"
CLOSED = "stream socket pair whose other end is closed"
DATAGRAM = "datagram socket pair"
LISTENING = "listening socket"
PIPE = "pipe (read end)"
REGULAR = "regular file"
DEV_NULL = "/dev/null"
KINDS = (SERVED, SILENT, CLOSED, DATAGRAM, LISTENING, PIPE, REGULAR, DEV_NULL)


@dataclass
class Descriptor:
    """A descriptor to pass (``fd``), and what the probe keeps of it: the other end of a socket
    pair or pipe (``kept``), and everything to close afterwards."""

    kind: str
    fd: int
    kept: socket.socket | None = None
    _owned: list[object] = field(default_factory=list)
    _paths: list[str] = field(default_factory=list)

    def take_kept(self) -> socket.socket | None:
        """Hand the other end over to whoever serves it: `close` no longer closes it."""
        kept, self.kept = self.kept, None
        if kept is not None:
            self._owned = [owned for owned in self._owned if owned is not kept]
        return kept

    def close(self) -> None:
        for owned in self._owned:
            with contextlib.suppress(OSError):
                owned.close()  # type: ignore[attr-defined]
        self._owned = []
        for path in self._paths:
            with contextlib.suppress(OSError):
                os.unlink(path)
        self._paths = []


def make_descriptor(kind: str, folder: str) -> Descriptor:
    """Open a descriptor of ``kind`` (files go into ``folder``)."""
    if kind in (SERVED, SILENT, CLOSED, DATAGRAM):
        family = socket.SOCK_DGRAM if kind == DATAGRAM else socket.SOCK_STREAM
        ours, theirs = socket.socketpair(socket.AF_UNIX, family)
        if kind == CLOSED:
            ours.close()
            return Descriptor(kind, theirs.fileno(), None, [theirs])
        return Descriptor(kind, theirs.fileno(), ours, [theirs, ours])
    if kind == LISTENING:
        path = tempfile.mktemp(prefix="listen-", dir=folder)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(1)
        return Descriptor(kind, server.fileno(), None, [server], [path])
    if kind == PIPE:
        reader, writer = os.pipe()
        read_end, write_end = os.fdopen(reader, "rb", buffering=0), os.fdopen(writer, "wb", buffering=0)
        return Descriptor(kind, reader, None, [read_end, write_end])
    if kind == REGULAR:
        handle = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115 (closed by Descriptor.close)
        return Descriptor(kind, handle.fileno(), None, [handle])
    if kind == DEV_NULL:
        device = open(os.devnull, "r+b", buffering=0)  # noqa: SIM115 (closed by Descriptor.close)
        return Descriptor(kind, device.fileno(), None, [device])
    raise ValueError(f"unknown descriptor kind {kind!r}")


#: Python that leaves the descriptor of each kind in ``f`` (and the other end, if any, open).
_EXPRESSIONS = {
    SERVED: "a,f=socket.socketpair()",
    SILENT: "a,f=socket.socketpair()",
    CLOSED: "a,f=socket.socketpair();a.close()",
    DATAGRAM: "a,f=socket.socketpair(socket.AF_UNIX,socket.SOCK_DGRAM)",
    LISTENING: 'f=socket.socket(socket.AF_UNIX);f.bind("\\0qemu-dbus-probe");f.listen()',
    PIPE: "f,w=os.pipe()",
    REGULAR: "f=tempfile.TemporaryFile()",
    DEV_NULL: 'f=open("/dev/null")',
}


def python_expression(kind: str) -> str:
    """Python statements that open a descriptor of ``kind`` as ``f``."""
    return _EXPRESSIONS[kind]

"""A bus peer for the live conformance tests: owns a name and answers from a table, as GDBus would.

Usage: ``conform_service.py ADDRESS NAME TABLE.json [--queue] [--listener MODE]``.  The table holds ``objects``, object
path → the introspection XML to reply with (null: never reply, like a peer that hangs), and
``sent``, object path → interface → property → the type to send its value as (null: leave it out
of GetAll) where it should differ from the XML.  The peer prints ``ready UNIQUE-NAME`` once it owns
NAME (with ``--queue``: once it owns it or waits in its queue), then serves Introspect and
Properties.GetAll until it is terminated.  Any other call, or an unknown path, gets the error
GDBus would give.

With ``--listener MODE`` it also plays QEMU's part in ``Console.RegisterListener``: it replies, then
takes the authentication server's role on the socket it was handed (as QEMU does, blocking its
own loop meanwhile), reads the listener's properties with GetAll and sends a Scanout and an
Update, each broken the way MODE says (see `LISTENER_MODES`).  A listener that lists
``org.qemu.Display1.Listener.Unix.Map`` in its ``Interfaces`` gets what QEMU 9.2 and later send
it instead: a GetAll of that interface, a ``ScanoutMap`` with a memfd holding the same image, then an
``UpdateMap``; the ``map-*`` modes break those, and the other modes break only the first listener
registered on a console (the plain one).  ``hostile:NAME`` plays the message ``NAME`` of the
hostile catalog (``tests/hostile.py``) right after the handshake instead, then stays silent.  The
table's ``listeners`` (console path → mode) gives each console a mode of its
own, so that one run meets every hostile message, one console each.
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import socket
import sys
import time
from typing import Any
from xml.etree import ElementTree

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "dbusmatrix"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hostile import BY_NAME, Context
from jeepney import DBusAddress, HeaderFields, MessageFlag, MessageType, Parser, new_method_call
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection
from jeepney.wrappers import new_error, new_method_return
from peer import Values

INTROSPECTABLE = "org.freedesktop.DBus.Introspectable"
PROPERTIES = "org.freedesktop.DBus.Properties"
DO_NOT_QUEUE = 0x4
PRIMARY_OWNER, IN_QUEUE = 1, 2


def property_types(xml: str) -> dict[str, dict[str, str]]:
    """Interface → property → type, from introspection XML (trusted: the test wrote it)."""
    root = ElementTree.fromstring(xml)
    return {
        interface.get("name", ""): {p.get("name", ""): p.get("type", "") for p in interface.iter("property")}
        for interface in root.iter("interface")
    }


#: How the listener part misbehaves: the Update it sends, or what it does instead.
LISTENER_MODES = (
    "good",  # a Scanout, then an Update inside it, as the registry says
    "wrong-signature",  # Update without its pixman_format arg
    "wrong-path",  # Update sent to another object than /org/qemu/Display1/Listener
    "no-reply-flag",  # Update without NO_REPLY_EXPECTED (a registry that marks Update NoReply sees it)
    "outside",  # Update beyond the Scanout's width, and beyond the console's size too
    "mode-switch",  # the console grows to 128x64 with no new Scanout (as QEMU does), then an Update fits it
    "hung-handshake",  # never answers the client's AUTH
    "silent",  # never replies to RegisterListener
    "garbage",  # sends bytes that are not a D-Bus message after the handshake
    "map-small",  # ScanoutMap's memfd is smaller than offset + stride x height
    "map-pipe",  # ScanoutMap passes a pipe, not a file
    "map-outside",  # UpdateMap beyond the mapped surface
    "map-reply",  # UpdateMap without NO_REPLY_EXPECTED
    "map-pixels",  # the memfd holds other pixels than the Scanout the plain listener got
    "map-shrink",  # the memfd is shrunk to nothing once ScanoutMap is answered (QEMU's is not sealed against it)
    "slow-handshake",  # answers each step of the handshake 0.7 s late
    "auth-garbage",  # answers AUTH with 9,000 bytes that are not SASL
)
MAP = "org.qemu.Display1.Listener.Unix.Map"
LISTENER = "/org/qemu/Display1/Listener"
XRGB8888 = 0x20020888
#: The console's Width and Height as the bus serves them: the Scanout's size until a mode switch.
console_size = [64, 32]


def serve_listener(sock: socket.socket, mode: str) -> None:
    """QEMU's side of a listener connection: authentication server, then the caller."""
    reader = sock.makefile("rb")
    lines = []
    while True:
        line = reader.readline()
        if not line:
            return
        lines.append(line)
        if line.startswith(b"BEGIN"):
            break
        if mode == "slow-handshake":
            time.sleep(0.7)
        if b"AUTH" in line and mode == "auth-garbage":
            sock.sendall(b"X" * 9000 + b"\r\n")
        elif b"AUTH" in line:
            sock.sendall(b"OK 0123456789abcdef0123456789abcdef\r\n")
        elif line.startswith(b"NEGOTIATE_UNIX_FD"):
            sock.sendall(b"AGREE_UNIX_FD\r\n")
    if mode == "garbage":
        sock.sendall(b"X" * 64)
        return
    if mode.startswith("hostile:"):
        play(sock, mode.split(":", 1)[1])
        return
    serial = iter(range(1, 1000))
    parser = Parser()

    def send(path: str, member: str, signature: str, body: tuple[Any, ...], flags: int, interface: str) -> None:
        message = new_method_call(DBusAddress(path, "org.qemu.Peer", interface), member, signature, body)
        del message.header.fields[HeaderFields.destination]  # a peer-to-peer connection has no names
        message.header.flags = MessageFlag(flags)
        fds = array.array("i")
        data = message.serialise(serial=next(serial), fds=fds)
        sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)] if fds else [])

    def wait_reply() -> Any:
        while not (found := parser.get_next_message()) or found.header.message_type is MessageType.method_call:
            data = sock.recv(65536)
            if not data:
                return None
            parser.add_data(data)
        return found

    no_reply = MessageFlag.no_reply_expected
    send(LISTENER, "GetAll", "s", ("org.qemu.Display1.Listener",), 0, PROPERTIES)
    properties = wait_reply()
    interfaces = properties.body[0].get("Interfaces", ("as", []))[1] if properties is not None else []
    image = bytes(256 * 32)
    if MAP in interfaces:
        serve_map(send, wait_reply, mode, image)
        return
    send(LISTENER, "Scanout", "uuuuay", (64, 32, 256, XRGB8888, image), no_reply, "org.qemu.Display1.Listener")
    update: tuple[Any, ...] = (0, 0, 8, 8, 32, XRGB8888, bytes(256))
    signature, path, flags = "iiiiuuay", LISTENER, no_reply
    if mode == "wrong-signature":
        signature, update = "iiiiuay", (0, 0, 8, 8, 32, bytes(256))
    elif mode == "wrong-path":
        path = "/org/qemu/Display1/Other"
    elif mode == "no-reply-flag":
        flags = 0
    elif mode == "outside":
        update = (60, 0, 8, 8, 32, XRGB8888, bytes(256))
    elif mode == "mode-switch":
        console_size[:] = [128, 64]  # what QEMU's console properties say after the switch
        update = (100, 40, 8, 8, 32, XRGB8888, bytes(256))
    send(path, "Update", signature, update, flags, "org.qemu.Display1.Listener")
    if flags == 0:
        wait_reply()


def serve_map(send: Any, wait_reply: Any, mode: str, image: bytes) -> None:
    """What QEMU 9.2 and later send a Map listener, broken the way a ``map-*`` MODE says."""
    no_reply = MessageFlag.no_reply_expected
    send(LISTENER, "GetAll", "s", (MAP,), 0, PROPERTIES)
    wait_reply()
    width, height = console_size  # after a mode switch, QEMU maps the new surface
    image = bytes(width * 4 * height) if (width, height) != (64, 32) else image
    size = len(image) // 2 if mode == "map-small" else len(image)
    shared = os.memfd_create("pixman")
    os.write(shared, b"\xff" * size if mode == "map-pixels" else image[:size])
    reader, writer = os.pipe()
    handle = reader if mode == "map-pipe" else shared
    send(LISTENER, "ScanoutMap", "huuuuu", (handle, 0, width, height, width * 4, XRGB8888), 0, MAP)
    wait_reply()
    rectangle = (60, 0, 8, 8) if mode == "map-outside" else (0, 0, 8, 8)
    send(LISTENER, "UpdateMap", "iiii", rectangle, 0 if mode == "map-reply" else no_reply, MAP)
    if mode == "map-reply":
        wait_reply()
    if mode == "map-shrink":
        # Once the listener has taken ScanoutMap (it answers a Ping after it), as QEMU's memfd
        # allows: a client that read its mapping now would die of SIGBUS.
        send(LISTENER, "Ping", "", (), 0, "org.freedesktop.DBus.Peer")
        wait_reply()
        os.ftruncate(shared, 0)
    for fd in (shared, reader, writer):
        os.close(fd)


def play(sock: socket.socket, name: str) -> None:
    """Send hostile message ``name`` as QEMU's side of a listener connection; the tool may close
    the connection half-way (it should, for most of them)."""
    with open(os.devnull, "rb") as null:
        for data, fds in BY_NAME[name].build(Context(None)):
            rest = data
            if fds:
                passed = array.array("i", [null.fileno()] * fds)
                rest = data[sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, passed)]) :]
            sock.sendall(rest)


def register_listener(connection: Any, message: Any, mode: str, kept: list[Any]) -> None:
    if mode == "silent":
        kept.append(message.body[0])  # neither answered nor closed
        return
    connection.send(new_method_return(message))
    sock = message.body[0].to_socket()
    kept.append(sock)
    if mode != "hung-handshake":
        with contextlib.suppress(OSError):  # the tool closed its end: it gave up on this listener
            serve_listener(sock, mode)


#: Listeners registered so far per console: a failure mode breaks only the first (the plain one).
registered: dict[str, int] = {}


def main(address: str, name: str, table_path: str, queue: bool, listener: str | None = None) -> int:
    with open(table_path, encoding="utf-8") as stream:
        table: dict[str, Any] = json.load(stream)
    objects: dict[str, str | None] = table["objects"]
    sent: dict[str, dict[str, dict[str, str | None]]] = table.get("sent", {})
    listeners: dict[str, str] = table.get("listeners", {})
    values = Values()
    connection = open_dbus_connection(bus=address, enable_fds=True)
    kept: list[Any] = []
    flags = 0 if queue else DO_NOT_QUEUE
    reply = connection.send_and_get_reply(message_bus.RequestName(name, flags), timeout=10)
    if reply.body not in ((PRIMARY_OWNER,), (IN_QUEUE,) if queue else (PRIMARY_OWNER,)):
        print(f"could not own {name}: {reply.body}", flush=True)
        return 1
    print("ready", connection.unique_name, flush=True)
    while True:
        message = connection.receive()
        fields = message.header.fields
        if message.header.message_type is not MessageType.method_call:
            continue
        path = fields.get(HeaderFields.path)
        call = (fields.get(HeaderFields.interface), fields.get(HeaderFields.member))
        xml = objects.get(path) if isinstance(path, str) else None
        if path not in objects:
            connection.send(new_error(message, "org.freedesktop.DBus.Error.UnknownObject", "s", (str(path),)))
        elif call == (INTROSPECTABLE, "Introspect"):
            if xml is not None:
                connection.send(new_method_return(message, "s", (xml,)))
        elif call == ("org.qemu.Display1.Console", "RegisterListener") and (listener or path in listeners):
            registered[str(path)] = registered.get(str(path), 0) + 1
            mode = listeners.get(str(path)) or str(listener)
            first = registered[str(path)] == 1
            register_listener(connection, message, mode if first or mode.startswith("map-") else "good", kept)
        elif call == (PROPERTIES, "GetAll") and xml is not None:
            interface = message.body[0]
            types: dict[str, str | None] = {**property_types(xml).get(interface, {})}
            types.update(sent.get(str(path), {}).get(interface, {}))
            answer = {prop: (t, values.of(t)) for prop, t in types.items() if t is not None}
            if interface == "org.qemu.Display1.Console":
                answer.update(Width=("u", console_size[0]), Height=("u", console_size[1]))
            connection.send(new_method_return(message, "a{sv}", (answer,)))
        else:
            connection.send(new_error(message, "org.freedesktop.DBus.Error.UnknownMethod", "s", (str(call[1]),)))


if __name__ == "__main__":
    options = sys.argv[4:]
    mode = options[options.index("--listener") + 1] if "--listener" in options else None
    raise SystemExit(main(*sys.argv[1:4], queue="--queue" in options, listener=mode))

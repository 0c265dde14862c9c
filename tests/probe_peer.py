"""A fake QEMU with planted faults, for the tests of ``qemu-dbus probe``.

``qemu-dbus probe --launch`` starts it like a QEMU binary (through a small executable wrapper the
tests write): it reads the bus address from ``-display dbus,addr=...``, owns ``org.qemu`` and
serves ``/org/qemu/Display1/VM`` and the Keyboard and Mouse of ``Console_0``, in one thread, the
way QEMU's main loop does.  ``--version`` answers like QEMU 10.0.2.

Planted faults (the registry says none of this may happen):

- ``Mouse.Press`` aborts, with an assertion message on stderr, for every button >= 7;
- ``Mouse.Release`` blocks its main loop for good for button 4294967295 (a hang);
- ``Mouse.RelMotion`` blocks it for ``STALL`` seconds when dx is negative (a stall);
- ``Keyboard.Press`` replies with a string (signature ``s``) for keycode 0, where the registry
  gives no out args (a contract breach);
- ``Keyboard.Release`` fails with an error name the registry does not give, for keycode 1.

With ``--validate`` it validates everything instead, answering bad values with
``org.qemu.Display1.Error.Invalid``: the probe must find nothing.

With ``--hostile-listener=NAME`` it also exports ``Console_0``'s ``Console``: every listener
registered there gets, right after the handshake (QEMU's side of it, as QEMU does it), the
malformed message ``NAME`` of the hostile catalog (``tests/hostile.py``) instead of ``GetAll``.
With ``--huge-reply``, ``Keyboard.Press`` replies to keycode 0 with a legal message of more values
than the tool reads (150,000 variants) instead.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jeepney.bus_messages import message_bus

from sphinxext_qemudbus.live.message import INTERFACE, MEMBER, METHOD_CALL, PATH
from sphinxext_qemudbus.live.served import introspection_xml
from sphinxext_qemudbus.live.wire import connect_bus, error_reply, method_return
from sphinxext_qemudbus.model.registry import Registry, packaged_registry

STALL = float(os.environ.get("PROBE_PEER_STALL", "1.5"))
INVALID = "org.qemu.Display1.Error.Invalid"
OBJECTS = {
    "/org/qemu/Display1/VM": ("org.qemu.Display1.VM",),
    "/org/qemu/Display1/Console_0": ("org.qemu.Display1.Keyboard", "org.qemu.Display1.Mouse"),
}


def bus_address(argv: list[str]) -> str:
    display = argv[argv.index("-display") + 1]
    options = display.replace(",,", "\0").split(",")
    addr = next(option for option in options if option.startswith("addr="))
    return addr[len("addr=") :].replace("\0", ",")


def handle(message, validate: bool, registry: Registry):  # type: ignore[no-untyped-def]
    path, interface, member = message.field(PATH), message.field(INTERFACE), message.field(MEMBER)
    body = message.body
    if interface == "org.freedesktop.DBus.Introspectable":
        children = sorted(
            {p[len(path.rstrip("/")) + 1 :].split("/")[0] for p in OBJECTS if p.startswith(path.rstrip("/") + "/")}
        )
        served = tuple(registry.interface(name) for name in OBJECTS.get(path, ()))
        xml = introspection_xml(served).replace(
            "</node>", "".join(f'  <node name="{c}"/>\n' for c in children) + "</node>"
        )
        return method_return(message, "s", (xml,))
    if interface == "org.freedesktop.DBus.Properties":
        if member == "Get" and tuple(body) == ("org.qemu.Display1.VM", "Name"):
            return method_return(message, "v", (("s", "fake"),))
        if member == "GetAll":
            return method_return(message, "a{sv}", ({},))
        return error_reply(message, "org.freedesktop.DBus.Error.InvalidArgs", "no")
    if interface == "org.qemu.Display1.Mouse" and member in ("Press", "Release"):
        button = body[0]
        if validate and button > 6:
            return error_reply(message, INVALID, "invalid button")
        if member == "Press" and button >= 7:
            sys.stderr.write(f"fake-qemu: dbus_mouse_press: Assertion `button < 7' failed (button {button}).\n")
            sys.stderr.flush()
            os.abort()
        if member == "Release" and button == 0xFFFFFFFF:
            while True:
                time.sleep(3600)
        return method_return(message)
    if interface == "org.qemu.Display1.Mouse" and member == "RelMotion":
        if validate and body[0] < 0:
            return error_reply(message, INVALID, "negative")
        if body[0] < 0:
            time.sleep(STALL)
        return method_return(message)
    if interface == "org.qemu.Display1.Mouse" and member == "SetAbsPosition":
        return error_reply(message, INVALID, "Mouse is not absolute")
    if interface == "org.qemu.Display1.Keyboard":
        if member == "Press" and body[0] == 0 and not validate:
            return method_return(message, "s", ("surprise",))
        if member == "Release" and body[0] == 1 and not validate:
            return error_reply(message, "org.qemu.Display1.Error.Surprise", "undocumented")
        return method_return(message)
    return error_reply(message, "org.freedesktop.DBus.Error.UnknownMethod", f"no {member}")


def hostile_listener(fd: int, name: str) -> None:
    """QEMU's side of a listener connection on ``fd``: the server side of the handshake, then the
    hostile message ``name``; then it waits until the probe closes the connection."""
    from hostile import BY_NAME, Context

    try:
        sock = socket.socket(fileno=fd)
    except OSError:  # not a socket: QEMU would fail the handshake
        os.close(fd)
        return
    with sock, contextlib.suppress(OSError):
        sock.settimeout(10)
        reader = sock.makefile("rb")
        while not (line := reader.readline()).startswith(b"BEGIN"):
            if not line:
                return
            if b"AUTH" in line:
                sock.sendall(b"OK 0123456789abcdef0123456789abcdef\r\n")
            elif line.startswith(b"NEGOTIATE_UNIX_FD"):
                sock.sendall(b"AGREE_UNIX_FD\r\n")
        for data, _ in BY_NAME[name].build(Context(None)):
            sock.sendall(data)
        while sock.recv(4096):
            pass


def main(argv: list[str]) -> int:
    if "--version" in argv:
        print("QEMU emulator version 10.0.2 (a fake peer with planted faults)")
        return 0
    validate = "--validate" in argv
    huge = "--huge-reply" in argv
    hostile = next((a.split("=", 1)[1] for a in argv if a.startswith("--hostile-listener=")), None)
    if hostile is not None:
        OBJECTS["/org/qemu/Display1/Console_0"] += ("org.qemu.Display1.Console",)
    registry = Registry.load([packaged_registry()])
    wire = connect_bus(bus_address(argv), time.monotonic() + 30)
    wire.call(message_bus.RequestName("org.qemu"), time.monotonic() + 30)
    while True:
        received = wire.receive(time.monotonic() + 3600)
        try:
            message = received.message
            if message.kind != METHOD_CALL:
                continue
            if hostile is not None and message.field(MEMBER) == "RegisterListener" and message.signature == "h":
                fd = received.keep(message.body[0])
                wire.send(method_return(message), time.monotonic() + 30)
                threading.Thread(target=hostile_listener, args=(fd, hostile), daemon=True).start()
                continue
            if huge and message.field(MEMBER) == "Press" and message.signature == "u" and message.body[0] == 0:
                wire.send(method_return(message, "av", ([("y", 0)] * 150_000,)), time.monotonic() + 30)
                continue
            wire.send(handle(message, validate, registry), time.monotonic() + 30)
        finally:
            received.close()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

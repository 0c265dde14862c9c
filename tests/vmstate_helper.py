"""A dbus-vmstate helper for the migration test: a real process on the bus, as a vhost-user back end
or a network helper would be.

Usage: ``vmstate_helper.py ADDRESS ID``.  The helper queues for ``org.qemu.VMState1`` (several
helpers share the name: QEMU walks its queue of owners), serves ``/org/qemu/VMState1`` with the
``Id`` property, ``Save`` (returns ``state of ID``) and ``Load`` (prints ``loaded DATA``), prints
``ready UNIQUE-NAME`` once it is queued, and runs until it is terminated.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from jeepney import HeaderFields, MessageType
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection
from jeepney.wrappers import new_error, new_method_return

INTERFACE = "org.qemu.VMState1"
PATH = "/org/qemu/VMState1"
XML = (Path(__file__).resolve().parent.parent / "interfaces" / "org.qemu.VMState1.xml").read_text()
PRIMARY_OWNER, IN_QUEUE = 1, 2


def main(address: str, ident: str) -> int:
    connection = open_dbus_connection(bus=address)
    reply = connection.send_and_get_reply(message_bus.RequestName(INTERFACE, 0), timeout=10)
    if reply.body[0] not in (PRIMARY_OWNER, IN_QUEUE):
        print(f"could not queue for {INTERFACE}: {reply.body}", flush=True)
        return 1
    print("ready", connection.unique_name, flush=True)
    while True:
        message = connection.receive()
        if message.header.message_type is not MessageType.method_call:
            continue
        fields = message.header.fields
        call = (fields.get(HeaderFields.path), fields.get(HeaderFields.interface), fields.get(HeaderFields.member))
        if call[0] != PATH:
            connection.send(new_error(message, "org.freedesktop.DBus.Error.UnknownObject", "s", (str(call[0]),)))
        elif call[1:] == ("org.freedesktop.DBus.Introspectable", "Introspect"):
            connection.send(new_method_return(message, "s", (XML,)))
        elif call[1:] == ("org.freedesktop.DBus.Properties", "Get") and tuple(message.body) == (INTERFACE, "Id"):
            connection.send(new_method_return(message, "v", (("s", ident),)))
        elif call[1:] == ("org.freedesktop.DBus.Properties", "GetAll") and tuple(message.body) == (INTERFACE,):
            connection.send(new_method_return(message, "a{sv}", ({"Id": ("s", ident)},)))
        elif call[1:] == (INTERFACE, "Save"):
            connection.send(new_method_return(message, "ay", (f"state of {ident}".encode(),)))
        elif call[1:] == (INTERFACE, "Load"):
            print("loaded", bytes(message.body[0]).decode("utf-8", "replace"), flush=True)
            connection.send(new_method_return(message))
        else:
            connection.send(new_error(message, "org.freedesktop.DBus.Error.UnknownMethod", "s", (str(call[2]),)))


if __name__ == "__main__":
    os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)
    raise SystemExit(main(sys.argv[1], sys.argv[2]))

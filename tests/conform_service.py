"""A bus peer for the live conformance tests: owns a name and answers from a table, as GDBus would.

Usage: ``conform_service.py ADDRESS NAME TABLE.json [--queue]``.  The table holds ``objects``, object
path → the introspection XML to reply with (null: never reply, like a peer that hangs), and
``sent``, object path → interface → property → the type to send its value as (null: leave it out
of GetAll) where it should differ from the XML.  The peer prints ``ready UNIQUE-NAME`` once it owns
NAME (with ``--queue``: once it owns it or waits in its queue), then serves Introspect and
Properties.GetAll until it is terminated.  Any other call, or an unknown path, gets the error
GDBus would give.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any
from xml.etree import ElementTree

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "dbusmatrix"))

from jeepney import HeaderFields, MessageType
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


def main(address: str, name: str, table_path: str, queue: bool) -> int:
    with open(table_path, encoding="utf-8") as stream:
        table: dict[str, Any] = json.load(stream)
    objects: dict[str, str | None] = table["objects"]
    sent: dict[str, dict[str, dict[str, str | None]]] = table.get("sent", {})
    values = Values()
    connection = open_dbus_connection(bus=address)
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
        elif call == (PROPERTIES, "GetAll") and xml is not None:
            interface = message.body[0]
            types: dict[str, str | None] = {**property_types(xml).get(interface, {})}
            types.update(sent.get(str(path), {}).get(interface, {}))
            answer = {prop: (t, values.of(t)) for prop, t in types.items() if t is not None}
            connection.send(new_method_return(message, "a{sv}", (answer,)))
        else:
            connection.send(new_error(message, "org.freedesktop.DBus.Error.UnknownMethod", "s", (str(call[1]),)))


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:4], queue="--queue" in sys.argv[4:]))

"""A bus peer for the live conformance tests: owns a name and answers Introspect from a table.

Usage: ``conform_service.py ADDRESS NAME TABLE.json [--queue]`` where the table maps object paths
to the introspection XML to reply with (null: never reply, like a peer that hangs).  It prints ``ready UNIQUE-NAME`` once it owns NAME (with
``--queue``: once it owns it or waits in its queue), then serves until it is terminated.  Any
other call, or an unknown path, gets the error GDBus would give.
"""

from __future__ import annotations

import json
import sys

from jeepney import HeaderFields, MessageType
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection
from jeepney.wrappers import new_error, new_method_return

INTROSPECTABLE = "org.freedesktop.DBus.Introspectable"
DO_NOT_QUEUE = 0x4
PRIMARY_OWNER, IN_QUEUE = 1, 2


def main(address: str, name: str, table_path: str, queue: bool) -> int:
    with open(table_path, encoding="utf-8") as stream:
        table: dict[str, str | None] = json.load(stream)
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
        member = fields.get(HeaderFields.member)
        if path not in table:
            connection.send(new_error(message, "org.freedesktop.DBus.Error.UnknownObject", "s", (str(path),)))
        elif fields.get(HeaderFields.interface) == INTROSPECTABLE and member == "Introspect":
            xml = table[path]
            if xml is not None:
                connection.send(new_method_return(message, "s", (xml,)))
        else:
            connection.send(new_error(message, "org.freedesktop.DBus.Error.UnknownMethod", "s", (str(member),)))


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:4], queue="--queue" in sys.argv[4:]))

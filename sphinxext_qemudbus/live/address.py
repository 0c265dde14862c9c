"""D-Bus addresses (``unix:path=/run/vm/bus``), read without jeepney, so that a wrong
``--address`` is a usage error the command can give before it connects to anything."""

from __future__ import annotations

import os


class AddressError(ValueError):
    """A D-Bus address this tool cannot use, with the reason in words."""


def parse_address(address: str) -> str | bytes:
    """The socket address of the first usable ``unix:`` entry of a D-Bus address (a path, or an
    abstract name as bytes); ``SESSION`` and ``SYSTEM`` name the usual buses.  Raises
    `AddressError` saying what is wrong."""
    if address == "SESSION":
        value = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
        if not value:
            raise AddressError("DBUS_SESSION_BUS_ADDRESS is not set")
        address = value
    elif address == "SYSTEM":
        address = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or "unix:path=/var/run/dbus/system_bus_socket"
    transports = []
    for entry in filter(None, address.split(";")):
        transport, colon, rest = entry.partition(":")
        if not colon or not transport:
            raise AddressError("a D-Bus address reads TRANSPORT:KEY=VALUE,... (for example unix:path=/run/vm/bus)")
        pairs: dict[str, str] = {}
        for item in filter(None, rest.split(",")):
            key, equals, value = item.partition("=")
            if not equals or not key:
                raise AddressError(f"{item!r} is not KEY=VALUE")
            pairs[key] = _unescape(value)
        transports.append(transport)
        if transport == "unix":
            if "path" in pairs:
                return pairs["path"]
            if "abstract" in pairs:
                return b"\0" + pairs["abstract"].encode("utf-8", "surrogateescape")
            raise AddressError("a unix: address needs path= or abstract=")
    if not transports:
        raise AddressError("the address is empty")
    raise AddressError(f"transport {', '.join(sorted(set(transports)))} not supported (only unix:)")


def _unescape(value: str) -> str:
    """D-Bus addresses escape bytes as ``%XX``."""
    if "%" not in value:
        return value
    out = bytearray()
    i = 0
    raw = value.encode("utf-8", "surrogateescape")
    while i < len(raw):
        if raw[i] == 0x25 and _is_hex(raw[i + 1 : i + 3]):
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8", "surrogateescape")


def _is_hex(pair: bytes) -> bool:
    return len(pair) == 2 and all(c in b"0123456789abcdefABCDEF" for c in pair)

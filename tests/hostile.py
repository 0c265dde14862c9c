"""Malformed and hostile D-Bus messages, written byte by byte: the catalog the hostile peers play.

A fake bus (`tests/test_hostile_transport.py`) sends each one where ``conform`` waits for the reply
to ``Hello``; the listener side of ``tests/conform_service.py`` sends each one on a display
listener's peer-to-peer socket, where no bus daemon validates anything.  Each entry says what the
message breaks (the words the tool's report must contain).

Messages are marshalled here by hand (`Marshal`), not by a D-Bus library: a library refuses to
write most of them.  This file is imported by the service process too: standard library only,
Python 3.9.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

METHOD_CALL, METHOD_RETURN, ERROR, SIGNAL = 1, 2, 3, 4
NO_REPLY = 0x1
PATH, INTERFACE, MEMBER, ERROR_NAME, REPLY_SERIAL, DESTINATION, SENDER, SIGNATURE, UNIX_FDS = range(1, 10)
MIB = 1 << 20


class Marshal:
    """Bytes of marshalled values, aligned as the specification says relative to ``start`` (the
    offset of the first byte in its message)."""

    def __init__(self, big: bool = False, start: int = 0) -> None:
        self.data = bytearray()
        self.start = start
        self.order = ">" if big else "<"

    @property
    def position(self) -> int:
        return self.start + len(self.data)

    def pad(self, alignment: int, filler: int = 0) -> Marshal:
        self.data += bytes([filler]) * (-self.position % alignment)
        return self

    def byte(self, value: int) -> Marshal:
        self.data.append(value)
        return self

    def fixed(self, code: str, value: float) -> Marshal:
        packer = struct.Struct(self.order + {"b": "I", "u": "I", "i": "i", "h": "I", "t": "Q", "d": "d"}[code])
        self.pad(packer.size)
        self.data += packer.pack(value)
        return self

    def u32(self, value: int) -> Marshal:
        return self.fixed("u", value)

    def string(self, text: bytes, terminator: bytes = b"\0") -> Marshal:
        self.u32(len(text))
        self.data += text + terminator
        return self

    def signature(self, text: bytes) -> Marshal:
        self.byte(len(text))
        self.data += text + b"\0"
        return self

    def array(self, alignment: int, fill: Callable[[Marshal], object], length: int | None = None) -> Marshal:
        """An array whose elements ``fill`` writes; ``length`` overrides the length written."""
        self.pad(4)
        at = len(self.data)
        self.data += b"\0\0\0\0"
        self.pad(alignment)
        first = len(self.data)
        fill(self)
        written = len(self.data) - first if length is None else length
        self.data[at : at + 4] = struct.pack(self.order + "I", written)
        return self

    def raw(self, data: bytes) -> Marshal:
        self.data += data
        return self


#: A header field: (code, the signature its variant announces, how its value is written).
Field = tuple[int, bytes, Callable[[Marshal], object]]


def path(value: str) -> Field:
    return (PATH, b"o", lambda m: m.string(value.encode()))


def interface(value: str) -> Field:
    return (INTERFACE, b"s", lambda m: m.string(value.encode()))


def member(value: str) -> Field:
    return (MEMBER, b"s", lambda m: m.string(value.encode()))


def reply_serial(value: int) -> Field:
    return (REPLY_SERIAL, b"u", lambda m: m.u32(value))


def signature(value: bytes) -> Field:
    return (SIGNATURE, b"g", lambda m: m.signature(value))


def unix_fds(count: int) -> Field:
    return (UNIX_FDS, b"u", lambda m: m.u32(count))


def message(
    kind: int,
    serial: int,
    fields: list[Field],
    body: bytes = b"",
    flags: int = 0,
    big: bool = False,
    version: int = 1,
    body_length: int | None = None,
) -> bytes:
    """One message: the fixed header, the header fields as given, padding, the body."""
    order = ">" if big else "<"
    header = Marshal(big)
    header.raw((b"B" if big else b"l") + bytes([kind, flags, version]))
    header.raw(struct.pack(order + "II", len(body) if body_length is None else body_length, serial))

    def write_fields(m: Marshal) -> None:
        for code, announced, write in fields:
            m.pad(8)
            m.byte(code)
            m.signature(announced)
            write(m)

    header.array(8, write_fields)
    header.pad(8)
    return bytes(header.data) + body


def body(write: Callable[[Marshal], object], big: bool = False) -> bytes:
    out = Marshal(big)
    write(out)
    return bytes(out.data)


# --- the catalog ----------------------------------------------------------------------------


@dataclass
class Context:
    """Where a hostile message is played: as the reply to the call with serial ``reply_to`` (a
    bus's answer to Hello), or as a call QEMU makes on a listener connection (``reply_to`` None)."""

    reply_to: int | None
    serial: int = 1000
    listener_path: str = "/org/qemu/Display1/Listener"

    def header(self, sig: bytes, *extra: Field, kind: int | None = None) -> tuple[int, list[Field], int]:
        """(message type, fields, flags) for a message with body signature ``sig``."""
        fields: list[Field] = [signature(sig)] if sig else []
        if self.reply_to is not None:
            return (kind or METHOD_RETURN, [reply_serial(self.reply_to), *fields, *extra], 0)
        base = [path(self.listener_path), interface("org.qemu.Display1.Listener"), member("Update")]
        return (kind or METHOD_CALL, [*base, *fields, *extra], NO_REPLY)

    def one(self, sig: bytes, payload: bytes, *extra: Field, **options: int) -> bytes:
        kind, fields, flags = self.header(sig, *extra)
        return message(kind, self.serial, fields, payload, flags=flags, **options)


@dataclass
class Hostile:
    """One entry: what to send ((bytes, number of descriptors to pass with them), made as they
    are sent), what the report must say, and whether the connection is left half-way through a
    message."""

    name: str
    build: Callable[[Context], Iterable[tuple[bytes, int]]]
    words: str
    #: The peer sends this and then stays silent (the message never completes).
    cut: bool = False
    #: The entry is legal D-Bus; it is hostile by its size or number.
    legal: bool = False
    notes: list[str] = field(default_factory=list)


def _empty_struct(c: Context) -> list[tuple[bytes, int]]:
    # a() is forbidden by the grammar: an array of empty structs, 8 bytes long.
    return [(c.one(b"a()", body(lambda m: m.array(8, lambda a: a.raw(bytes(8))))), 0)]


def _string_without_nul(c: Context) -> list[tuple[bytes, int]]:
    return [(c.one(b"s", body(lambda m: m.string(b"abc", terminator=b"X"))), 0)]


def _integer_sender(c: Context) -> list[tuple[bytes, int]]:
    return [(c.one(b"", b"", (SENDER, b"u", lambda m: m.u32(7))), 0)]


def variant_array(count: int) -> bytes:
    """An ``av`` of ``count`` one-byte variants ('y', 3 bytes of signature and the byte: 4 bytes
    each), as a body marshals it."""
    return struct.pack("<I", 4 * count) + b"\x01y\x00\x07" * count


def flood_signal(size: int) -> bytes:
    """A legal signal ``org.qemu.Flood.Flood`` whose body is an ``av`` of ``size`` bytes."""
    fields = [path("/org/qemu/Flood"), interface("org.qemu.Flood"), member("Flood"), signature(b"av")]
    return message(SIGNAL, 77, fields, variant_array(size // 4))


def _variants(size: int, arrays: int = 1) -> Callable[[Context], Iterable[tuple[bytes, int]]]:
    """``arrays`` arrays of one-byte variants (`variant_array`), ``size`` bytes in all.  One
    array over 64 MiB breaks the specification's limit."""

    def build(c: Context) -> list[tuple[bytes, int]]:
        return [(c.one(b"av" * arrays, variant_array(size // 4 // arrays) * arrays), 0)]

    return build


def _flood(c: Context) -> Iterator[tuple[bytes, int]]:
    # 1,100 messages of 1 MiB, 4 descriptors each, before the reply (on a listener: Updates).
    for n in range(1100):
        kind, fields, flags = Context(None, serial=2000 + n).header(b"ay", unix_fds(4))
        if c.reply_to is not None:
            fields = [
                path("/org/qemu/Flood"),
                interface("org.qemu.Flood"),
                member("Flood"),
                signature(b"ay"),
                unix_fds(4),
            ]
            kind, flags = SIGNAL, 0
        payload = struct.pack("<I", MIB) + bytes(MIB)
        yield (message(kind, 2000 + n, fields, payload, flags=flags), 4)


def _nested_variants(c: Context) -> list[tuple[bytes, int]]:
    nested = b"\x01v\x00" * 100 + b"\x01y\x00\x07"
    return [(c.one(b"v", nested), 0)]


def _not_utf8(c: Context) -> list[tuple[bytes, int]]:
    return [(c.one(b"s", body(lambda m: m.string(b"\xff\xfe"))), 0)]


def _nul_inside(c: Context) -> list[tuple[bytes, int]]:
    return [(c.one(b"s", body(lambda m: m.string(b"a\0b"))), 0)]


def _boolean_two(c: Context) -> list[tuple[bytes, int]]:
    return [(c.one(b"b", body(lambda m: m.fixed("b", 2))), 0)]


def _array_over_limit(c: Context) -> list[tuple[bytes, int]]:
    return [(c.one(b"ay", body(lambda m: m.array(1, lambda a: a.raw(b"x"), length=(1 << 26) + 1))), 0)]


def _array_past_end(c: Context) -> list[tuple[bytes, int]]:
    return [(c.one(b"ay", body(lambda m: m.array(1, lambda a: a.raw(b"xyz"), length=300))), 0)]


def _bad_padding(c: Context) -> list[tuple[bytes, int]]:
    return [(c.one(b"yu", body(lambda m: m.byte(1).pad(4, filler=0xAA).u32(5))), 0)]


def _deep_signature(c: Context) -> list[tuple[bytes, int]]:
    return [(c.one(b"a" * 33 + b"y", body(lambda m: m.u32(0))), 0)]


def _unknown_type_code(c: Context) -> list[tuple[bytes, int]]:
    return [(c.one(b"z", b"\0"), 0)]


def _missing_field(c: Context) -> list[tuple[bytes, int]]:
    # A reply without REPLY_SERIAL; a call without MEMBER.
    if c.reply_to is not None:
        return [(message(METHOD_RETURN, c.serial, [signature(b"s")], body(lambda m: m.string(b":1.1"))), 0)]
    return [(message(METHOD_CALL, c.serial, [path(c.listener_path)], flags=NO_REPLY), 0)]


def _bad_path(c: Context) -> list[tuple[bytes, int]]:
    kind, fields, flags = c.header(b"")
    fields = [f for f in fields if f[0] != PATH] + [(PATH, b"o", lambda m: m.string(b"/a//b\n"))]
    return [(message(kind, c.serial, fields, flags=flags), 0)]


def _serial_zero(c: Context) -> list[tuple[bytes, int]]:
    kind, fields, flags = c.header(b"")
    return [(message(kind, 0, fields, flags=flags), 0)]


def _version_two(c: Context) -> list[tuple[bytes, int]]:
    return [(c.one(b"", b"", version=2), 0)]


def _trailing_bytes(c: Context) -> list[tuple[bytes, int]]:
    return [(c.one(b"u", body(lambda m: m.u32(1)) + b"\0\0\0\0"), 0)]


def _over_128_mib(c: Context) -> list[tuple[bytes, int]]:
    # Announces 200 MiB and sends 64 KiB of it.
    announced = c.one(b"ay", b"", body_length=200 * MIB)
    return [(announced + bytes(1 << 16), 0)]


def _fds_missing(c: Context) -> list[tuple[bytes, int]]:
    return [(c.one(b"", b"", unix_fds(2)), 0)]


def _fd_index(c: Context) -> list[tuple[bytes, int]]:
    return [(c.one(b"h", body(lambda m: m.fixed("h", 5)), unix_fds(1)), 1)]


def _big_endian_bad(c: Context) -> list[tuple[bytes, int]]:
    # Big-endian, with a string whose length is read as little-endian would fit: it does not.
    return [(c.one(b"s", body(lambda m: m.raw(struct.pack("<I", 3) + b"abc\0"), big=True), big=True), 0)]


def _half_sent(c: Context) -> list[tuple[bytes, int]]:
    whole = c.one(b"ay", struct.pack("<I", 100 * MIB) + bytes(1 << 16), body_length=4 + 100 * MIB)
    return [(whole, 0)]


CATALOG = [
    Hostile("empty-struct", _empty_struct, "empty struct"),
    Hostile("string-without-nul", _string_without_nul, "not terminated by a nul byte"),
    Hostile("integer-sender", _integer_sender, "header field SENDER has type 'u', not 's'"),
    Hostile("nested-variants", _nested_variants, "nested deeper than 64 levels"),
    Hostile("not-utf8", _not_utf8, "not UTF-8"),
    Hostile("nul-inside", _nul_inside, "a nul byte inside a string"),
    Hostile("boolean-two", _boolean_two, "only 0 and 1 are booleans"),
    Hostile("array-over-limit", _array_over_limit, "over the limit of 67108864"),
    Hostile("array-past-end", _array_past_end, "runs past the end of the data"),
    Hostile("bad-padding", _bad_padding, "padding that is not nul bytes"),
    Hostile("deep-signature", _deep_signature, "more than 32 arrays nested"),
    Hostile("unknown-type-code", _unknown_type_code, "not a D-Bus type code"),
    Hostile("missing-field", _missing_field, "header field"),
    Hostile("bad-path", _bad_path, "object path"),
    Hostile("serial-zero", _serial_zero, "serial 0"),
    Hostile("version-two", _version_two, "protocol version 2"),
    Hostile("trailing-bytes", _trailing_bytes, "after the last value"),
    Hostile("over-128-mib", _over_128_mib, "over the limit of 134217728"),
    Hostile("fds-missing", _fds_missing, "UNIX_FDS claims 2"),
    Hostile("fd-index", _fd_index, "file descriptor index 5"),
    Hostile("big-endian-bad", _big_endian_bad, "runs past the end of the data"),
    # The 120 MiB of av: one array over the 64 MiB the specification allows.
    Hostile("variants-120-mib", _variants(120 * MIB), "over the limit of 67108864"),
    # 120 MiB, legal: two arrays of 60 MiB.
    Hostile("variants-2x60-mib", _variants(120 * MIB, arrays=2), "over the tool's bound", legal=True),
    Hostile("variants-32-mib", _variants(32 * MIB), "over the tool's bound", legal=True),
    Hostile("flood", _flood, "", legal=True),
    Hostile("half-sent", _half_sent, "cut short", cut=True, legal=True),
]
BY_NAME = {entry.name: entry for entry in CATALOG}

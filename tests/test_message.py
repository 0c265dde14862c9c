"""The D-Bus message reader (`live/message.py`) against the specification, on bytes built here.

What jeepney writes is read back with the same values, in both byte orders; every message of the
hostile catalog (`tests/hostile.py`) is refused with a sentence saying why, or, legal but too big,
skipped as over the tool's bound; and the work a message costs is bounded by the bound on values,
whatever its size (counted in lines of Python run, not in seconds).
"""

from __future__ import annotations

import array
import struct
from typing import Any

import pytest
from jeepney import DBusAddress, new_method_call, new_signal
from jeepney.low_level import Endianness

from sphinxext_qemudbus.live.message import (
    MAX_VALUES,
    MEMBER,
    METHOD_CALL,
    PATH,
    SIGNAL,
    MessageError,
    OverBound,
    message_size,
    read_message,
)

from .helpers import count_work
from .hostile import (
    CATALOG,
    METHOD_RETURN,
    SENDER,
    Context,
    Hostile,
    Marshal,
    body,
    interface,
    member,
    message,
    path,
    reply_serial,
    signature,
)

ADDRESS = DBusAddress("/org/qemu/Display1/VM", "org.qemu", "org.qemu.Display1.VM")
VALUES: list[tuple[str, tuple[Any, ...]]] = [
    ("", ()),
    ("s", ("héllo ☃",)),
    ("ybnqiuxtd", (255, True, -2, 3, -4, 5, -6, 7, 1.5)),
    ("a{sv}", ({"Width": ("u", 640), "Names": ("as", ["a", "b"]), "Nested": ("v", ("y", 3))},)),
    ("(iu)ai", ((1, 2), [1, -2, 3])),
    ("ayab", (b"\x00\xffdata", [True, False, True])),
    ("oga(sv)", ("/org/qemu", "a{sv}", [("x", ("d", 2.5))])),
    ("aa{sv}a{ua(ss)}", ([{"k": ("y", 3)}, {}], {7: [("p", "q")]})),
    ("at", ([1 << 63, 0],)),
]


def plain(value: Any) -> Any:
    """Values as jeepney gives them: arrays as lists, byte arrays as bytes."""
    if isinstance(value, memoryview):
        return value.tobytes()
    if isinstance(value, array.array):
        return list(value)
    if isinstance(value, (list, tuple)):
        return type(value)(plain(item) for item in value)
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize("endianness", [Endianness.little, Endianness.big], ids=["little", "big"])
@pytest.mark.parametrize(("sig", "values"), VALUES, ids=[sig or "empty" for sig, _ in VALUES])
def test_what_jeepney_writes_reads_back(sig: str, values: tuple[Any, ...], endianness: Endianness) -> None:
    call = new_method_call(ADDRESS, "Do", sig or None, values)
    signal = new_signal(ADDRESS, "Done", sig or None, values)
    for written, kind, name in ((call, METHOD_CALL, "Do"), (signal, SIGNAL, "Done")):
        written.header.endianness = endianness
        data = written.serialise(serial=7)
        assert message_size(data[:16]) == len(data)
        read = read_message(data)
        assert (read.kind, read.field(MEMBER), read.field(PATH)) == (kind, name, "/org/qemu/Display1/VM")
        assert (read.serial, read.signature) == (7, sig)
        assert [plain(v) for v in read.body] == list(plain(values))


@pytest.mark.parametrize("entry", [e for e in CATALOG if not e.legal], ids=lambda e: e.name)
@pytest.mark.parametrize("where", ["reply", "call"])
def test_every_malformed_message_is_refused_with_its_reason(entry: Hostile, where: str) -> None:
    context = Context(7 if where == "reply" else None)
    data, fds = next(iter(entry.build(context)))
    # The size first, as the reader does: a message over the limit is refused unread.
    with pytest.raises(MessageError) as refused:
        read_whole(data, fds)
    assert not isinstance(refused.value, OverBound)
    assert entry.words in str(refused.value)
    assert "\n" not in str(refused.value)


def read_whole(data: bytes, fds: int) -> None:
    if message_size(data[:16]) == len(data):
        read_message(data, fds)


def refused_over_bound(data: bytes) -> None:
    with pytest.raises(OverBound):
        read_message(data)


@pytest.mark.parametrize("name", ["variants-2x60-mib", "variants-32-mib"])
def test_a_legal_message_over_the_bound_is_skipped_in_bounded_work(name: str) -> None:
    data, _ = next(iter(next(e for e in CATALOG if e.name == name).build(Context(7))))
    with pytest.raises(OverBound) as skipped:
        read_message(data)
    assert skipped.value.kind == METHOD_RETURN
    assert skipped.value.fields[5] == 7  # what the header said is kept: the reply it was


def variants(count: int) -> bytes:
    payload = struct.pack("<I", 4 * count) + b"\x01y\x00\x07" * count
    return message(METHOD_RETURN, 3, [reply_serial(1), signature(b"av")], payload)


def test_the_work_of_one_message_is_bounded_whatever_its_size() -> None:
    small, large = variants(2 * MAX_VALUES), variants(16 * MAX_VALUES)
    small_work = count_work(lambda: refused_over_bound(small))
    large_work = count_work(lambda: refused_over_bound(large))
    assert large_work <= 1.05 * small_work, (small_work, large_work)
    # An array of fixed-size values is checked in one step, whatever its length.
    one = count_work(lambda: read_message(message(METHOD_RETURN, 3, [reply_serial(1), signature(b"ay")], array_of(16))))
    many = count_work(
        lambda: read_message(message(METHOD_RETURN, 3, [reply_serial(1), signature(b"ay")], array_of(1 << 24)))
    )
    assert many == one


def array_of(size: int) -> bytes:
    return struct.pack("<I", size) + bytes(size)


def header_only(*fields: Any, kind: int = METHOD_RETURN) -> bytes:
    return message(kind, 3, list(fields))


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (header_only(reply_serial(1), reply_serial(2)), "REPLY_SERIAL appears twice"),
        (header_only(reply_serial(1), (0, b"u", lambda m: m.u32(1))), "header field code 0"),
        (header_only(reply_serial(0)), "REPLY_SERIAL 0"),
        (header_only(reply_serial(1), interface("org")), "needs at least two"),
        (header_only(reply_serial(1), (SENDER, b"s", lambda m: m.string(b"x" * 300))), "longer than 255"),
        (header_only(reply_serial(1), member("a.b")), "must not contain '.'"),
        (header_only(reply_serial(1), (20, b"ii", lambda m: m.u32(1).u32(2))), "not one complete type"),
        (header_only(path("/a"), member("M"), kind=SIGNAL), "without the INTERFACE header field"),
        (message(METHOD_RETURN, 3, [reply_serial(1)], b"\0\0\0\0"), "no SIGNATURE header field"),
        (
            message(
                METHOD_RETURN, 3, [reply_serial(1), signature(b"v")], body(lambda m: m.signature(b"ii").u32(1).u32(2))
            ),
            "not one complete type",
        ),
        (
            message(METHOD_RETURN, 3, [reply_serial(1), signature(b"v")], body(lambda m: m.signature(b""))),
            "not one complete type",
        ),
        (
            message(METHOD_RETURN, 3, [reply_serial(1), signature(b"g")], body(lambda m: m.signature(b"a{vs}"))),
            "dict key must be a basic type",
        ),
        (
            message(METHOD_RETURN, 3, [reply_serial(1), signature(b"o")], body(lambda m: m.string(b"/a/"))),
            "must not end with '/'",
        ),
        (message(0, 3, [reply_serial(1)]), "message type 0"),
        (b"l\x01\x00\x01" + bytes(12), "serial 0"),
        (b"X" * 16, "not a D-Bus message"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_header_and_value_rules(data: bytes, words: str) -> None:
    with pytest.raises(MessageError) as refused:
        read_message(data)
    assert words in str(refused.value)


def test_what_a_later_specification_may_add_is_accepted() -> None:
    # An unknown header field code is ignored; an unknown message type is read (and then ignored
    # by every caller).
    read = read_message(header_only(reply_serial(1), (42, b"as", lambda m: m.array(4, lambda a: a.string(b"x")))))
    assert read.fields == {5: 1}
    assert read_message(message(9, 3, [])).kind == 9


def test_nesting_counts_variants_up_to_64() -> None:
    def nested(depth: int) -> bytes:
        # depth - 1 variants, each in the one before, around a byte: depth containers in all.
        payload = b"\x01v\x00" * (depth - 1) + b"\x01y\x00\x07"
        return message(METHOD_RETURN, 3, [reply_serial(1), signature(b"v")], payload)

    assert read_message(nested(64)).body
    with pytest.raises(MessageError, match="nested deeper than 64"):
        read_message(nested(65))


def test_descriptor_indexes_and_counts() -> None:
    fds = (9, b"u", lambda m: m.u32(2))
    data = message(METHOD_RETURN, 3, [reply_serial(1), signature(b"hah"), fds], body(h_and_array))
    assert read_message(data, 2).body[0] == 1  # an index into the message's descriptors
    assert read_message(data, 5).fds == 2  # it claims two of those that arrived
    with pytest.raises(MessageError, match="UNIX_FDS claims 2 file descriptor"):
        read_message(data, 1)


def h_and_array(m: Marshal) -> None:
    m.fixed("h", 1)
    m.array(4, lambda a: a.fixed("h", 0).fixed("h", 1))


def test_bodies_are_decoded_only_when_asked() -> None:
    data = message(METHOD_RETURN, 3, [reply_serial(1), signature(b"s")], body(lambda m: m.string(b"x")))
    read = read_message(data)
    assert read._body is None
    assert read.body == ("x",)

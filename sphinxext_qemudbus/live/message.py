"""D-Bus messages as the specification defines them, validated before anything decodes them.

A peer-to-peer connection (a display listener's socket) has no bus daemon in front of it, and a
fake bus has none either: whatever the peer sends reaches the tool as it is.  So every message is
read here the way the D-Bus specification ("Message Protocol", "Marshaling") says, and refused with
a sentence saying where and why when it breaks a rule:

* the fixed header: byte order ``l`` or ``B``, a message type other than 0, protocol version 1, a
  serial other than 0, a size within the specification's limit of 128 MiB;
* the header fields (``a(yv)``): each known field at most once, with the type the specification
  gives it (an integer ``SENDER`` is refused), names valid as names, the fields each message type
  requires, a reply serial other than 0;
* the body, against the ``SIGNATURE`` field: the signature grammar (no empty struct, dict entries
  only in arrays, at most 32 arrays and 32 structs nested), then every value: alignment padding
  of nul bytes, strings of valid UTF-8 with no nul inside and one after, object paths and
  signatures valid, booleans 0 or 1, arrays at most 64 MiB and within the body, variants holding
  one complete type, containers and variants nested at most 64 deep, descriptor indexes within
  ``UNIX_FDS``, and not a byte left over.

Validating never builds a value, and the work it does is bounded per message: at most
`MAX_VALUES` values (an array of fixed-size numbers counts once: it is checked in one step), so a
128 MiB body of one-byte variants costs a bounded fraction of a second and is refused, spec-valid
as it is, as over the tool's bound.  Decoding (`Message.body`) happens only when a caller asks,
after validation, and builds at most those values: byte arrays as read-only views of the message,
other fixed-size arrays as `array.array`, strings as `str`.  A caller that expects a signature
compares `Message.signature` first and never decodes a body it would not use.

Only what a peer sends is read here; what the tool sends is written by jeepney.
"""

from __future__ import annotations

import array
import codecs
import functools
import struct
import sys
from collections.abc import Callable
from typing import Any, Union

from ..model.names import bus_name_error, interface_name_error, member_name_error, object_path_error
from ..model.signature import SignatureError, Type, parse_signature

#: The specification's limit on one message (2^27 bytes).
MAX_MESSAGE = 1 << 27
#: The specification's limit on one array's data (2^26 bytes).
MAX_ARRAY = 1 << 26
#: Containers (arrays, structs, dict entries) and variants nested along one path.
MAX_DEPTH = 64
#: The tool's bound on the values one message may hold (validated, and then at most decoded).
MAX_VALUES = 1 << 17
#: File descriptors one message may claim (``UNIX_FDS``).
MAX_FDS = 64
#: Strings longer than this are checked for UTF-8 in pieces of this size, so that checking a
#: 100 MiB string never builds a 400 MiB one.
_UTF8_PIECE = 1 << 20

METHOD_CALL, METHOD_RETURN, ERROR, SIGNAL = 1, 2, 3, 4
NO_REPLY_EXPECTED = 0x1
# Header field codes (the specification's numbers).
PATH, INTERFACE, MEMBER, ERROR_NAME, REPLY_SERIAL, DESTINATION, SENDER, SIGNATURE, UNIX_FDS = range(1, 10)
FIELD_NAMES = {
    PATH: "PATH",
    INTERFACE: "INTERFACE",
    MEMBER: "MEMBER",
    ERROR_NAME: "ERROR_NAME",
    REPLY_SERIAL: "REPLY_SERIAL",
    DESTINATION: "DESTINATION",
    SENDER: "SENDER",
    SIGNATURE: "SIGNATURE",
    UNIX_FDS: "UNIX_FDS",
}
_FIELD_TYPES = {
    PATH: "o",
    INTERFACE: "s",
    MEMBER: "s",
    ERROR_NAME: "s",
    REPLY_SERIAL: "u",
    DESTINATION: "s",
    SENDER: "s",
    SIGNATURE: "g",
    UNIX_FDS: "u",
}
_REQUIRED = {
    METHOD_CALL: (PATH, MEMBER),
    METHOD_RETURN: (REPLY_SERIAL,),
    ERROR: (ERROR_NAME, REPLY_SERIAL),
    SIGNAL: (PATH, INTERFACE, MEMBER),
}
_KIND_NAMES = {METHOD_CALL: "method call", METHOD_RETURN: "method return", ERROR: "error", SIGNAL: "signal"}
_NAME_RULES: dict[int, Callable[[str], str | None]] = {
    INTERFACE: interface_name_error,
    MEMBER: member_name_error,
    ERROR_NAME: interface_name_error,  # error names follow the rules for interface names
    DESTINATION: bus_name_error,
    SENDER: bus_name_error,
}

Buffer = Union[bytes, bytearray]

_ALIGNMENT = {"y": 1, "b": 4, "n": 2, "q": 2, "i": 4, "u": 4, "x": 8, "t": 8, "d": 8, "h": 4}
_ALIGNMENT.update({"s": 4, "o": 4, "g": 1, "v": 1, "a": 4, "(": 8, "{": 8})
# Fixed-size types: (struct code, array typecode).  An array of these is checked in one step.
_FIXED = {"n": ("h", "h"), "q": ("H", "H"), "i": ("i", "i"), "u": ("I", "I"), "x": ("q", "q"), "t": ("Q", "Q")}
_FIXED.update({"d": ("d", "d"), "b": ("I", "I"), "h": ("I", "I")})
#: Byte order ('<' or '>') → type code → its `struct.Struct`.
_ORDERS: dict[str, dict[str, struct.Struct]] = {
    order: {code: struct.Struct(order + packed) for code, (packed, _) in _FIXED.items()} for order in "<>"
}
_U32 = {order: struct.Struct(order + "I") for order in _ORDERS}
_NATIVE = "<" if sys.byteorder == "little" else ">"


class MessageError(ValueError):
    """A message that breaks the specification; the text says what, and where (a byte offset in
    the message)."""


class OverBound(MessageError):
    """A message that may be legal but holds more values than the tool's bound: skipped, not
    checked.  What its header said is kept when the header was read (``kind`` 0 otherwise)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.kind = 0
        self.fields: dict[int, Any] = {}
        self.fds = 0


def message_size(start: Buffer) -> int:
    """The whole size of the message whose first 16 bytes are ``start``, from its fixed header,
    which is checked first: nothing of a message is buffered before its size is known to be
    within the specification's limit.  Raises `MessageError`."""
    order = _order(start[0])
    if start[3] != 1:
        raise MessageError(f"protocol version {start[3]}, not 1")
    body_length: int
    fields_length: int
    body_length, _, fields_length = struct.unpack_from(order + "III", start, 4)
    if fields_length > MAX_ARRAY:
        raise MessageError(f"the header fields array announces {fields_length} bytes, over the limit of {MAX_ARRAY}")
    size = _aligned(16 + fields_length, 8) + body_length
    if size > MAX_MESSAGE:
        raise MessageError(f"the message announces {size} bytes, over the limit of {MAX_MESSAGE}")
    return size


def _order(byte: int) -> str:
    if byte == 0x6C:  # 'l'
        return "<"
    if byte == 0x42:  # 'B'
        return ">"
    raise MessageError(f"byte order {bytes([byte])!r} is neither 'l' nor 'B': not a D-Bus message")


def _aligned(position: int, alignment: int) -> int:
    return position + (-position % alignment)


class Message:
    """One validated message: its header, and its body decoded on demand (`body`)."""

    __slots__ = ("_body", "_body_start", "_buffer", "_order", "body_length", "fds", "fields", "flags", "kind", "serial")

    def __init__(
        self,
        kind: int,
        flags: int,
        serial: int,
        fields: dict[int, Any],
        buffer: Buffer,
        body_start: int,
        order: str,
        fds: int,
    ) -> None:
        self.kind = kind
        self.flags = flags
        self.serial = serial
        #: The known header fields, by code (unknown ones are validated, then ignored).
        self.fields = fields
        self._buffer = buffer
        self._body_start = body_start
        self._order = order
        self.body_length = len(buffer) - body_start
        #: How many file descriptors came with the message (``UNIX_FDS``).
        self.fds = fds
        self._body: tuple[Any, ...] | None = None

    def field(self, code: int) -> str | None:
        value = self.fields.get(code)
        return value if isinstance(value, str) else None

    @property
    def signature(self) -> str:
        return self.field(SIGNATURE) or ""

    @property
    def reply_serial(self) -> int | None:
        value = self.fields.get(REPLY_SERIAL)
        return value if isinstance(value, int) else None

    @property
    def body(self) -> tuple[Any, ...]:
        """The body's values, decoded on first use: byte arrays as read-only `memoryview`, other
        arrays of fixed-size values as `array.array`, variants as (signature, value), ``h`` as
        the index of the descriptor in the message's list."""
        if self._body is None:
            walker = _Walker(self._buffer, self._order, self.fds, build=True)
            types = _signature_types(self.signature)
            _, values = walker.sequence(types, self._body_start, 0)
            self._body = tuple(values)
        return self._body

    def describe(self) -> str:
        """What the message is, for a finding: ``method call org.x.I.M on /p`` and the like."""
        kind = _KIND_NAMES.get(self.kind, f"message of type {self.kind}")
        interface, member = self.field(INTERFACE), self.field(MEMBER)
        name = ".".join(part for part in (interface, member) if part)
        path = self.field(PATH)
        return " ".join(part for part in (kind, name, f"on {path}" if path else "") if part)

    def __repr__(self) -> str:
        return f"Message({self.describe()}, signature={self.signature!r})"


def read_message(buffer: Buffer, available: int = 0) -> Message:
    """Validate the message that ``buffer`` holds exactly, ``available`` file descriptors having
    arrived with it and not yet been claimed (it claims the first ``UNIX_FDS`` of them), and return
    it.  Raises `MessageError` saying what is wrong, `OverBound` when it holds too many values."""
    if len(buffer) < 16:
        raise MessageError(f"{len(buffer)} bytes are not a message (a header alone is 16)")
    size = message_size(buffer)
    if size != len(buffer):
        raise MessageError(f"the header announces {size} bytes, the message holds {len(buffer)}")
    order = _order(buffer[0])
    kind, flags = buffer[1], buffer[2]
    body_length, serial, fields_length = struct.unpack_from(order + "III", buffer, 4)
    if kind == 0:
        raise MessageError("message type 0 (INVALID)")
    if serial == 0:
        raise MessageError("serial 0: a message's serial must not be zero")
    walker = _Walker(buffer, order, 0, build=False)
    walker.end = 16 + fields_length
    fields = walker.header_fields(16, 16 + fields_length)
    body_start = _aligned(16 + fields_length, 8)
    walker.end = body_start
    walker.padding(16 + fields_length, body_start)
    for code in _REQUIRED.get(kind, ()):
        if code not in fields:
            raise MessageError(f"a {_KIND_NAMES[kind]} without the {FIELD_NAMES[code]} header field")
    if fields.get(REPLY_SERIAL) == 0 and kind in (METHOD_RETURN, ERROR):
        raise MessageError("REPLY_SERIAL 0: no message has serial 0")
    fds = fields.get(UNIX_FDS, 0)
    if fds > MAX_FDS:
        raise MessageError(f"UNIX_FDS claims {fds} file descriptors, over the limit of {MAX_FDS}")
    if fds > available:
        raise MessageError(f"UNIX_FDS claims {fds} file descriptor(s); {available} arrived")
    signature = fields.get(SIGNATURE, "")
    if not signature and body_length:
        raise MessageError(f"a body of {body_length} bytes and no SIGNATURE header field")
    types = _signature_types(signature)
    body = _Walker(buffer, order, fds, build=False, budget=walker.budget)
    try:
        end, _ = body.sequence(types, body_start, 0)
    except OverBound as error:
        error.kind, error.fields, error.fds = kind, fields, fds
        raise
    if end != len(buffer):
        raise MessageError(f"{len(buffer) - end} byte(s) after the last value of signature ({signature})")
    return Message(kind, flags, serial, fields, buffer, body_start, order, fds)


@functools.lru_cache(maxsize=1024)
def _signature_types(signature: str) -> tuple[Type, ...]:
    """The complete types of a (valid) signature; a peer repeats a few signatures, and an invalid
    one is not cached (the grammar check of 255 bytes is cheap)."""
    return parse_signature(signature)


def _signature_problem(text: str) -> str | None:
    try:
        _signature_types(text)
    except SignatureError as error:
        return f"invalid signature {text!r}: {error.message}"
    return None


class _Walker:
    """One pass over marshalled values in ``buffer``: validation (``build`` False: no value is
    made) or decoding.  Positions are offsets in the whole message, as alignment is."""

    __slots__ = ("big", "budget", "buffer", "build", "end", "fds", "order", "structs", "u32")

    def __init__(self, buffer: Buffer, order: str, fds: int, build: bool, budget: int = MAX_VALUES) -> None:
        self.buffer = buffer
        self.order = order
        self.structs = _ORDERS[order]
        self.u32 = _U32[order]
        self.fds = fds
        self.build = build
        self.budget = budget
        self.end = len(buffer)

    def fail(self, position: int, what: str) -> MessageError:
        return MessageError(f"at byte {position}: {what}")

    def padding(self, position: int, aligned: int) -> None:
        if aligned > self.end:
            raise self.fail(position, "the data ends where alignment padding was expected")
        if aligned > position and any(self.buffer[position:aligned]):
            raise self.fail(position, "alignment padding that is not nul bytes")

    def align(self, position: int, alignment: int) -> int:
        aligned = position + (-position % alignment)
        if aligned != position:
            self.padding(position, aligned)
        return aligned

    def count(self, position: int) -> None:
        self.budget -= 1
        if self.budget < 0:
            size = len(self.buffer)
            raise OverBound(f"a message of {size} bytes holding more than {MAX_VALUES} values, over the tool's bound")

    # --- the header ------------------------------------------------------------------------

    def header_fields(self, start: int, end: int) -> dict[int, Any]:
        fields: dict[int, Any] = {}
        position = start
        build, self.build = self.build, True
        try:
            while position < end:
                position = self.align(position, 8)
                if position >= end:
                    raise self.fail(position, "the header fields array ends inside its padding")
                self.count(position)
                code = self.buffer[position]
                text, position = self.signature_text(position + 1)
                if not _single(text):
                    raise self.fail(position, f"header field {code}'s variant holds {text!r}, not one complete type")
                (kind,) = _signature_types(text)
                if code == 0:
                    raise self.fail(position, "header field code 0 (INVALID)")
                expected = _FIELD_TYPES.get(code)
                if expected is not None and text != expected:
                    name = FIELD_NAMES[code]
                    raise self.fail(position, f"header field {name} has type {text!r}, not {expected!r}")
                at = position
                position, value = self.value(kind, position, 1)
                if expected is None:
                    continue  # a field of a later version of the specification: accepted, ignored
                if code in fields:
                    raise self.fail(at, f"header field {FIELD_NAMES[code]} appears twice")
                rule = _NAME_RULES.get(code)
                if rule is not None and (problem := _name_problem(rule, value)):
                    raise self.fail(at, f"header field {FIELD_NAMES[code]}: {problem}")
                fields[code] = value
        finally:
            self.build = build
        if position != end:
            raise self.fail(position, "the header fields array does not end where its length says")
        return fields

    # --- values ----------------------------------------------------------------------------

    def sequence(self, types: tuple[Type, ...], position: int, depth: int) -> tuple[int, list[Any]]:
        values: list[Any] = []
        for kind in types:
            position, value = self.value(kind, position, depth)
            if self.build:
                values.append(value)
        return position, values

    def value(self, kind: Type, position: int, depth: int) -> tuple[int, Any]:
        self.count(position)
        code = kind.code[0]
        if kind.kind == "basic":
            return self.basic(code, position)
        if depth >= MAX_DEPTH:
            raise self.fail(position, f"containers and variants nested deeper than {MAX_DEPTH} levels")
        if code == "v":
            return self.variant(position, depth)
        if code == "(":
            position = self.align(position, 8)
            values: list[Any] = []
            for child in kind.children:
                position, value = self.value(child, position, depth + 1)
                if self.build:
                    values.append(value)
            return position, tuple(values) if self.build else None
        return self.array(kind, position, depth)

    def basic(self, code: str, position: int) -> tuple[int, Any]:
        buffer = self.buffer
        if code == "y":
            if position >= self.end:
                raise self.fail(position, "the data ends where a byte was expected")
            return position + 1, buffer[position]
        if code in "so":
            return self.string(code, position)
        if code == "g":
            text, position = self.signature_text(position)
            if (problem := _signature_problem(text)) is not None:
                raise self.fail(position, problem)
            return position, text
        packer = self.structs[code]
        position = self.align(position, packer.size)
        if position + packer.size > self.end:
            raise self.fail(position, f"the data ends inside a value of type {code!r}")
        (value,) = packer.unpack_from(buffer, position)
        if code == "b" and value > 1:
            raise self.fail(position, f"boolean {value}: only 0 and 1 are booleans")
        if code == "h" and value >= self.fds:
            raise self.fail(position, f"file descriptor index {value}, but {self.fds} came with the message")
        return position + packer.size, (bool(value) if code == "b" else value)

    def string(self, code: str, position: int) -> tuple[int, Any]:
        position = self.align(position, 4)
        if position + 4 > self.end:
            raise self.fail(position, "the data ends inside a string's length")
        (length,) = self.u32.unpack_from(self.buffer, position)
        start = position + 4
        stop = start + length
        if stop >= self.end:
            raise self.fail(position, f"a string of {length} bytes runs past the end of the data")
        if code == "o":
            raw = bytes(self.buffer[start:stop])
            if not raw.isascii():
                raise self.fail(start, "an object path with bytes other than [A-Za-z0-9_/]")
            path = raw.decode("ascii")
            if (problem := _path_problem(path)) is not None:
                raise self.fail(position, problem)
            if self.buffer[stop] != 0:
                raise self.fail(stop, "a string not terminated by a nul byte")
            return stop + 1, path if self.build else None
        return stop + 1, self.text(start, stop)

    def text(self, start: int, stop: int) -> str | None:
        """The UTF-8 text between ``start`` and ``stop``, checked: no nul inside, one after, valid
        UTF-8.  Built only when decoding."""
        buffer = self.buffer
        if buffer[stop] != 0:
            raise self.fail(stop, "a string not terminated by a nul byte")
        inside = buffer.find(b"\0", start, stop)
        if inside >= 0:
            raise self.fail(inside, "a nul byte inside a string")
        if self.build or stop - start <= _UTF8_PIECE:
            return self.decode(start, stop)
        decoder = codecs.getincrementaldecoder("utf-8")()
        view = memoryview(buffer)
        try:
            for piece in range(start, stop, _UTF8_PIECE):
                decoder.decode(view[piece : min(piece + _UTF8_PIECE, stop)], final=piece + _UTF8_PIECE >= stop)
        except UnicodeDecodeError as error:
            raise self.fail(start, f"a string that is not UTF-8 ({error.reason})") from None
        finally:
            view.release()
        return None

    def decode(self, start: int, stop: int) -> str:
        try:
            return codecs.utf_8_decode(memoryview(self.buffer)[start:stop], "strict", True)[0]
        except UnicodeDecodeError as error:
            raise self.fail(start + error.start, f"a string that is not UTF-8 ({error.reason})") from None

    def signature_text(self, position: int) -> tuple[str, int]:
        """A signature's text (not yet checked against the grammar) and the position after it."""
        if position >= self.end:
            raise self.fail(position, "the data ends where a signature was expected")
        length = self.buffer[position]
        stop = position + 1 + length
        if stop >= self.end:
            raise self.fail(position, f"a signature of {length} bytes runs past the end of the data")
        if self.buffer[stop] != 0:
            raise self.fail(stop, "a signature not terminated by a nul byte")
        raw = bytes(self.buffer[position + 1 : stop])
        if not raw.isascii():
            raise self.fail(position, f"a signature with bytes that are not type codes: {raw!r}")
        return raw.decode("ascii"), stop + 1

    def variant(self, position: int, depth: int) -> tuple[int, Any]:
        start = position
        text, position = self.signature_text(position)
        if (problem := _signature_problem(text)) is not None:
            raise self.fail(start, f"a variant with an {problem}")
        types = _signature_types(text)
        if len(types) != 1:
            raise self.fail(start, f"a variant holds {text!r}, not one complete type")
        position, value = self.value(types[0], position, depth + 1)
        return position, (text, value) if self.build else None

    def array(self, kind: Type, position: int, depth: int) -> tuple[int, Any]:
        position = self.align(position, 4)
        if position + 4 > self.end:
            raise self.fail(position, "the data ends inside an array's length")
        (length,) = self.u32.unpack_from(self.buffer, position)
        if length > MAX_ARRAY:
            raise self.fail(position, f"an array of {length} bytes, over the limit of {MAX_ARRAY}")
        dictionary = kind.kind == "dict"
        element = kind.children[0]
        first = self.align(position + 4, 8 if dictionary else _ALIGNMENT[element.code[0]])
        stop = first + length
        if stop > self.end:
            raise self.fail(position, f"an array of {length} bytes runs past the end of the data")
        if not dictionary and element.kind == "basic" and (element.code in _FIXED or element.code == "y"):
            return stop, self.fixed_array(element.code, first, stop)
        items: list[Any] = []
        entry = kind.children if dictionary else ()
        here = first
        while here < stop:
            if dictionary:
                here = self.align(here, 8)
                self.count(here)
                if depth + 1 >= MAX_DEPTH:
                    raise self.fail(here, f"containers and variants nested deeper than {MAX_DEPTH} levels")
                here, key = self.value(entry[0], here, depth + 2)
                here, value = self.value(entry[1], here, depth + 2)
                if self.build:
                    items.append((key, value))
            else:
                here, value = self.value(element, here, depth + 1)
                if self.build:
                    items.append(value)
        if here != stop:
            raise self.fail(here, f"the last element of an array ends {here - stop} byte(s) past the array's length")
        if not self.build:
            return stop, None
        return stop, dict(items) if dictionary else items

    def fixed_array(self, code: str, start: int, stop: int) -> Any:
        """An array of fixed-size values, checked in one step (booleans 0 or 1, descriptor
        indexes within range) and decoded as one object."""
        length = stop - start
        buffer = self.buffer
        if code == "y":
            return memoryview(buffer).toreadonly()[start:stop] if self.build else None
        size = self.structs[code].size
        if length % size:
            raise self.fail(start, f"an array of {length} bytes does not hold whole values of type {code!r}")
        if code in "bh" and length:
            # Each value is 0 or 1 (a boolean) or below the number of descriptors: its low byte
            # is, and its three other bytes are nul.
            low = 0 if self.order == "<" else 3
            allowed = bytes(range(2 if code == "b" else min(self.fds, 256)))
            lanes = [buffer[start + lane : stop : 4] for lane in range(4)]
            if lanes[low].translate(None, allowed) or any(
                lanes[lane].count(0) != len(lanes[lane]) for lane in range(4) if lane != low
            ):
                what = "a boolean other than 0 or 1" if code == "b" else "a file descriptor index out of range"
                raise self.fail(start, f"an array holding {what}")
        if not self.build:
            return None
        values = array.array(_FIXED[code][1])
        values.frombytes(memoryview(buffer)[start:stop])  # no copy of the slice first
        if self.order != _NATIVE:
            values.byteswap()
        return values


def _name_problem(rule: Callable[[str], str | None], name: str) -> str | None:
    """``rule``'s verdict on ``name``; the rules cache what they see, so a name too long or not
    ASCII (never valid) is refused before it could be kept in a cache."""
    if len(name) > 255 or not name.isascii():
        return "not a valid name: longer than 255 bytes or not ASCII"
    return rule(name)


def _path_problem(path: str) -> str | None:
    """`object_path_error`, whose cache never keeps a long path (object paths have no limit)."""
    return object_path_error(path) if len(path) <= 1024 else object_path_error.__wrapped__(path)


def _single(text: str) -> bool:
    """Whether ``text`` is one complete type (the header field variants must hold one)."""
    try:
        return len(_signature_types(text)) == 1
    except SignatureError:
        return False

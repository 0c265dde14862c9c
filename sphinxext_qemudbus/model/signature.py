"""D-Bus type signatures: the spec's full grammar and a human-readable description.

The grammar (D-Bus specification, "Type System")::

    signature     := complete_type*                 at most 255 bytes
    complete_type := basic | "v" | "a" complete_type
                   | "a{" basic complete_type "}"   dict entry, only directly inside an array
                   | "(" complete_type+ ")"          no empty struct
    basic         := y b n q i u x t d h s o g

Nesting is limited to 32 arrays and 32 structs (dict entries count as structs), counted along the
path from the outermost type, not only over consecutive ``a`` codes as libdbus does.
"""

from __future__ import annotations

import functools

from ..diagnostics.frozen import record

MAX_SIGNATURE_LENGTH = 255
MAX_DEPTH = 32

BASIC_TYPES = "ybnqiuxtdhsog"

_BASIC_NAMES = {
    "y": "byte",
    "b": "boolean",
    "n": "int16",
    "q": "uint16",
    "i": "int32",
    "u": "uint32",
    "x": "int64",
    "t": "uint64",
    "d": "double",
    "h": "Unix file descriptor",
    "s": "string",
    "o": "object path",
    "g": "signature",
    "v": "variant",
}

# Type codes the spec reserves for bindings or for future use; never valid in a signature.
_RESERVED = {
    "r": "'r' is reserved for bindings (write a struct as '(...)')",
    "e": "'e' is reserved for bindings (write a dict entry as 'a{...}')",
    "m": "'m' is reserved for a future 'maybe' type",
    "*": "'*' is reserved for bindings",
    "?": "'?' is reserved for bindings",
    "@": "'@' is reserved for bindings",
    "&": "'&' is reserved for bindings",
    "^": "'^' is reserved for bindings",
}


class SignatureError(ValueError):
    """A signature that breaks the grammar; ``position`` is the 0-based offset of the problem."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


@record(frozen=True)
class Type:
    """One complete type.  ``kind`` is basic, variant, array, dict or struct."""

    code: str
    kind: str
    children: tuple[Type, ...] = ()

    @property
    def is_basic(self) -> bool:
        return self.kind == "basic"

    def contains(self, code: str) -> bool:
        """Whether the single-character type ``code`` occurs anywhere inside this type."""
        return code in self.code


class _Parser:
    __slots__ = ("arrays", "pos", "sig", "structs")

    def __init__(self, sig: str) -> None:
        self.sig = sig
        self.pos = 0
        self.arrays = 0
        self.structs = 0

    def error(self, message: str, position: int | None = None) -> SignatureError:
        return SignatureError(message, self.pos if position is None else position)

    def complete_type(self) -> Type:
        sig = self.sig
        start = self.pos
        if start >= len(sig):
            raise self.error("signature ends where a type was expected")
        c = sig[start]
        if c in _BASIC_NAMES:
            self.pos += 1
            return Type(c, "variant" if c == "v" else "basic")
        if c == "a":
            return self.array(start)
        if c == "(":
            return self.struct(start)
        if c == ")":
            raise self.error("unexpected ')' where a type was expected")
        if c == "{":
            raise self.error("dict entry outside an array ('{' must follow 'a')")
        if c == "}":
            raise self.error("unexpected '}' where a type was expected")
        if c in _RESERVED:
            raise self.error(_RESERVED[c])
        raise self.error(f"{c!r} is not a D-Bus type code")

    def array(self, start: int) -> Type:
        self.arrays += 1
        if self.arrays > MAX_DEPTH:
            raise self.error(f"more than {MAX_DEPTH} arrays nested", start)
        self.pos += 1
        if self.pos >= len(self.sig):
            raise self.error("array with no element type", start)
        if self.sig[self.pos] == "{":
            element = self.dict_entry()
            kind = "dict"
        else:
            if self.sig[self.pos] in ")}":
                raise self.error("array with no element type", start)
            element = self.complete_type()
            kind = "array"
        self.arrays -= 1
        return Type(self.sig[start : self.pos], kind, element.children if kind == "dict" else (element,))

    def dict_entry(self) -> Type:
        start = self.pos
        self.structs += 1
        if self.structs > MAX_DEPTH:
            raise self.error(f"more than {MAX_DEPTH} structs nested (dict entries count)", start)
        self.pos += 1
        sig = self.sig
        if self.pos < len(sig) and sig[self.pos] == "}":
            raise self.error("dict entry needs exactly two types, a basic key and a value", start)
        if self.pos >= len(sig):
            raise self.error("unclosed dict entry", start)
        key_pos = self.pos
        key = self.complete_type()
        if not key.is_basic:
            raise self.error(
                f"dict key must be a basic type, not {key.code!r} (variants and containers cannot be keys)",
                key_pos,
            )
        if self.pos >= len(sig):
            raise self.error("unclosed dict entry", start)
        if sig[self.pos] == "}":
            raise self.error("dict entry needs exactly two types, a basic key and a value", start)
        value = self.complete_type()
        if self.pos >= len(sig):
            raise self.error("unclosed dict entry", start)
        if sig[self.pos] != "}":
            if sig[self.pos] == ")":
                raise self.error("unexpected ')' inside a dict entry")
            raise self.error("dict entry needs exactly two types, a basic key and a value", start)
        self.pos += 1
        self.structs -= 1
        return Type(sig[start : self.pos], "dict_entry", (key, value))

    def struct(self, start: int) -> Type:
        self.structs += 1
        if self.structs > MAX_DEPTH:
            raise self.error(f"more than {MAX_DEPTH} structs nested", start)
        self.pos += 1
        sig = self.sig
        fields: list[Type] = []
        while True:
            if self.pos >= len(sig):
                raise self.error("unclosed struct: '(' has no matching ')'", start)
            if sig[self.pos] == ")":
                break
            if sig[self.pos] == "}":
                raise self.error("unexpected '}' inside a struct")
            fields.append(self.complete_type())
        if not fields:
            raise self.error("empty struct '()' is not allowed", start)
        self.pos += 1
        self.structs -= 1
        return Type(sig[start : self.pos], "struct", tuple(fields))


def parse_signature(sig: str) -> tuple[Type, ...]:
    """Parse a signature of zero or more complete types; raise `SignatureError` if invalid."""
    if len(sig.encode("utf-8", "surrogatepass")) > MAX_SIGNATURE_LENGTH:
        raise SignatureError(
            f"signature is {len(sig)} characters long; the limit is {MAX_SIGNATURE_LENGTH} bytes",
            MAX_SIGNATURE_LENGTH,
        )
    parser = _Parser(sig)
    types: list[Type] = []
    while parser.pos < len(sig):
        types.append(parser.complete_type())
    return tuple(types)


def parse_single_type(sig: str) -> Type:
    """Parse a signature that must hold exactly one complete type (an arg or property type)."""
    types = parse_signature(sig)
    if len(types) != 1:
        raise SignatureError(
            f"type must be exactly one complete type, found {len(types)}"
            + (f" ({', '.join(repr(t.code) for t in types)})" if types else ""),
            len(types[0].code) if types else 0,
        )
    return types[0]


def signature_error(sig: str) -> SignatureError | None:
    """The first problem in ``sig``, or None when it is a valid signature."""
    try:
        parse_signature(sig)
    except SignatureError as error:
        return error
    return None


@functools.lru_cache(maxsize=4096)
def single_type_error(sig: str) -> SignatureError | None:
    """The first problem with ``sig`` as one complete type (an arg or property type), or None.
    Cached: a registry repeats a few dozen types thousands of times."""
    try:
        parse_single_type(sig)
    except SignatureError as error:
        return error
    return None


def describe(t: Type) -> str:
    """Human-readable form: ``a{sv}`` → "dict of string to variant"."""
    if t.kind in ("basic", "variant"):
        return _BASIC_NAMES[t.code]
    if t.kind == "array":
        return "array of " + describe(t.children[0])
    if t.kind == "dict":
        key, value = t.children
        return f"dict of {describe(key)} to {describe(value)}"
    return "(" + ", ".join(describe(child) for child in t.children) + ")"


def describe_signature(sig: str) -> str:
    """Describe a whole signature; raises `SignatureError` when it is invalid."""
    types = parse_signature(sig)
    if not types:
        return "nothing"
    return ", ".join(describe(t) for t in types)

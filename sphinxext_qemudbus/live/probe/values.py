"""The values the probe sends, derived from the registry: each argument's D-Bus type and its own words.

For one argument, `arg_values` gives, in this order:

- the registry's own numbers: every integer its validation note and its ``@arg`` documentation
  mention (a range ``0 to 65535``, an enumeration ``0, 1 or 2``, a bound ``< MaxSlots (10)``,
  a table of button numbers) just inside and just outside (N-1, N, N+1), and the live value of
  every integer property of the same object that those words name (``MaxSlots``, ``Width``), read
  from the peer before the calls: a bound the registry states by name is tested where it is now;
- the type's boundaries: 0, 1, the type's minimum and maximum, -1 where signed; NaN, ±inf,
  -0.0, the largest and the smallest doubles; empty, short, long and hostile strings; empty,
  one-element and long arrays (all within the bus's message limit);
- a few seeded random values of the type: the run is deterministic for one ``--seed``.

Each value carries a label that says where it came from, shown in findings.  An ``h`` argument
gets every descriptor kind of `descriptors.KINDS` instead (the engine makes each descriptor just
before its call).  `neutral_value` is the value an argument keeps while another one varies: the
smallest documented valid value, else zero or empty.
"""

from __future__ import annotations

import math
import random
import re
import string
from collections.abc import Mapping, Sequence
from typing import Any

from ...diagnostics.frozen import record
from ...model.signature import parse_single_type
from ..served import default_value

#: The range of each D-Bus integer type.
INTEGER_RANGES: Mapping[str, tuple[int, int]] = {
    "y": (0, 0xFF),
    "n": (-(1 << 15), (1 << 15) - 1),
    "q": (0, 0xFFFF),
    "i": (-(1 << 31), (1 << 31) - 1),
    "u": (0, 0xFFFFFFFF),
    "x": (-(1 << 63), (1 << 63) - 1),
    "t": (0, (1 << 64) - 1),
}
#: A long string or byte array: 1 MiB, far below the bus's message limit (dbus-daemon's default
#: is 128 MiB for a session bus, 32 MiB for the system bus) and large enough to find a copy that
#: trusts a length.
LONG = 1 << 20
#: Elements of a long array of anything but bytes.
LONG_ARRAY = 1 << 14
#: Strings a careless implementation mishandles: printf conversions, terminal escapes, text that
#: is not ASCII, bidi controls.
HOSTILE_STRINGS = ("%s%s%s%n%x%p", "\x1b[2J\x1b]0;x\x07", "\u00e9\u20ac\U0001f600", "\u202etxt.exe", "a\nb\tc")
#: How many seeded random values each argument gets.
SEEDED = 2
_NUMBER = re.compile(r"(?<!\w)(?<!\d\.)(-?\d{1,20})(?!\w|\.\d)")


@record(frozen=True)
class Value:
    """One value for one argument: ``value`` as jeepney serialises it (for ``h``, the name of a
    descriptor kind), ``label`` what it is, in words (``max``, ``MaxSlots (10) + 1``)."""

    value: Any
    label: str
    origin: str = "type"  # "registry", "type" or "seeded"

    @property
    def integer(self) -> bool:
        return isinstance(self.value, int) and not isinstance(self.value, bool)


def arg_values(
    code: str,
    texts: Sequence[str],
    properties: Mapping[str, int],
    seed: str,
    descriptor_kinds: Sequence[str] = (),
) -> list[Value]:
    """Every value to try for one argument of type ``code``, documented values first, without
    repeats.  ``texts`` are the registry's words about it, ``properties`` the integer properties
    of its object as read from the peer, ``seed`` makes the random part deterministic."""
    if code == "h":
        return [Value(kind, f"descriptor: {kind}") for kind in descriptor_kinds]
    found: list[Value] = []
    seen: set[tuple[str, str]] = set()

    def add(value: Value) -> None:
        key = (type(value.value).__name__, repr(value.value))
        if key not in seen:
            seen.add(key)
            found.append(value)

    for value in documented_values(code, texts, properties):
        add(value)
    for value in type_values(code):
        add(value)
    for value in seeded_values(code, random.Random(seed)):
        add(value)
    return found


def documented_values(code: str, texts: Sequence[str], properties: Mapping[str, int]) -> list[Value]:
    """The registry's numbers and named bounds for an integer argument, each just inside and
    just outside (N-1, N, N+1), within the type's range."""
    bounds = INTEGER_RANGES.get(code)
    if bounds is None:
        return []
    low, high = bounds
    words = " ".join(texts)
    named: list[tuple[int, str]] = []
    for name, value in sorted(properties.items()):
        if re.search(rf"\b{re.escape(name)}\b", words, re.IGNORECASE):
            named.append((value, f"{name} ({value}) read from the peer"))
    numbers = sorted({int(match) for match in _NUMBER.findall(words)})
    named += [(number, f"documented {number}") for number in numbers]
    found = []
    for number, label in named:
        for delta, suffix in ((-1, " - 1"), (0, ""), (1, " + 1")):
            candidate = number + delta
            if low <= candidate <= high:
                found.append(Value(candidate, label + suffix, "registry"))
    return found


def type_values(code: str) -> list[Value]:
    """The boundaries of one complete type."""
    if code in INTEGER_RANGES:
        low, high = INTEGER_RANGES[code]
        values = [Value(0, "0"), Value(1, "1"), Value(high, "max")]
        if low < 0:
            values += [Value(-1, "-1"), Value(low, "min")]
        values.append(Value(high // 2 + 1, "max / 2 + 1"))
        return values
    if code == "b":
        return [Value(False, "false"), Value(True, "true")]
    if code == "d":
        return [
            Value(0.0, "0.0"),
            Value(-0.0, "-0.0"),
            Value(1.0, "1.0"),
            Value(-1.0, "-1.0"),
            Value(math.nan, "NaN"),
            Value(math.inf, "+inf"),
            Value(-math.inf, "-inf"),
            Value(1.7976931348623157e308, "largest double"),
            Value(-1.7976931348623157e308, "most negative double"),
            Value(5e-324, "smallest subnormal"),
        ]
    if code == "s":
        return [
            Value("", "empty string"),
            Value("a", "one character"),
            Value("A" * LONG, f"string of {LONG} bytes"),
            *(Value(text, "hostile string") for text in HOSTILE_STRINGS),
        ]
    if code == "o":
        return [Value("/", "root path"), Value("/" + "a/" * 2000 + "a", "long object path")]
    if code == "g":
        return [Value("", "empty signature"), Value("a{sv}", "a{sv}"), Value("a" * 32 + "y", "32 nested arrays")]
    if code == "ay":
        return [Value(b"", "empty byte array"), Value(b"\0", "one zero byte"), Value(b"\xff" * LONG, f"{LONG} bytes")]
    parsed = parse_single_type(code)
    if parsed.kind == "array":
        element = parsed.children[0].code
        one = neutral_value(element, ())
        return [
            Value([], "empty array"),
            Value([one.value], "one element"),
            Value([one.value] * LONG_ARRAY, f"{LONG_ARRAY} elements"),
        ]
    if parsed.kind == "dict":
        return [Value({}, "empty dict")]
    return [neutral_value(code, ())]


def seeded_values(code: str, rng: random.Random) -> list[Value]:
    """`SEEDED` random values of the type, from ``rng``."""
    values = []
    for _ in range(SEEDED):
        if code in INTEGER_RANGES:
            low, high = INTEGER_RANGES[code]
            values.append(Value(rng.randint(low, high), "seeded random", "seeded"))
        elif code == "d":
            values.append(Value(rng.uniform(-1e6, 1e6), "seeded random", "seeded"))
        elif code == "s":
            length = rng.randint(1, 64)
            values.append(
                Value("".join(rng.choice(string.printable) for _ in range(length)), "seeded random", "seeded")
            )
        elif code == "as":
            count = rng.randint(1, 8)
            words = ["".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(0, 16))) for _ in range(count)]
            values.append(Value(words, "seeded random", "seeded"))
        elif code == "ay":
            values.append(
                Value(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64))), "seeded random", "seeded")
            )
    return values


def neutral_value(code: str, texts: Sequence[str]) -> Value:
    """The value an argument keeps while another one varies: the smallest documented number that
    is within the type (0 when none is), else the type's zero or empty value."""
    if code in INTEGER_RANGES:
        low, high = INTEGER_RANGES[code]
        numbers = sorted(n for n in (int(m) for m in _NUMBER.findall(" ".join(texts))) if low <= n <= high)
        return Value(numbers[0] if numbers and numbers[0] >= 0 else 0, "neutral")
    return Value(default_value(code), "neutral")


def shown(value: Any, limit: int = 48) -> str:
    """A value as a finding shows it: long strings and arrays by their length."""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, (str, bytes, list)) and len(value) > limit:
        kind = {str: "string", bytes: "bytes", list: "array"}[type(value)]
        return f"<{kind} of {len(value)}>"
    return repr(value)

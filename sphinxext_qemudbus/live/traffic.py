"""The messages peers send, checked against the registry: what ``conform --listen`` receives from
QEMU on a listener's peer-to-peer connection, and what ``conform --monitor`` sees on a bus.

Every ``org.qemu.*`` message is checked against the registry's view of one QEMU release on one
platform: the interface and member exist (one the registry dates after that release is a warning,
L107), the body has the registered signature (for replies, the out args of the call they answer),
the object path matches the registered one, a call to a NoReply method carries the no-reply flag,
and file descriptors travel where the signature has an ``h``.  Property reads and writes on
``org.qemu.*`` interfaces (``Properties.Get``, ``GetAll``, ``Set``, ``PropertiesChanged``) have
their value types checked.  What the registry says about a message's content that a program can
check (a listener ``Update`` inside the latest ``Scanout``, sizes that agree with stride and
height, audio formats that add up) gives warnings.

The check is pure: it is handed validated messages (`message.Message`) and the number of file
descriptors that came with each, and never touches a socket.  It compares a message's signature
before it reads its body, so a body it has no use for is never decoded.  A peer may send millions
of messages, each naming interfaces, members and peers of its own: each kind of finding is kept
once, with a count, and every table kept here is bounded whatever the names (a name the registry
does not have is never a key).

A reply is paired with the call it answers by the caller as well as the serial: on a
peer-to-peer connection both sides number their own messages, and QEMU's reply must never be
taken for the answer to QEMU's own call.
"""

from __future__ import annotations

import re
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..diagnostics.diagnostic import Diagnostic, Location
from ..diagnostics.frozen import record
from ..diagnostics.rules import diagnostic
from ..model.introspection import (
    Direction,
    Interface,
    Method,
    Property,
    Signal,
    direction_signature,
    interface_for_platform,
)
from ..model.names import path_pattern_regex
from ..model.registry import Registry
from ..model.releases import Release, release_text
from .shared_image import bytes_per_pixel as _bytes_per_pixel

if TYPE_CHECKING:
    from .message import Message

PROPERTIES = "org.freedesktop.DBus.Properties"
#: Calls waiting for their reply, on a monitored bus (a peer that never answers must not grow it).
MAX_PENDING = 4096
#: Kinds of findings kept; past this, further kinds are only counted.
MAX_KINDS = 1000
#: Messages of one member counted by name; members a hostile peer makes up are counted together.
MAX_MEMBERS = 1000
#: Connections (or, on a monitored bus, callers) whose latest Scanout and audio streams are kept.
MAX_CONNECTIONS = 4096

_ERROR_NAME = re.compile(r"\borg\.qemu(?:\.[A-Za-z_][A-Za-z0-9_]*)*\.Error\.[A-Za-z_][A-Za-z0-9_]*")

# D-Bus message types (the header byte), as jeepney numbers them.
METHOD_CALL, METHOD_RETURN, ERROR, SIGNAL = 1, 2, 3, 4
NO_REPLY_EXPECTED = 0x1
# Header fields (the specification's numbers).
F_PATH, F_INTERFACE, F_MEMBER, F_ERROR_NAME, F_REPLY_SERIAL = 1, 2, 3, 4, 5
F_DESTINATION, F_SENDER, F_SIGNATURE, F_UNIX_FDS = 6, 7, 8, 9


class Seen:
    """What the check needs of one message: its header, the numbers of the D-Bus specification
    (so tests can build messages without a socket), and its body, decoded from the received
    message only when a check reads it."""

    __slots__ = ("_body", "_message", "fds", "fields", "flags", "kind", "serial")

    def __init__(
        self, kind: int, flags: int, serial: int, fields: dict[int, Any], body: tuple[Any, ...] = (), fds: int = 0
    ) -> None:
        self.kind = kind
        self.flags = flags
        self.serial = serial
        self.fields = fields
        self._body = body
        self.fds = fds
        self._message: Message | None = None

    @classmethod
    def of(cls, message: Message, fds: int) -> Seen:
        seen = cls(message.kind, message.flags, message.serial, message.fields, (), fds)
        seen._message = message
        return seen

    @property
    def body(self) -> tuple[Any, ...]:
        return self._message.body if self._message is not None else self._body

    def field(self, number: int) -> str | None:
        value = self.fields.get(number)
        return value if isinstance(value, str) else None

    @property
    def signature(self) -> str:
        return self.field(F_SIGNATURE) or ""


class Findings:
    """The findings of a run, each kind once with how often it happened: a display sends
    thousands of ``Update`` calls, and one wrong one is a line, not thousands."""

    def __init__(self) -> None:
        self._first: dict[tuple[str, ...], Diagnostic] = {}
        self._count: Counter[tuple[str, ...]] = Counter()
        self.dropped = 0

    def add(self, key: tuple[str, ...], found: Diagnostic) -> None:
        if key not in self._first:
            if len(self._first) >= MAX_KINDS:
                self.dropped += 1
                return
            self._first[key] = found
        self._count[key] += 1

    def extend(self, found: Iterable[Diagnostic]) -> None:
        for item in found:
            self.add((item.code, str(item.location), item.message), item)

    def result(self) -> list[Diagnostic]:
        out = []
        for key, first in self._first.items():
            count = self._count[key]
            out.append(replace(first, message=f"{first.message} ({count} times)") if count > 1 else first)
        return out


@record(frozen=True)
class _Pending:
    interface: str
    member: str
    out_signature: str | None  # None: the reply is checked another way (properties)
    property_read: tuple[str, str] | None = None  # Get: (interface, property)
    get_all: str | None = None  # GetAll: interface


@dataclass
class _Image:
    """The latest Scanout on one listener connection."""

    width: int
    height: int
    stride: int
    pixman_format: int


class TrafficCheck:
    """Checks messages against the registry's view of ``release`` (None: the registry's own) on
    ``platform``, and counts what was observed."""

    def __init__(self, registry: Registry, release: Release | None, platform: str) -> None:
        self.registry = registry
        self.view = registry if release is None else registry.at_release(release, platform)
        self.release = release
        self.platform = platform
        self.findings = Findings()
        self.observed: Counter[str] = Counter()
        self._projected: dict[tuple[str, bool], Interface | None] = {}
        self._pending: OrderedDict[tuple[str, str, int], _Pending] = OrderedDict()
        self._images: OrderedDict[str, _Image] = OrderedDict()
        #: A display connection's console size (Width, Height), read on the bus by `listen` when an
        #: Update does not fit the latest Scanout (`wants_console_size`); used once, then forgotten.
        self.console_sizes: dict[str, tuple[int, int]] = {}
        #: Connection → (size changes followed without a Scanout, the latest size).
        self.resized: OrderedDict[str, tuple[int, tuple[int, int]]] = OrderedDict()
        self._streams: OrderedDict[tuple[str, int], int] = OrderedDict()  # (connection, stream) → bytes per frame
        self.error_names = registry_error_names(registry)

    # --- the registry, projected ---------------------------------------------------------

    def interface(self, name: str, newest: bool = False) -> Interface | None:
        """The registered interface on this platform, in the release view (``newest``: in the
        registry's own release); None when there is none."""
        source = self.registry if newest else self.view
        if name not in source:
            return None  # never a key: a peer can name any number of interfaces
        key = (name, newest)
        if key not in self._projected:
            self._projected[key] = interface_for_platform(source.interface(name), self.platform)
        return self._projected[key]

    def _member(
        self, interface: str, member: str, where: Location
    ) -> tuple[Method | Signal | Property | None, Diagnostic | None]:
        """The registered member, or why there is none: unknown (L007), or newer than the
        release (L107, and then the newest registry's member is returned to check against)."""
        current = self.interface(interface)
        found = _find(current, member)
        if found is not None:
            return found, None
        newest = _find(self.interface(interface, newest=True), member)
        if newest is not None:
            since = newest.since or (self.registry.interface(interface).since if interface in self.registry else None)
            release = release_text(self.release) if self.release else "this release"
            message = f"{interface}.{member} is used, but the registry dates it to {since}, after QEMU {release}"
            return newest, diagnostic("L107", where, message)
        if self.interface(interface, newest=True) is None:
            message = f"{shown(interface)} is not in the registry (for {self.platform})"
        else:
            message = f"{interface} has no member {shown(member)} in the registry (for {self.platform})"
        return None, diagnostic("L007", where, message)

    # --- messages ------------------------------------------------------------------------

    def check(self, seen: Seen, origin: str, connection: str = "", recipient: str = "") -> None:
        """Check one message from ``origin`` (how findings name the sender) to ``recipient`` on
        ``connection`` (the key of per-connection state: the latest Scanout, audio streams).  A
        call waits for its reply under (connection, its sender, its serial); a reply is paired
        under (connection, its recipient, its reply serial): the one who called."""
        if seen.kind == METHOD_CALL:
            self._call(seen, origin, connection)
        elif seen.kind in (METHOD_RETURN, ERROR):
            self._reply(seen, origin, connection, recipient)
        elif seen.kind == SIGNAL:
            self._signal(seen, origin)

    def _where(self, origin: str, seen: Seen) -> Location:
        return Location(f"{origin}:{shown(seen.field(F_PATH) or '?')}")

    def _count(self, name: str) -> None:
        if name in self.observed or len(self.observed) < MAX_MEMBERS:
            self.observed[name] += 1
        else:
            self.observed["(other members)"] += 1

    def _add(self, key: tuple[str, ...], found: Diagnostic | None) -> None:
        if found is not None:
            self.findings.add(key, found)

    def _call(self, seen: Seen, origin: str, connection: str) -> None:
        interface, member = seen.field(F_INTERFACE), seen.field(F_MEMBER) or ""
        if interface == PROPERTIES:
            self._property_call(seen, origin, connection, member)
            return
        if interface is None or not interface.startswith("org.qemu."):
            return
        registered = self._checked(seen, origin, interface, member, Method)
        if not isinstance(registered, Method):
            return
        name, where = f"{interface}.{member}", self._where(origin, seen)
        expected = direction_signature(registered, Direction.IN)
        if seen.signature == expected and registered.no_reply and not seen.flags & NO_REPLY_EXPECTED:
            message = f"{origin} calls {name} without the no-reply flag; the registry marks it Method.NoReply"
            self._add(("no-reply", name), diagnostic("L011", where, message))
        self._fds(seen, name, expected, where)
        if seen.signature == expected:
            self._content(seen, origin, connection, name, where)
        if not seen.flags & NO_REPLY_EXPECTED:
            self._expect_reply(
                (connection, origin), seen, _Pending(interface, member, direction_signature(registered, Direction.OUT))
            )

    def _checked(
        self, seen: Seen, origin: str, interface: str, member: str, kind: type[Method] | type[Signal]
    ) -> Method | Signal | None:
        """The registered member a call or signal names, counted, after the checks both share:
        known, of the right kind, at the registered path, with the registered signature."""
        where = self._where(origin, seen)
        registered, problem = self._member(interface, member, where)
        self._add(("unknown", interface, member), problem)
        if registered is None:
            self._count("(members the registry does not have)")
            return None
        self._count(f"{interface}.{member}")
        name = f"{interface}.{member}"
        called = kind is Method
        if not isinstance(registered, kind):
            how = "called as a method" if called else "emitted as a signal"
            self._add(
                ("kind", name), diagnostic("L007", where, f"{name} is a {registered.kind} in the registry, {how}")
            )
            return None
        self._path(seen, interface, where, name, "called" if called else "emitted")
        expected = direction_signature(registered, Direction.IN if called else Direction.OUT)
        if seen.signature != expected:
            verb = "calls" if called else "emits"
            message = f"{origin} {verb} {name} with ({shown(seen.signature)}); the registry says ({expected})"
            self._add(("signature", name, seen.signature), diagnostic("L008", registered.location, message))
        return registered

    def _path(self, seen: Seen, interface: str, where: Location, name: str, verb: str) -> None:
        entry = self.registry.entry(interface) if interface in self.registry else None
        pattern = entry.metadata.object_path if entry is not None else None
        path = seen.field(F_PATH) or ""
        if pattern is not None and not path_pattern_regex(pattern).match(path):
            message = f"{name} is {verb} on {shown(path)}; the registry places {interface} at {pattern}"
            self._add(("path", name, path[:200]), diagnostic("L009", where, message))

    def _fds(self, seen: Seen, name: str, expected: str, where: Location) -> None:
        wanted = "h" in expected
        if wanted and seen.fds == 0:
            message = f"{name} arrived without a file descriptor, though its signature ({expected}) has one"
            self._add(("fds", name, "missing"), diagnostic("L012", where, message))
        elif seen.fds and not wanted:
            message = f"{name} arrived with {seen.fds} file descriptor(s), though its signature ({expected}) has none"
            self._add(("fds", name, "extra"), diagnostic("L012", where, message))

    def _expect_reply(self, caller: tuple[str, str], seen: Seen, pending: _Pending) -> None:
        self._pending[(*caller, seen.serial)] = pending
        while len(self._pending) > MAX_PENDING:
            self._pending.popitem(last=False)

    def _reply(self, seen: Seen, origin: str, connection: str, recipient: str) -> None:
        serial = seen.fields.get(F_REPLY_SERIAL)
        pending = self._pending.pop((connection, recipient, serial), None) if isinstance(serial, int) else None
        if pending is None:
            return
        name = f"{pending.interface}.{pending.member}"
        where = self._where(origin, seen)
        if seen.kind == ERROR:
            error = seen.field(F_ERROR_NAME) or ""
            if error.startswith("org.qemu.") and error not in self.error_names:
                message = f"{name} failed with {shown(error)}, an error name the registry does not give"
                self._add(("error", error), diagnostic("L109", where, message))
            return
        if pending.property_read is not None:
            self._property_value(pending.property_read, seen, where, "returned by Get")
        elif pending.get_all is not None:
            values = seen.body[0] if seen.signature == "a{sv}" and seen.body else {}
            for prop, value in values.items() if isinstance(values, dict) else ():
                self._value(pending.get_all, str(prop), value, where, "returned by GetAll")
        elif pending.out_signature is not None and seen.signature != pending.out_signature:
            message = (
                f"the reply to {name} carries ({shown(seen.signature)}); the registry says ({pending.out_signature})"
            )
            self._add(("reply", name, seen.signature), diagnostic("L008", where, message))

    def _signal(self, seen: Seen, origin: str) -> None:
        interface, member = seen.field(F_INTERFACE) or "", seen.field(F_MEMBER) or ""
        where = self._where(origin, seen)
        if interface == PROPERTIES and member == "PropertiesChanged" and seen.signature == "sa{sv}as":
            target, changed = seen.body[0], seen.body[1]
            if isinstance(target, str) and target.startswith("org.qemu.") and isinstance(changed, dict):
                for prop, value in changed.items():
                    self._value(target, str(prop), value, where, "in PropertiesChanged")
            return
        if interface.startswith("org.qemu."):
            self._checked(seen, origin, interface, member, Signal)

    # --- properties ----------------------------------------------------------------------

    def _property_call(self, seen: Seen, origin: str, connection: str, member: str) -> None:
        # The signature first: a body the standard methods do not take is never decoded.
        if (member, seen.signature) not in (("GetAll", "s"), ("Get", "ss"), ("Set", "ssv")):
            return
        body = seen.body
        target = body[0] if body and isinstance(body[0], str) else ""
        if not target.startswith("org.qemu."):
            return
        where = self._where(origin, seen)
        known = target in self.registry and member in ("Get", "GetAll", "Set")
        self._count(f"{PROPERTIES}.{member}({target})" if known else "(members the registry does not have)")
        caller = (connection, origin)
        if member == "GetAll":
            self._expect_reply(caller, seen, _Pending(PROPERTIES, member, None, get_all=target))
        elif member in ("Get", "Set") and len(body) >= 2 and isinstance(body[1], str):
            registered, problem = self._member(target, body[1], where)
            self._add(("unknown", target, body[1]), problem)
            if registered is not None and not isinstance(registered, Property):
                message = f"{target}.{body[1]} is a {registered.kind} in the registry, not a property"
                self._add(("kind", target, body[1]), diagnostic("L007", where, message))
            elif member == "Get":
                self._expect_reply(caller, seen, _Pending(PROPERTIES, member, None, property_read=(target, body[1])))
            elif len(body) == 3:
                self._value(target, body[1], body[2], where, "written with Set")

    def _property_value(self, prop: tuple[str, str], seen: Seen, where: Location, how: str) -> None:
        if seen.signature == "v" and seen.body:
            self._value(prop[0], prop[1], seen.body[0], where, how)

    def _value(self, interface: str, prop: str, value: Any, where: Location, how: str) -> None:
        """A property value (jeepney reads a variant as (signature, value)) against its type."""
        registered = _find(self.interface(interface, newest=True), prop)
        if not isinstance(registered, Property) or not isinstance(value, tuple) or not value:
            return
        sent = str(value[0])
        if sent != registered.type:
            message = f"property {interface}.{prop} is {how} as {sent!r}; the registry says {registered.type!r}"
            self._add(("value", interface, prop, sent[:100]), diagnostic("L006", registered.location, message))

    # --- content rules ---------------------------------------------------------------------

    def _content(self, seen: Seen, origin: str, connection: str, name: str, where: Location) -> None:
        rule = _CONTENT_RULES.get(name)
        if rule is not None:
            for key, message in rule(self, seen.body, connection):
                self._add(("content", name, key), diagnostic("L108", where, f"{origin}: {message}"))

    def _scanout(self, body: tuple[Any, ...], connection: str) -> Iterator[tuple[str, str]]:
        width, height, stride, pixman_format, data = body
        _bounded_put(self._images, connection, _Image(width, height, stride, pixman_format))
        row = width * _bytes_per_pixel(pixman_format)
        if stride < row:
            yield (
                "stride",
                f"Scanout has stride {stride}, less than width {width} x {_bytes_per_pixel(pixman_format)} bytes",
            )
        if len(data) != stride * height:
            yield (
                "length",
                f"Scanout carries {len(data)} bytes of data; stride {stride} x height {height} is {stride * height}",
            )

    def _update(self, body: tuple[Any, ...], connection: str) -> Iterator[tuple[str, str]]:
        x, y, width, height, stride, pixman_format, data = body
        image = self._images.get(connection)
        if image is None:
            yield "before", "Update arrived before any Scanout"
        elif not _inside(x, y, width, height, image.width, image.height) and not self._resized(
            connection, image, x, y, width, height
        ):
            yield (
                "outside",
                f"Update ({x},{y} {width}x{height}) lies outside the latest Scanout ({image.width}x{image.height})"
                " and outside the console's current size",
            )
        elif pixman_format != image.pixman_format:
            yield "format", f"Update has pixel format {pixman_format:#x}, the Scanout {image.pixman_format:#x}"
        row = max(width, 0) * _bytes_per_pixel(pixman_format)
        if stride != row:
            yield "stride", f"Update has stride {stride}; a tightly packed {width}-pixel row is {row} bytes"
        if len(data) != stride * max(height, 0):
            yield (
                "length",
                f"Update carries {len(data)} bytes of data; stride {stride} x height {height} is {stride * height}",
            )

    def wants_console_size(self, seen: Seen, connection: str) -> bool:
        """Whether ``seen`` is a listener Update that does not fit the latest Scanout on
        ``connection``, so that the console's current size decides (QEMU sends no Scanout when
        the guest switches modes: the registry's Listener tells a client to read the console's
        Width and Height then).  The caller reads them, puts them in `console_sizes`, then checks
        the message."""
        if seen.kind != METHOD_CALL or seen.field(F_MEMBER) != "Update" or seen.signature != "iiiiuuay":
            return False
        if seen.field(F_INTERFACE) != "org.qemu.Display1.Listener":
            return False
        image = self._images.get(connection)
        x, y, width, height = seen.body[:4]
        return image is not None and not _inside(x, y, width, height, image.width, image.height)

    def _resized(self, connection: str, image: _Image, x: int, y: int, width: int, height: int) -> bool:
        """Whether an Update that does not fit the latest Scanout fits the console's current size,
        as read for it (`wants_console_size`).  The new size becomes the image the next Updates are
        checked against."""
        size = self.console_sizes.pop(connection, None)
        if size is None or size == (image.width, image.height) or not _inside(x, y, width, height, *size):
            return False
        self._images[connection] = replace(image, width=size[0], height=size[1])
        count, _ = self.resized.get(connection, (0, size))
        _bounded_put(self.resized, connection, (count + 1, size))
        return True

    def _audio_init(self, body: tuple[Any, ...], connection: str) -> Iterator[tuple[str, str]]:
        stream, bits, _signed, is_float, freq, channels, per_frame, per_second, _be = body
        _bounded_put(self._streams, (connection, stream), per_frame)
        if bits not in (8, 16, 32) or (is_float and bits != 32):
            yield "bits", f"Init announces {bits}-bit {'float ' if is_float else ''}samples"
        if per_frame != channels * bits // 8:
            yield "frame", f"Init: bytes_per_frame {per_frame} is not nchannels {channels} x bits {bits} / 8"
        if per_second != freq * per_frame:
            yield "rate", f"Init: bytes_per_second {per_second} is not freq {freq} x bytes_per_frame {per_frame}"

    def _audio_write(self, body: tuple[Any, ...], connection: str) -> Iterator[tuple[str, str]]:
        stream, data = body
        per_frame = self._streams.get((connection, stream))
        if per_frame is None:
            yield "unknown", "Write for a stream that Init did not announce"
        elif per_frame and len(data) % per_frame:
            yield "frames", f"Write carries {len(data)} bytes, not whole frames of {per_frame} bytes"

    # --- the summary -----------------------------------------------------------------------

    def unexercised(self, interfaces: Iterable[str]) -> list[str]:
        """The methods and signals of ``interfaces`` (in the release view) never observed."""
        missing = []
        for name in interfaces:
            interface = self.interface(name)
            for member in interface.members if interface is not None else ():
                if not isinstance(member, Property) and f"{name}.{member.name}" not in self.observed:
                    missing.append(f"{name}.{member.name}")
        return missing


_CONTENT_RULES = {
    "org.qemu.Display1.Listener.Scanout": TrafficCheck._scanout,
    "org.qemu.Display1.Listener.Update": TrafficCheck._update,
    "org.qemu.Display1.AudioOutListener.Init": TrafficCheck._audio_init,
    "org.qemu.Display1.AudioInListener.Init": TrafficCheck._audio_init,
    "org.qemu.Display1.AudioOutListener.Write": TrafficCheck._audio_write,
}


def _bounded_put(table: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    """``table[key] = value``, forgetting the least recently set entry past `MAX_CONNECTIONS`."""
    table[key] = value
    table.move_to_end(key)
    while len(table) > MAX_CONNECTIONS:
        table.popitem(last=False)


def shown(name: str) -> str:
    """A name from a peer as findings show it: as it is when it is a valid D-Bus name or path,
    else quoted and cut (a peer-to-peer connection has no daemon that validates names)."""
    if len(name) <= 255 and _PLAIN.fullmatch(name):
        return name
    return repr(name[:80]) + ("..." if len(name) > 80 else "")


_PLAIN = re.compile(r"[A-Za-z0-9_./:(){}-]*")  # names, paths, unique names, signatures


def _inside(x: int, y: int, width: int, height: int, image_width: int, image_height: int) -> bool:
    return x >= 0 and y >= 0 and width >= 0 and height >= 0 and x + width <= image_width and y + height <= image_height


def _find(interface: Interface | None, name: str) -> Method | Signal | Property | None:
    if interface is None:
        return None
    return next((member for member in interface.members if member.name == name), None)


def registry_error_names(registry: Registry) -> frozenset[str]:
    """The ``org.qemu.*.Error.*`` names the registry's documentation gives."""
    names: set[str] = set()
    for entry in registry:
        interface = entry.interface
        texts = [interface.doc.raw_body if interface.doc else ""]
        texts += [member.doc.raw_body for member in interface.members if member.doc is not None]
        for text in texts:
            names.update(_ERROR_NAME.findall(text))
    return frozenset(names)

"""The objects ``conform`` serves to QEMU, and how it answers the calls they receive.

A display client serves objects of its own: a listener on each listener connection (and, on the
bus connection, objects such as a clipboard client).  The tool serves them from the registry: an
object is a path and the registered interfaces it implements; a call to one of their methods gets
the registered out args as zero values, the standard interfaces (``Properties``,
``Introspectable``, ``Peer``) are answered properly, and anything else gets the error GDBus gives.
Serving one more interface on an object is one more entry in its `ServedObject`; what a property
holds, when it is not its zero value, is an entry in ``values``; a method that a client in the
tool's state answers with an error (a clipboard client that holds no data is asked for it) is an
entry in ``errors``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import quoteattr

from ..model.introspection import Direction, Interface, Method, Property
from .message import INTERFACE, MEMBER, PATH, Message
from .wire import error_reply, method_return

PROPERTIES = "org.freedesktop.DBus.Properties"
INTROSPECTABLE = "org.freedesktop.DBus.Introspectable"
PEER = "org.freedesktop.DBus.Peer"


@dataclass
class ServedObject:
    """An object the tool serves: its path, the registered interfaces it implements, and the
    values of those of their properties that are not their zero value ((interface, property) →
    value, as jeepney writes it), and the methods it answers with an error ((interface, method) →
    (error name, message))."""

    path: str
    interfaces: tuple[Interface, ...]
    values: dict[tuple[str, str], Any] = field(default_factory=dict)
    errors: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)

    def interface(self, name: str) -> Interface | None:
        return next((i for i in self.interfaces if i.name == name), None)


def answer(objects: Mapping[str, ServedObject], call: Message) -> Any:
    """The reply to ``call`` (a validated method call) on one of ``objects``."""
    path = call.field(PATH) or ""
    interface, member = call.field(INTERFACE), call.field(MEMBER)
    served = objects.get(path)
    if served is None:
        return error_reply(call, "org.freedesktop.DBus.Error.UnknownObject", f"no object at {path}")
    if interface == PEER and member == "Ping" and not call.signature:
        return method_return(call)
    if interface == PEER and member == "GetMachineId" and not call.signature:
        return method_return(call, "s", (_machine_id(),))
    if interface == INTROSPECTABLE and member == "Introspect" and not call.signature:
        return method_return(call, "s", (introspection_xml(served.interfaces),))
    if interface == PROPERTIES:
        return _properties(served, call, member)
    for candidate in served.interfaces:
        if interface in (None, candidate.name):
            method = next((m for m in candidate.members if isinstance(m, Method) and m.name == member), None)
            if method is not None:
                refusal = served.errors.get((candidate.name, method.name))
                if refusal is not None:
                    return error_reply(call, *refusal)
                out = "".join(arg.type for arg in method.args if arg.direction is Direction.OUT)
                return method_return(call, out, default_body(out))
    return error_reply(call, "org.freedesktop.DBus.Error.UnknownMethod", f"no method {member}")


def _properties(served: ServedObject, call: Message, member: str | None) -> Any:
    # The signature is compared before the body is decoded: a call with another one gets an error.
    signature = call.signature
    if (member, signature) not in (("GetAll", "s"), ("Get", "ss"), ("Set", "ssv")):
        return error_reply(call, "org.freedesktop.DBus.Error.InvalidArgs", f"no {member}({signature})")
    body = call.body
    target = served.interface(str(body[0]))
    if target is None:
        return error_reply(call, "org.freedesktop.DBus.Error.UnknownInterface", "no such interface")
    readable = {p.name: p for p in target.members if isinstance(p, Property) and p.access.readable}
    if member == "GetAll":
        values = {name: (p.type, _value(served, target, p)) for name, p in readable.items()}
        return method_return(call, "a{sv}", (values,))
    if member == "Get" and body[1] in readable:
        prop = readable[str(body[1])]
        return method_return(call, "v", ((prop.type, _value(served, target, prop)),))
    if member == "Set":
        return error_reply(call, "org.freedesktop.DBus.Error.PropertyReadOnly", "read-only")
    return error_reply(call, "org.freedesktop.DBus.Error.UnknownProperty", "no such property")


def _value(served: ServedObject, interface: Interface, prop: Property) -> Any:
    key = (interface.name, prop.name)
    return served.values[key] if key in served.values else default_value(prop.type)


def default_value(single: str) -> Any:
    """The zero value of one complete type, as jeepney serialises it."""
    code = single[0]
    if code in "ynqiuxt":
        return 0
    if code == "b":
        return False
    if code == "d":
        return 0.0
    if code in "sg":
        return ""
    if code == "o":
        return "/"
    if code == "v":
        return ("s", "")
    if code == "(":
        return tuple(default_body(single[1:-1]))
    if single == "ay":
        return b""
    if single.startswith("a{"):
        return {}
    return []  # h never appears in the out args the tool serves


def default_body(signature: str) -> tuple[Any, ...]:
    from ..model.signature import parse_signature

    return tuple(default_value(t.code) for t in parse_signature(signature))


def introspection_xml(interfaces: tuple[Interface, ...]) -> str:
    """The introspection data of a served object, written from the registry."""
    out = ['<node>\n  <interface name="org.freedesktop.DBus.Peer"/>\n']
    for interface in interfaces:
        out.append(f"  <interface name={quoteattr(interface.name)}>\n")
        for member in interface.members:
            if isinstance(member, Property):
                out.append(
                    f"    <property name={quoteattr(member.name)} type={quoteattr(member.type)} "
                    f'access="{member.access.value}"/>\n'
                )
                continue
            out.append(f"    <{member.kind} name={quoteattr(member.name)}>\n")
            for arg in member.args:
                name = f" name={quoteattr(arg.name)}" if arg.name else ""
                out.append(f'      <arg type={quoteattr(arg.type)}{name} direction="{arg.direction.value}"/>\n')
            out.append(f"    </{member.kind}>\n")
        out.append("  </interface>\n")
    out.append("</node>\n")
    return "".join(out)


def _machine_id() -> str:
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            with open(path, encoding="ascii") as stream:
                value = stream.read(64).strip()
        except (OSError, UnicodeDecodeError):
            continue
        if len(value) == 32:
            return value
    return "0" * 32

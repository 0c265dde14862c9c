"""What the probe found, one `Fault` per fault, and the command that reproduces each.

A fault has a kind (`KINDS`): a *crash* (QEMU died: exit status or signal, its last words), a
*hang* (it stopped answering for good and was killed), a *stall* (it answered again, late), a
*contract* breach (no reply, a reply of another signature than the registry's) or an
*undocumented error* name (a warning).  The call is given exactly, and `reproduction` writes the
one line that repeats it with a standard tool: ``busctl`` for everything it can pass, else
``python3 -c`` with jeepney (``busctl`` and ``dbus-send`` cannot pass a file descriptor, and a
megabyte of bytes does not fit on a command line).
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from ...diagnostics.diagnostic import Diagnostic, Location
from ...diagnostics.frozen import record
from ...diagnostics.rules import diagnostic
from ...model.signature import parse_single_type
from .descriptors import DATAGRAM, SILENT, python_expression

#: Fault kind → rule code.
KINDS: Mapping[str, str] = {
    "crash": "L201",
    "hang": "L202",
    "stall": "L203",
    "contract": "L204",
    "undocumented-error": "L205",
}
#: Where a reproduction takes the bus address from (``export BUS=unix:path=...``): the run's own
#: bus is gone once it ends.
BUS = "$BUS"
#: Descriptor kinds whose other end the reproduction keeps open (closing it would end the fault).
KEEP_OPEN = (SILENT, DATAGRAM)
#: busctl's spelling of the basic types it takes on its command line.
_BUSCTL_MAX_ARG = 4096


@record(frozen=True)
class Fault:
    """One fault: what was called (``call``: ``Press(button=9)``), how it failed and the proof."""

    kind: str
    interface: str
    member: str
    path: str
    call: str
    evidence: str
    command: str
    #: "every value >= 9 of button" after bisection; empty when not an integer threshold.
    threshold: str = ""
    #: The descriptor kind, the reply variant or the value label that made the difference.
    trigger: str = ""

    @property
    def code(self) -> str:
        return KINDS[self.kind]

    @property
    def qualified(self) -> str:
        return f"{self.interface}.{self.member}"

    def diagnostic(self, dest: str) -> Diagnostic:
        where = Location(f"{dest}:{self.path}")
        threshold = f"; {self.threshold}" if self.threshold else ""
        message = (
            f"{self.kind}: {self.qualified} {self.call}{threshold}: {self.evidence}; reproduce with: {self.command}"
        )
        return diagnostic(self.code, where, message)

    def as_record(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "code": self.code,
            "interface": self.interface,
            "member": self.member,
            "path": self.path,
            "call": self.call,
            "threshold": self.threshold,
            "trigger": self.trigger,
            "evidence": self.evidence,
            "command": self.command,
        }


def call_text(member: str, names: Sequence[str], values: Sequence[Any], shown: Any) -> str:
    """``Press(button=9)``: the call as a finding shows it."""
    return f"{member}(" + ", ".join(f"{n}={shown(v)}" for n, v in zip(names, values)) + ")"


def reproduction(
    dest: str,
    path: str,
    interface: str,
    member: str,
    signature: Sequence[str],
    values: Sequence[Any],
    first: Sequence[str] = (),
) -> str:
    """One line that makes the same call on the bus at ``$BUS``: ``busctl`` when it can pass
    every value, ``python3 -c`` with jeepney otherwise, or when the argument-less methods
    ``first`` (a registration) must be called before, on the same connection."""
    words = _busctl_words(signature, values)
    if words is not None and not first:
        head = ["busctl", f"--address={BUS}", "call", dest, path, interface, member]
        if signature:
            head.append("".join(signature))
        return " ".join([*(_quote(w) for w in head), *(shlex.quote(w) for w in words)])
    return _python_line(dest, path, interface, member, signature, values, first)


def _quote(word: str) -> str:
    return f'--address="{BUS}"' if word == f"--address={BUS}" else shlex.quote(word)


def _busctl_words(signature: Sequence[str], values: Sequence[Any]) -> list[str] | None:
    """busctl's arguments for the values, or None when busctl cannot take them."""
    words: list[str] = []
    for code, value in zip(signature, values):
        part = _busctl_value(code, value)
        if part is None:
            return None
        words += part
    return words if sum(len(w) + 1 for w in words) <= _BUSCTL_MAX_ARG else None


def _busctl_value(code: str, value: Any) -> list[str] | None:
    if code == "h":
        return None
    if code in "ynqiuxt":
        return [str(int(value))]
    if code == "b":
        return ["true" if value else "false"]
    if code == "d":
        text = repr(float(value))
        return [text]
    if code in "sog":
        return [value] if "\0" not in value else None
    single = parse_single_type(code)
    if single.kind == "array" and single.children[0].is_basic and single.children[0].code != "h":
        element = single.children[0].code
        parts = [str(len(value))]
        for item in value:
            rendered = _busctl_value(element, item)
            if rendered is None:
                return None
            parts += rendered
        return parts
    return None


def _python_line(
    dest: str,
    path: str,
    interface: str,
    member: str,
    signature: Sequence[str],
    values: Sequence[Any],
    first: Sequence[str] = (),
) -> str:
    """A ``python3 -c`` line with jeepney's blocking API, for what busctl cannot do."""
    setup: list[str] = []
    body: list[str] = []
    for code, value in zip(signature, values):
        if code == "h":
            setup.append(python_expression(str(value)))
            body.append("f")
        else:
            body.append(_python_value(value))
    statements = [
        "import os,socket,tempfile,jeepney as j",
        "from jeepney.io.blocking import open_dbus_connection as o",
        *setup,
        'c=o(os.environ["BUS"],enable_fds=True)',
        f"d=j.DBusAddress({_python_value(path)},{_python_value(dest)},{_python_value(interface)})",
        *(f"c.send_and_get_reply(j.new_method_call(d,{_python_value(name)}),timeout=60)" for name in first),
        f"m=j.new_method_call(d,{_python_value(member)},{_python_value(''.join(signature))},"
        f"({','.join(body)}{',' if len(body) == 1 else ''}))",
        "print(c.send_and_get_reply(m,timeout=30))",
    ]
    if any(code == "h" and str(value) in KEEP_OPEN for code, value in zip(signature, values)):
        statements.append('__import__("time").sleep(60)')  # the other end stays open, silent
    return "python3 -c " + shlex.quote(";".join(statements))


def _python_value(value: Any) -> str:
    """A Python literal for ``value`` that quotes with double quotes (the line is single-quoted
    for the shell) and writes a long run of one item as a repetition."""
    if isinstance(value, (bool, int)):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f'float("{value}")'
    if isinstance(value, str):
        if len(value) > 64 and len(set(value)) == 1:
            return f"{json.dumps(value[0], ensure_ascii=False)}*{len(value)}"
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bytes):
        if len(value) > 64 and len(set(value)) == 1:
            return f"bytes([{value[0]}])*{len(value)}"
        return f'bytes.fromhex("{value.hex()}")'
    if isinstance(value, (list, tuple)):
        if len(value) > 16 and all(item == value[0] for item in value):
            return f"[{_python_value(value[0])}]*{len(value)}"
        items = ",".join(_python_value(item) for item in value)
        return f"[{items}]" if isinstance(value, list) else f"({items}{',' if len(value) == 1 else ''})"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_python_value(k)}:{_python_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def silent_listener_reproduction(dest: str, path: str, interface: str, method: str, announce: str = "") -> str:
    """One line that registers a listener, completes the handshake on its socket and then never
    answers what QEMU asks there: its ``GetAll``, or, with ``announce``, the ``GetAll`` of the
    optional interface the listener names in its ``Interfaces``.  It prints how long a read of
    ``VM.Name`` then waits.  No standard tool serves a listener, so this is ``python3 -c`` with
    jeepney (its authenticator, and its message parser on the socket)."""
    statements = [
        "import os,socket,time,jeepney as j",
        "from jeepney.auth import Authenticator,BEGIN",
        "from jeepney.io.blocking import open_dbus_connection as o",
        "a,f=socket.socketpair()",
        'c=o(os.environ["BUS"],enable_fds=True)',
        f"d=j.DBusAddress({_python_value(path)},{_python_value(dest)},{_python_value(interface)})",
        f'print(c.send_and_get_reply(j.new_method_call(d,{_python_value(method)},"h",(f,)),timeout=30))',
        "u=Authenticator(enable_fds=True)",
        "[(a.sendall(x),u.feed(a.recv(1024))) for x in u]",
        "a.sendall(BEGIN)",
    ]
    if announce:
        statements += [
            "p=j.Parser()",
            "p.add_data(a.recv(65536))",
            "q=p.get_next_message()",
            f'r=j.new_method_return(q,"a{{sv}}",({{"Interfaces":("as",[{_python_value(announce)}])}},))',
            "a.sendall(r.serialise(serial=1))",
        ]
    statements += [
        "t=time.time()",
        'c2=o(os.environ["BUS"])',
        'v=j.DBusAddress("/org/qemu/Display1/VM",' + _python_value(dest) + ',"org.freedesktop.DBus.Properties")',
        'c2.send_and_get_reply(j.new_method_call(v,"Get","ss",("org.qemu.Display1.VM","Name")),timeout=60)',
        'print("VM.Name answered after %.1f s" % (time.time()-t))',
    ]
    return "python3 -c " + shlex.quote(";".join(statements))

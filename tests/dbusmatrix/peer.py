"""One peer of the policy matrix: a real D-Bus client (jeepney) running under its own user.

This file runs outside the project: the runner copies it, with jeepney, into a folder every test
user can read and starts it with ``setpriv`` under the peer's uid.  It therefore imports only the
standard library and jeepney, and keeps to Python 3.9 syntax.

Usage: ``peer.py ADDRESS PLAN.json`` (or ``peer.py ADDRESS --connect-only [NAME...]``, which
connects step by step, asks for the names, and reports how it ended, see `connect_only`).  The peer talks to the
runner in JSON lines: it reports ``hello`` once connected, then obeys the commands ``own``,
``probe``, ``flush`` and ``exit`` read from stdin, serving calls from the other peers all along (a
peer that stopped serving while it waits would make the others time out).

What it does:

* ``own``: request its well-known names (queueing for shared ones) and subscribe to every signal;
* ``probe``: send every probe of its plan — method calls (each registry method twice: the service
  answers the first with a reply and the second with an error, so both kinds of answer are seen),
  unicast and broadcast signals, RequestName of other names, bus-driver calls, an unrequested reply
  and an unrequested error — and report each outcome: ``reply:SIGNATURE``, ``error:NAME``, ``sent``
  or ``timeout`` (with the daemon's words when it refuses an unrequested reply or error);
* ``flush``: make sure every signal sent to it has arrived, then report what it received;
* meanwhile it serves the interfaces of its plan with the registry's signatures.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from jeepney import DBusAddress, HeaderFields, Message, MessageType
from jeepney.auth import BEGIN, Authenticator
from jeepney.bus import get_bus
from jeepney.io.blocking import open_dbus_connection
from jeepney.low_level import Endianness, Header, Parser
from jeepney.wrappers import new_error, new_method_call, new_method_return, new_signal

DRIVER = "org.freedesktop.DBus"
DRIVER_PATH = "/org/freedesktop/DBus"
PROPERTIES = "org.freedesktop.DBus.Properties"
INTROSPECTABLE = "org.freedesktop.DBus.Introspectable"
OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager"
REQUESTED_ERROR = "org.qemu.Test.Error.Requested"
UNREQUESTED_ERROR = "org.qemu.Test.Error.Unrequested"
WINDOW = 32  # calls in flight at once: dbus-daemon caps pending replies per connection
TIMEOUT = 10.0


def emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


# --- values for a signature ----------------------------------------------------------------------


def split_types(signature: str) -> list[str]:
    """The complete types of a signature, in order."""
    types, index = [], 0
    while index < len(signature):
        end = _type_end(signature, index)
        types.append(signature[index:end])
        index = end
    return types


def _type_end(signature: str, index: int) -> int:
    code = signature[index]
    if code == "a":
        return _type_end(signature, index + 1)
    if code in "({":
        closing = ")" if code == "(" else "}"
        index += 1
        while signature[index] != closing:
            index = _type_end(signature, index)
        return index + 1
    return index + 1


class Values:
    """Plausible values for any signature; ``h`` gets a real file descriptor."""

    def __init__(self) -> None:
        self.fd_source, self.fd_other = socket.socketpair()

    def of(self, single: str) -> Any:
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
        if code == "h":
            return self.fd_source.fileno()
        if code == "v":
            return ("s", "")
        if code == "(":
            return tuple(self.of(t) for t in split_types(single[1:-1]))
        if single == "ay":
            return b""
        if single.startswith("a{"):
            return {}
        return []

    def body(self, signature: str) -> tuple[Any, ...]:
        return tuple(self.of(t) for t in split_types(signature))


# --- the connection ------------------------------------------------------------------------------


class Peer:
    def __init__(self, address: str, plan: dict[str, Any]) -> None:
        self.plan = plan
        self.values = Values()
        self.conn = open_dbus_connection(address, enable_fds=True)
        self.unique = self.conn.unique_name
        self.serial = 10_000  # our own serials: jeepney's counter is used by its Hello only
        self.waiting: dict[int, object] = {}  # serial -> key into self.answers
        self.answers: dict[object, Message] = {}
        self.calls_seen: dict[tuple[Any, ...], int] = {}
        self.received: list[dict[str, Any]] = []
        self.stray: list[dict[str, Any]] = []
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.conn.sock, selectors.EVENT_READ, "bus")
        self.peers: dict[str, str] = {}

    def next_serial(self) -> int:
        self.serial += 1
        return self.serial

    def send(self, message: Message, key: object = None) -> int:
        serial = self.next_serial()
        if key is not None:
            self.waiting[serial] = key
        self.conn.send(message, serial=serial)
        return serial

    # Everything that arrives goes through here, whatever we are waiting for.
    def pump(self, timeout: float) -> None:
        try:
            message = self.conn.receive(timeout=timeout)
        except TimeoutError:
            return
        while True:
            self.dispatch(message)
            try:
                message = self.conn.receive(timeout=0)
            except TimeoutError:
                return

    def dispatch(self, message: Message) -> None:
        header = message.header
        kind = header.message_type
        for item in message.body if isinstance(message.body, tuple) else ():
            if hasattr(item, "close") and type(item).__name__ == "FileDescriptor":
                item.close()
        if kind in (MessageType.method_return, MessageType.error):
            serial = header.fields.get(HeaderFields.reply_serial)
            key = self.waiting.pop(serial, None)
            if key is None:
                self.stray.append({"sender": header.fields.get(HeaderFields.sender), "type": kind.name})
            else:
                self.answers[key] = message
        elif kind == MessageType.method_call:
            self.serve(message)
        elif kind == MessageType.signal:
            sender = header.fields.get(HeaderFields.sender)
            if sender in (DRIVER, self.unique):
                return
            self.received.append(
                {
                    "sender": sender,
                    "interface": header.fields.get(HeaderFields.interface),
                    "member": header.fields.get(HeaderFields.member),
                    "path": header.fields.get(HeaderFields.path),
                    "unicast": HeaderFields.destination in header.fields,
                }
            )

    def wait_for(self, keys: list[Any], deadline: float) -> None:
        while any(key not in self.answers for key in keys) and time.monotonic() < deadline:
            self.pump(min(0.2, max(deadline - time.monotonic(), 0.0)))

    # --- serving -----------------------------------------------------------------------------

    def serve(self, call: Message) -> None:
        fields = call.header.fields
        interface = fields.get(HeaderFields.interface)
        member = fields.get(HeaderFields.member)
        serve = self.plan["serve"]
        reply = None
        if interface in serve and member in serve[interface]["methods"]:
            key = (fields.get(HeaderFields.sender), fields.get(HeaderFields.destination), interface, member)
            count = self.calls_seen[key] = self.calls_seen.get(key, 0) + 1
            if count % 2 == 0:
                reply = new_error(call, REQUESTED_ERROR, "s", ("the second call of a pair fails on purpose",))
            else:
                out = serve[interface]["methods"][member][1]
                reply = new_method_return(call, out or None, self.values.body(out))
        elif interface == PROPERTIES and member in ("Get", "GetAll"):
            target = call.body[0] if call.body else ""
            properties = serve.get(target, {}).get("properties")
            if properties is None:
                reply = new_error(call, "org.freedesktop.DBus.Error.UnknownInterface", "s", (target,))
            elif member == "GetAll":
                body = {name: (sig, self.values.of(sig)) for name, sig in properties.items()}
                reply = new_method_return(call, "a{sv}", (body,))
            elif call.body[1] in properties:
                sig = properties[call.body[1]]
                reply = new_method_return(call, "v", ((sig, self.values.of(sig)),))
            else:
                reply = new_error(call, "org.freedesktop.DBus.Error.UnknownProperty", "s", (call.body[1],))
        elif interface == INTROSPECTABLE and member == "Introspect":
            reply = new_method_return(call, "s", ("<node/>",))
        elif interface == OBJECT_MANAGER and member == "GetManagedObjects":
            reply = new_method_return(call, "a{oa{sa{sv}}}", ({},))
        else:
            reply = new_error(call, "org.freedesktop.DBus.Error.UnknownMethod", "s", (f"{interface}.{member}",))
        if not (call.header.flags & 1):  # NO_REPLY_EXPECTED
            self.send(reply)

    # --- phases ------------------------------------------------------------------------------

    def driver_call(
        self, member: str, signature: str | None, body: tuple[Any, ...], interface: str = DRIVER
    ) -> Message:
        message = new_method_call(DBusAddress(DRIVER_PATH, DRIVER, interface), member, signature, body)
        key = ("driver", self.next_serial())
        self.send(message, key)
        self.wait_for([key], time.monotonic() + TIMEOUT)
        return self.answers.pop(key)

    def own(self) -> dict[str, Any]:
        results = {}
        for name in self.plan["owns"]:
            results[name] = outcome(self.driver_call("RequestName", "su", (name, 0)))
        results["AddMatch"] = outcome(self.driver_call("AddMatch", "s", ("type='signal'",)))
        return results

    def resolve(self, probe: dict[str, Any]) -> str | None:
        via = probe.get("via")
        if via == "unique":
            return self.peers[probe["target"]]
        return via

    def probe(self, probes: list[Any]) -> list[Any]:
        results: dict[int, object] = {}
        details: dict[int, str] = {}
        calls = [p for p in probes if p["kind"] == "call"]
        pending: list[Any] = []
        deadline = time.monotonic() + 60.0
        for probe in calls:
            address = DBusAddress(probe["path"], self.resolve(probe), probe.get("interface"))
            signature = probe["signature"]
            for attempt in range(2 if probe.get("twice") else 1):
                body = tuple(probe["args"]) if "args" in probe else self.values.body(signature)
                message = new_method_call(address, probe["member"], signature or None, body)
                key = (probe["n"], attempt)
                self.send(message, key)
                pending.append(key)
            while sum(1 for key in pending if key not in self.answers) >= WINDOW:
                self.pump(0.2)
                if time.monotonic() > deadline:
                    break
        self.wait_for(pending, deadline)
        for probe in calls:
            attempts = 2 if probe.get("twice") else 1
            results[probe["n"]] = [outcome(self.answers.pop((probe["n"], a), None)) for a in range(attempts)]

        signal_keys = {}
        for probe in (p for p in probes if p["kind"] == "signal"):
            emitter = DBusAddress(probe["path"], interface=probe["interface"])
            body = tuple(probe["args"]) if "args" in probe else self.values.body(probe["signature"])
            message = new_signal(emitter, probe["member"], probe["signature"] or None, body)
            if probe.get("target"):
                message.header.fields[HeaderFields.destination] = self.peers[probe["target"]]
            serial = self.send(message, ("signal", probe["n"]))
            signal_keys[probe["n"]] = serial
        if signal_keys:
            # A denied unicast signal is answered with an error at once; a round trip to the bus
            # driver (which answers in order) shows that every such error has arrived.
            self.driver_call("GetId", None, ())
        for n in signal_keys:
            answer = self.answers.pop(("signal", n), None)
            self.waiting = {s: k for s, k in self.waiting.items() if k != ("signal", n)}
            results[n] = "sent" if answer is None else outcome(answer)

        for probe in (p for p in probes if p["kind"] in ("reply", "error")):
            # A reply or an error that answers no call of the target's (reply serial 4242 was
            # never sent to us): the policy must refuse to let us send it.
            kind = MessageType.method_return if probe["kind"] == "reply" else MessageType.error
            header = Header(Endianness.little, kind, 0, 1, -1, -1, {})
            header.fields[HeaderFields.reply_serial] = 4242
            header.fields[HeaderFields.destination] = self.peers[probe["target"]]
            if kind == MessageType.error:
                header.fields[HeaderFields.error_name] = UNREQUESTED_ERROR
            serial = self.send(Message(header, ()), (probe["kind"], probe["n"]))
            self.driver_call("GetId", None, ())
            answer = self.answers.pop((probe["kind"], probe["n"]), None)
            self.waiting.pop(serial, None)
            results[probe["n"]] = "sent" if answer is None else outcome(answer)
            if answer is not None and answer.header.message_type == MessageType.error and answer.body:
                details[probe["n"]] = str(answer.body[0])  # the daemon says which side refused

        for probe in (p for p in probes if p["kind"] == "own"):
            answer = self.driver_call("RequestName", "su", (probe["name"], 4))  # DO_NOT_QUEUE
            results[probe["n"]] = outcome(answer)
            if answer.header.message_type == MessageType.method_return and answer.body[0] == 1:
                self.driver_call("ReleaseName", "s", (probe["name"],))  # got it: give it back at once

        for probe in (p for p in probes if p["kind"] == "driver"):
            body = tuple(self.unique if arg == "$self" else arg for arg in probe["args"])
            answer = self.driver_call(probe["member"], probe["signature"] or None, body, probe["interface"])
            results[probe["n"]] = outcome(answer)
        return [
            dict({"n": n, "outcome": results[n]}, **({"why": details[n]} if n in details else {}))
            for n in sorted(results)
        ]


def connect_only(address: str, names: list[str] | None = None) -> dict[str, Any]:
    """Connect, authenticate and say Hello, step by step, and tell how it ended: ``connected``
    (Hello answered), ``error:NAME`` (Hello refused), ``disconnected`` (the daemon closed the
    connection once authentication had succeeded: what dbus-daemon does to a user its policy
    does not let connect), or ``failed:STEP:ERROR`` for anything else (no socket, a refused
    authentication, a timeout...), which is no proof of a policy at work.

    Once connected, RequestName of each of ``names``, queueing allowed (a place in a queue is a
    way in too: the owner's calls come once the owner leaves, and QEMU calls every queued owner
    of org.qemu.VMState1); ``names`` in the result maps each to its answer."""
    step = "connect"
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(TIMEOUT)
    try:
        sock.connect(get_bus(address))
        step = "auth"
        authenticator = Authenticator(enable_fds=True)
        for data in authenticator:
            sock.sendall(data)
            chunk = sock.recv(1024)
            if not chunk:
                raise EOFError("closed during authentication")
            authenticator.feed(chunk)
        step = "hello"
        hello = new_method_call(DBusAddress(DRIVER_PATH, DRIVER, DRIVER), "Hello")
        parser = Parser()
        try:
            sock.sendall(BEGIN + hello.serialise(serial=1))
            message = _reply_to(sock, parser, 1)
        except (ConnectionResetError, BrokenPipeError, EOFError):
            return {"ok": False, "outcome": "disconnected"}  # after authentication: the daemon's doing
        if message.header.message_type == MessageType.error:
            return {"ok": False, "outcome": outcome(message)}
        result: dict[str, Any] = {"ok": True, "outcome": "connected", "unique": str(message.body[0])}
        if names:
            step = "own"
            claimed = {}
            for serial, name in enumerate(names, start=2):
                request = new_method_call(DBusAddress(DRIVER_PATH, DRIVER, DRIVER), "RequestName", "su", (name, 0))
                try:
                    sock.sendall(request.serialise(serial=serial))
                    claimed[name] = outcome(_reply_to(sock, parser, serial))
                except (ConnectionResetError, BrokenPipeError, EOFError):
                    claimed[name] = "disconnected"
            result["names"] = claimed
        return result
    except Exception as error:
        return {"ok": False, "outcome": f"failed:{step}:{type(error).__name__}: {error}"}
    finally:
        sock.close()


def _reply_to(sock: socket.socket, parser: Parser, serial: int) -> Message:
    """The answer to the message sent with ``serial`` (signals such as NameAcquired skipped);
    EOFError when the daemon hangs up first."""
    while True:
        message = parser.get_next_message()
        if message is None:
            chunk = sock.recv(4096)
            if not chunk:
                raise EOFError("disconnected")
            parser.add_data(chunk)
            continue
        if message.header.fields.get(HeaderFields.reply_serial) == serial:
            return message


def outcome(message: Message | None) -> str:
    if message is None:
        return "timeout"
    if message.header.message_type == MessageType.error:
        return "error:" + str(message.header.fields.get(HeaderFields.error_name, ""))
    signature = str(message.header.fields.get(HeaderFields.signature, ""))
    if signature == "u":  # RequestName's answer: say which
        return f"reply:u={message.body[0]}"
    return "reply:" + signature


def main(argv: list[Any]) -> int:
    address = argv[1]
    if argv[2] == "--connect-only":
        emit(dict({"event": "connect"}, **connect_only(address, list(argv[3:]))))
        return 0
    with open(argv[2]) as stream:
        plan = json.load(stream)
    try:
        peer = Peer(address, plan)
    except Exception as error:
        emit({"event": "hello", "ok": False, "error": f"{type(error).__name__}: {error}"})
        return 1
    emit({"event": "hello", "ok": True, "unique": peer.unique})
    peer.selector.register(sys.stdin, selectors.EVENT_READ, "runner")
    buffered = b""
    while True:
        for key, _ in peer.selector.select(timeout=0.5):
            if key.data == "bus":
                peer.pump(0)
                continue
            chunk = os.read(sys.stdin.fileno(), 65536)
            if not chunk:
                return 0
            buffered += chunk
            while b"\n" in buffered:
                line, buffered = buffered.split(b"\n", 1)
                command = json.loads(line)
                if command["cmd"] == "own":
                    emit({"event": "owned", "results": peer.own()})
                elif command["cmd"] == "probe":
                    peer.peers = command["peers"]
                    emit({"event": "probed", "results": peer.probe(plan["probes"])})
                elif command["cmd"] == "flush":
                    peer.driver_call("GetId", None, ())
                    emit({"event": "received", "signals": peer.received, "stray": peer.stray})
                elif command["cmd"] == "exit":
                    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

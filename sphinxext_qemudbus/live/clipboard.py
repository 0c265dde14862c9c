"""``conform --listen`` as a clipboard client: QEMU's calls to a registered client, checked.

``org.qemu.Display1.Clipboard`` is implemented on both sides of the bus: a client calls
``Register`` on QEMU's ``/org/qemu/Display1/Clipboard``, and QEMU then calls the same interface on
the client's own ``/org/qemu/Display1/Clipboard``, by the client's unique name.  Inside the
``Register`` handler QEMU reads the client's properties (``Properties.GetAll``, waited for, the VM
stalled meanwhile) and calls ``Register`` on the client, before it replies; so the client must
serve its object while it waits for that reply.  `ClipboardClient` does so on a connection of its
own, from a thread: it registers, grabs and releases the first selection (QEMU passes the
release on to its clipboard peers, this client included), serves QEMU's calls until the listening time ends, and unregisters.  Every message QEMU
sends it goes through `traffic.TrafficCheck`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from ..diagnostics.diagnostic import Diagnostic, Location
from ..diagnostics.rules import diagnostic
from ..model.introspection import Direction, Interface, Method, Property
from .listen import INTROSPECTABLE, default_body, default_value, introspection_xml
from .traffic import NO_REPLY_EXPECTED, PROPERTIES, Seen, TrafficCheck
from .wire import Received, Wire, WireError, error_text

CLIPBOARD = "org.qemu.Display1.Clipboard"
CLIPBOARD_PATH = "/org/qemu/Display1/Clipboard"
LABEL = "clipboard client"


class ClipboardClient(threading.Thread):
    """A clipboard client on its own bus connection ``wire``, served until ``stop_at``."""

    def __init__(
        self, wire: Wire, dest: str, check: TrafficCheck, lock: threading.Lock, timeout: float, stop_at: float
    ) -> None:
        super().__init__(name=LABEL, daemon=True)
        self.wire = wire
        self.dest = dest
        self.check = check
        self.lock = lock
        self.timeout = timeout
        self.stop_at = stop_at
        self.interface: Interface | None = check.interface(CLIPBOARD)
        self.findings: list[Diagnostic] = []
        self.registered = False
        self._pending: dict[int, str] = {}  # serial of our call → its member

    def run(self) -> None:
        if self.interface is None:
            return
        try:
            self._call("Register", "", ())
            while True:
                received = self.wire.receive(self.stop_at)
                try:
                    self._handle(received)
                finally:
                    received.close()
        except TimeoutError:
            pass  # the listening time is over
        except WireError as error:
            self.findings.append(
                diagnostic("L018", self._where(), f"the clipboard client's connection failed: {error}")
            )
        finally:
            if self.registered:
                with contextlib.suppress(TimeoutError, WireError):  # closing the connection unregisters too
                    self._call("Unregister", "", (), reply=False)

    def _where(self) -> Location:
        return Location(f"{self.dest}:{CLIPBOARD_PATH}")

    def _call(self, member: str, signature: str, body: tuple[Any, ...], reply: bool = True) -> None:
        from jeepney import DBusAddress, MessageFlag, new_method_call

        message = new_method_call(DBusAddress(CLIPBOARD_PATH, self.dest, CLIPBOARD), member, signature, body)
        if not reply:
            message.header.flags |= MessageFlag.no_reply_expected
        serial = self.wire.send(message, min(time.monotonic() + self.timeout, self.stop_at))
        if reply:
            self._pending[serial] = member

    def _handle(self, received: Received) -> None:
        message = received.message
        seen = Seen.of(message, len(received.fds))
        if seen.kind in (2, 3):  # the reply to one of our calls
            member = self._pending.pop(seen.fields.get(5, -1), None)
            problem = error_text(message)
            if member == "Register" and problem is None:
                self.registered = True
                # Take the clipboard and let it go: QEMU tells its clipboard peers, this one too.
                self._call("Grab", "uuas", (0, 1, ["text/plain;charset=utf-8"]))
                self._call("Release", "u", (0,))
            elif member is not None and problem is not None:
                text = f"{CLIPBOARD}.{member} from the clipboard client failed: {problem}"
                self.findings.append(diagnostic("L014", self._where(), text))
            return
        if seen.kind != 1:
            return
        if not seen.flags & NO_REPLY_EXPECTED:
            self.wire.send(self._answer(message, seen), time.monotonic() + self.timeout)
        with self.lock:
            self.check.check(seen, LABEL, LABEL)

    def _answer(self, message: Any, seen: Seen) -> Any:
        from jeepney.wrappers import new_error, new_method_return

        assert self.interface is not None
        interface, member, path = seen.field(2), seen.field(3), seen.field(1)
        if path != CLIPBOARD_PATH:
            return new_error(message, "org.freedesktop.DBus.Error.UnknownObject", "s", (f"no object at {path}",))
        if interface == INTROSPECTABLE and member == "Introspect":
            return new_method_return(message, "s", (introspection_xml((self.interface,)),))
        if interface == PROPERTIES and member == "GetAll":
            if seen.body != (CLIPBOARD,):
                return new_error(message, "org.freedesktop.DBus.Error.UnknownInterface", "s", (str(seen.body[:1]),))
            values = {
                p.name: (p.type, default_value(p.type)) for p in self.interface.members if isinstance(p, Property)
            }
            return new_method_return(message, "a{sv}", (values,))
        method = next((m for m in self.interface.members if isinstance(m, Method) and m.name == member), None)
        if interface in (None, CLIPBOARD) and method is not None:
            out = "".join(arg.type for arg in method.args if arg.direction is Direction.OUT)
            if member == "Request":  # the client holds no data: as a client with an empty clipboard says
                return new_error(message, "org.qemu.Display1.Error.Failed", "s", ("Empty clipboard",))
            return new_method_return(message, out, default_body(out))
        return new_error(message, "org.freedesktop.DBus.Error.UnknownMethod", "s", (f"no method {member}",))

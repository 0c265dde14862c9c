"""``conform --monitor``: watch a bus and check every ``org.qemu.*`` message on it.

The tool opens a connection of its own and asks the bus driver to make it a monitor
(``org.freedesktop.DBus.Monitoring.BecomeMonitor`` with no match rule: every message).  From then
on it only receives: copies of the messages between any two peers, which `traffic.TrafficCheck`
checks (calls, the replies matched to their calls, signals, error names).  This is how the calls
QEMU *makes* on a bus are checked, such as the ``org.qemu.VMState1`` ``Save`` and ``Load`` calls
of a migration.

A bus whose policy does not allow monitoring refuses the call: the policies the tool generates
never allow it (a monitor reads every message), so this is for test buses and debugging.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..diagnostics.diagnostic import Diagnostic
from .traffic import METHOD_CALL, SIGNAL, Seen, TrafficCheck
from .wire import Wire, WireError

MONITORING = "org.freedesktop.DBus.Monitoring"


class MonitorRefused(Exception):
    """The bus will not make this connection a monitor."""


@dataclass
class MonitorResult:
    messages: int = 0
    findings: list[Diagnostic] = field(default_factory=list)
    problem: str | None = None  # why monitoring ended early


def become_monitor(wire: Wire, timeout: float) -> None:
    """Turn ``wire`` into a monitor of every message, or raise `MonitorRefused`."""
    from jeepney import DBusAddress, HeaderFields, MessageType, new_method_call

    driver = DBusAddress("/org/freedesktop/DBus", bus_name="org.freedesktop.DBus", interface=MONITORING)
    call = new_method_call(driver, "BecomeMonitor", "asu", ([], 0))
    try:
        received = wire.call(call, time.monotonic() + timeout)
    except TimeoutError as error:
        raise MonitorRefused(f"no reply to BecomeMonitor within {timeout:g} s") from error
    except WireError as error:
        raise MonitorRefused(str(error)) from error
    received.close()
    reply = received.message
    if reply.header.message_type is MessageType.error:
        detail = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
        name = reply.header.fields.get(HeaderFields.error_name, "an error")
        raise MonitorRefused(f"the bus refused BecomeMonitor: {detail or name}")


def monitor(
    wire: Wire,
    check: TrafficCheck,
    until: float,
    lock: threading.Lock | None = None,
    ready: Callable[[], None] | None = None,
) -> MonitorResult:
    """Check every message seen on ``wire`` (already a monitor) until ``until``."""
    result = MonitorResult()
    guard = lock or threading.Lock()
    if ready is not None:
        ready()
    try:
        while True:
            received = wire.receive(until)
            try:
                seen = Seen.of(received.message, len(received.fds))
                result.messages += 1
                sender = seen.field(7) or "?"
                # A call is keyed by its sender's name, a reply by its destination: the same peer.
                connection = sender if seen.kind in (METHOD_CALL, SIGNAL) else seen.field(6) or "?"
                with guard:
                    check.check(seen, sender, connection)
            finally:
                received.close()
    except TimeoutError:
        pass
    except WireError as error:
        result.problem = str(error)
    return result

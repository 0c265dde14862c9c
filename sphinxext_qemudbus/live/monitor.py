"""``conform --monitor``: watch a bus and check every ``org.qemu.*`` message on it.

The tool opens a connection of its own and asks the bus driver to make it a monitor
(``org.freedesktop.DBus.Monitoring.BecomeMonitor`` with no match rule: every message).  From then
on it only receives: copies of the messages between any two peers, which `traffic.TrafficCheck`
checks (calls, the replies matched to their calls, signals, error names).  This is how the calls
QEMU *makes* on a bus are checked, such as the ``org.qemu.VMState1`` ``Save`` and ``Load`` calls
of a migration.  The connection is served by the event loop (`loop`), beside the listeners.

A bus whose policy does not allow monitoring refuses the call: the policies the tool generates
never allow it (a monitor reads every message), so this is for test buses and debugging.  A
message over the tool's bound on values (`message.MAX_VALUES`) is skipped and counted; the
report says how many were not checked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..diagnostics.diagnostic import Diagnostic
from .loop import Connection, Loop
from .message import DESTINATION, ERROR, METHOD_CALL, SENDER, SIGNAL, OverBound
from .traffic import Seen, TrafficCheck
from .wire import Received, Wire, WireError, error_text

MONITORING = "org.freedesktop.DBus.Monitoring"


class MonitorRefused(Exception):
    """The bus will not make this connection a monitor."""


@dataclass
class MonitorResult:
    messages: int = 0
    findings: list[Diagnostic] = field(default_factory=list)
    problem: str | None = None  # why monitoring ended early
    #: Messages skipped as over the tool's bound, and the first one's description.
    skipped: int = 0
    first_skipped: str = ""
    #: Whether monitoring lasted as long as it was asked to.
    complete: bool = False


def become_monitor(wire: Wire, timeout: float) -> None:
    """Turn ``wire`` into a monitor of every message, or raise `MonitorRefused`."""
    from jeepney import DBusAddress, new_method_call

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
    if reply.kind == ERROR:
        raise MonitorRefused(f"the bus refused BecomeMonitor: {error_text(reply)}")


class Monitoring:
    """A monitor connection on ``loop``, checking every message until ``until``."""

    def __init__(self, loop: Loop, wire: Wire, check: TrafficCheck, until: float, grace: float) -> None:
        self.loop = loop
        self.check = check
        self.until = until
        self.grace = grace
        self.result = MonitorResult()
        self.connection = Connection(loop, wire, "monitor", self)
        loop.at(until, self.stop, keep_running=True)

    def stop(self) -> None:
        self.result.complete = self.connection.state != "closed"
        self.connection.finish(time.monotonic() + self.grace, "monitoring ended")

    # --- the connection's handler ---------------------------------------------------------

    def opened(self, connection: Connection) -> None:
        pass

    def received(self, connection: Connection, received: Received) -> None:
        message = received.message
        seen = Seen.of(message, len(received.fds))
        self.result.messages += 1
        sender = message.field(SENDER) or "?"
        destination = message.field(DESTINATION) or "?"
        # Calls and signals are keyed by their sender, replies by their destination: the caller.
        connection_key = sender if message.kind in (METHOD_CALL, SIGNAL) else destination
        self.check.check(seen, sender, connection_key, destination)

    def refused(self, connection: Connection, error: OverBound) -> None:
        self.result.messages += 1
        self.result.skipped += 1
        if not self.result.first_skipped:
            self.result.first_skipped = str(error)

    def closed(self, connection: Connection, problem: str | None) -> None:
        if problem is not None:
            self.result.problem = problem
            self.result.complete = False

"""The probe's loop: one call, then what became of QEMU; relaunch; bisect; the findings.

After every call `Probe.attempt` asks, in this order: did QEMU die (its exit status, or the bus
saying the recipient left; with ``--launch`` the exit status or signal and its last stderr lines)?
does it still answer (`Probe.liveness`: a read of ``VM.Name`` that waits at most the hang
timeout: answered past the stall threshold is a *stall*, never answered a *hang*, and QEMU is
killed)?  did the call get a reply, and does the reply have the registry's signature and a
documented error name?  After a crash or a hang QEMU is relaunched (`QemuLaunch.restart`) and
the session set up again (a display listener, a clipboard registration when needed), and the
probe goes on.  Against a peer it did not launch it stops at the first crash or hang: it cannot
bring the peer back.

An integer that crashes QEMU is bisected against the nearest value that did not (`bisect`): the
finding then says "crashes for every value >= N of this argument" when the type's extreme and
seeded values beyond N crash too, and the values past the threshold are not called again.  The
whole run stops at its deadline, and every member gets at most ``per_member`` calls.
"""

from __future__ import annotations

import fnmatch
import os
import random
import socket
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from jeepney import DBusAddress, new_method_call

from ...diagnostics.frozen import record
from ...model.introspection import Interface, Method, Property, interface_for_platform
from ...model.registry import Registry
from ..conform import current_platform
from ..listen import AUDIO, AUDIO_IN, AUDIO_OUT, CONSOLE, LISTENER, REGISTRATIONS, Registration
from ..message import ERROR, ERROR_NAME, METHOD_RETURN
from ..served import PROPERTIES, ServedObject, default_body
from ..wire import Received, Wire, WireError
from .descriptors import KINDS as DESCRIPTOR_KINDS
from .descriptors import SERVED, SILENT, Descriptor, make_descriptor
from .findings import Fault, call_text, reproduction, silent_listener_reproduction
from .peers import BusClient, ListenerPeer, ReplyVariant, Responder, Session, wait_for_calls
from .plan import Target, session_registration
from .values import INTEGER_RANGES, LONG, Value, arg_values, neutral_value, shown

VM_PATH = "/org/qemu/Display1/VM"
VM = "org.qemu.Display1.VM"
CLIPBOARD_PATH = "/org/qemu/Display1/Clipboard"
CLIPBOARD = "org.qemu.Display1.Clipboard"
#: Error names with which the bus itself answers for a peer that is gone.
_GONE = ("org.freedesktop.DBus.Error.NoReply", "org.freedesktop.DBus.Error.ServiceUnknown")
#: Samples beyond a bisected threshold that must fault too before "every value >= N" is said.
EXTENT_SAMPLES = 2


@dataclass
class Options:
    seed: str = "0"
    per_member: int = 64
    call_timeout: float = 5.0
    stall: float = 2.0
    hang_timeout: float = 30.0
    deadline: float = float("inf")
    #: How long to wait for QEMU to make the call a reply variant answers.
    answer_wait: float = 3.0
    bisect: bool = True


@dataclass
class Outcome:
    """What one call did: ``kind`` is None when nothing went wrong."""

    kind: str | None = None
    evidence: str = ""
    reply: Received | None = None
    error_name: str | None = None
    reply_signature: str | None = None


@dataclass
class Report:
    faults: list[Fault] = field(default_factory=list)
    calls: int = 0
    relaunches: int = 0
    probed: list[str] = field(default_factory=list)
    #: Members and answers QEMU never got to (a reply variant it never asked for), with why.
    unexercised: list[str] = field(default_factory=list)
    #: What the deadline or the per-member bound left out.
    unchecked: list[str] = field(default_factory=list)
    stopped: str | None = None


class Stop(Exception):
    """The run cannot go on: the deadline passed, or a peer it did not launch is gone."""


class Probe:
    """One probing run against the peer ``dest`` on the bus ``wire`` is connected to.
    ``launched`` is the `QemuLaunch` when the tool started QEMU itself (None: a peer on an
    existing bus, which is never relaunched)."""

    def __init__(
        self,
        registry: Registry,
        wire: Wire,
        dest: str,
        options: Options,
        launched: Any = None,
        say: Callable[[str], None] = lambda text: None,
        address: str | None = None,
    ) -> None:
        self.registry = registry
        #: The bus address, for the fresh connections of registration calls (None: reuse ``wire``).
        self.address = address
        #: The connections registrations were made from, kept open as a client keeps them.
        self.registrants: list[BusClient] = []
        self.platform = current_platform()
        self.dest = dest
        self.options = options
        self.launched = launched
        self.say = say
        clipboard = (
            (interface_for_platform(registry.interface(CLIPBOARD), current_platform()),)
            if CLIPBOARD in registry
            else ()
        )
        #: Every connection of the run is served by this session's event loop.
        self.session = Session(wire.reader.budget)
        served = {CLIPBOARD_PATH: ServedObject(CLIPBOARD_PATH, clipboard)} if clipboard else {}
        self.client = BusClient(self.session, wire, Responder(served), owned=False)
        self.report = Report()
        self.folder = tempfile.mkdtemp(prefix="qemu-dbus-probe-")
        self.peers: list[ListenerPeer] = []
        self.kept: list[Descriptor] = []
        self.registered: set[str] = set()
        self.console: str | None = None
        self._bisected: dict[tuple[str, int], tuple[int, int]] = {}
        self._output_at = 0
        #: Why the run cannot go on: a peer it did not launch crashed or hangs.
        self.gone: str | None = None

    def served(self, name: str) -> Interface:
        """The registry's interface ``name`` as a client serves it on this platform."""
        return interface_for_platform(self.registry.interface(name), self.platform)

    # --- the session ---------------------------------------------------------------------

    def setup(self, consoles: Sequence[str]) -> None:
        """What a real client does first, after every (re)launch: a display listener on the
        first console, served (so that the console's size is current, as for any client)."""
        self.registered = set()
        self.console = consoles[0] if consoles else None
        if self.console is not None and CONSOLE in self.registry and LISTENER in self.registry:
            self._register_listener(self.console, CONSOLE, "RegisterListener", LISTENER, None)

    def _register_listener(
        self,
        path: str,
        interface: str,
        method: str,
        served: str,
        replacements: dict[Any, ReplyVariant] | None,
        interfaces: tuple[Interface, ...] = (),
    ) -> tuple[Responder, ListenerPeer, Received | None]:
        listener_path = next(r.path for r in registrations() if r.method == method and r.served[0] == served)
        objects = {listener_path: ServedObject(listener_path, interfaces or (self.served(served),))}
        responder = Responder(objects, replacements)
        client = self.registrant()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        peer = ListenerPeer(self.session, ours, responder, self.options.hang_timeout)
        self.peers.append(peer)
        call = new_method_call(DBusAddress(path, bus_name=self.dest, interface=interface), method, "h", (theirs,))
        try:
            reply = client.call(call, self.options.call_timeout, handing_over=[theirs])
        except WireError as error:
            raise Stop(f"the bus connection broke: {error}") from error
        return responder, peer, reply

    def registrant(self) -> BusClient:
        """A fresh bus connection for a registration: QEMU 7.2 accepts one display listener per
        console and (every release) one audio listener of each direction per bus name, so
        each registration comes from a peer of its own, as an attacker's would.  It stays open
        until QEMU is relaunched or the run ends."""
        if self.address is None:
            return self.client
        from ..wire import connect_bus

        try:
            wire = connect_bus(self.address, time.monotonic() + self.options.call_timeout, self.session.budget)
        except (TimeoutError, WireError, OSError) as error:
            raise Stop(f"cannot open another connection to the bus: {error or 'no answer'}") from error
        client = BusClient(self.session, wire, Responder({}))
        self.registrants.append(client)
        return client

    def _ensure_registered(self, target: Target) -> None:
        if not target.needs_registration or target.interface.name in self.registered:
            return
        register = session_registration(target.interface)
        assert register is not None
        call = new_method_call(
            DBusAddress(target.path, bus_name=self.dest, interface=target.interface.name), register.name
        )
        try:
            reply = self.client.call(call, self.options.call_timeout)
        except WireError as error:
            raise Stop(f"the bus connection broke: {error}") from error
        if reply is not None and reply.message.kind == METHOD_RETURN:
            self.registered.add(target.interface.name)

    def teardown(self) -> None:
        for peer in self.peers:
            peer.stop()
        self.peers = []
        for descriptor in self.kept:
            descriptor.close()
        self.kept = []
        for client in self.registrants:
            client.close()
        self.registrants = []

    def close(self) -> None:
        """The run is over: every connection closes (the first bus connection is the command's
        to close), every descriptor the probe kept with them."""
        self.teardown()
        self.client.close()
        self.session.close()

    # --- one call ------------------------------------------------------------------------

    def attempt(self, target: Target, values: Sequence[Any]) -> Outcome:
        """Make one call and find out what it did to QEMU."""
        if self.gone is not None:
            raise Stop(self.gone)
        self._check_deadline()
        self._ensure_registered(target)
        descriptors: list[Descriptor] = []
        body: list[Any] = []
        for code, value in zip(target.signature, values):
            if code == "h":
                descriptor = make_descriptor(str(value), self.folder)
                descriptors.append(descriptor)
                body.append(descriptor.fd)
            else:
                body.append(value)
        message = self._message(target, body)
        self.report.calls += 1
        self._mark_output()
        listener = _listener_of(target)
        for descriptor in descriptors:
            if descriptor.kind == SERVED and listener is not None:
                # The probe serves a listener on the other end, as a display client does.
                kept = descriptor.take_kept()
                if kept is not None:
                    responder = Responder({listener[1]: ServedObject(listener[1], (self.served(listener[0]),))})
                    self.peers.append(ListenerPeer(self.session, kept, responder, self.options.hang_timeout))
        client = self.registrant() if target.hands_over_connection else self.client
        try:
            outcome = self.exchange(message, client)
        finally:
            for descriptor in descriptors:
                if descriptor.kept is not None and descriptor.kind in (SILENT, SERVED):
                    self.kept.append(descriptor)  # the other end stays open (and silent)
                else:
                    _close_sent(descriptor)
        if outcome.kind in ("crash", "hang"):
            return outcome
        if outcome.kind is None:
            outcome = self._check_reply(target, outcome)
        return outcome

    def _message(self, target: Target, body: list[Any]) -> Any:
        member = target.member
        if isinstance(member, Property):
            address = DBusAddress(target.path, bus_name=self.dest, interface=PROPERTIES)
            return new_method_call(address, "Set", "ssv", (target.interface.name, member.name, (member.type, body[0])))
        address = DBusAddress(target.path, bus_name=self.dest, interface=target.interface.name)
        return new_method_call(address, member.name, "".join(target.signature) or None, tuple(body))

    def exchange(self, message: Any, client: BusClient) -> Outcome:
        """Send ``message`` and, right behind it, a liveness read: QEMU handles the calls of one
        connection in order, so a handler that blocks its main loop delays the read, even when
        its own reply came at once (or never comes)."""
        started = time.monotonic()
        try:
            serial = client.send(message, self.options.call_timeout)
            live = client.send(self._liveness_message(), self.options.hang_timeout)
            answer = client.collect(live, started + self.options.hang_timeout)
            waited = time.monotonic() - started
            reply = client.collect(serial, started + self.options.call_timeout if answer is not None else 0.0)
        except WireError as error:
            raise Stop(f"the bus connection broke: {error}") from error
        return self.judge(reply, _alive(answer), waited, client.refused)

    def observe(self, reply: Received | None) -> Outcome:
        """What became of QEMU after a call whose reply is ``reply``: a fresh liveness read."""
        started = time.monotonic()
        answered = self.liveness(self.options.hang_timeout)
        return self.judge(reply, answered, time.monotonic() - started)

    def judge(
        self, reply: Received | None, answered: bool | None, waited: float, refused: str | None = None
    ) -> Outcome:
        """The outcome of a call whose reply is ``reply`` (None: none came, or ``refused`` says
        why it was not read: over the tool's bound), when the liveness read behind it answered
        (``answered``: True; False: the bus said QEMU is gone; None: no answer) after ``waited``
        seconds."""
        outcome = Outcome(reply=reply)
        if reply is not None:
            reply.close()
            if reply.message.kind == ERROR:
                outcome.error_name = reply.message.field(ERROR_NAME) or ""
            else:
                outcome.reply_signature = reply.message.signature
        gone = outcome.error_name in _GONE or answered is False
        status = self._exit_status(wait=2.0 if gone else 0.0)
        if status is not None or gone:
            return self._crashed(status, outcome)
        if answered is None:
            status = self._exit_status(wait=0.5)
            if status is not None:
                return self._crashed(status, outcome)
            outcome.kind = "hang"
            outcome.evidence = (
                f"QEMU stopped answering: a read of VM.Name got no reply within {self.options.hang_timeout:g} s"
            )
            self._recover("hang")
            return outcome
        if waited > self.options.stall:
            outcome.kind = "stall"
            outcome.evidence = f"QEMU did not answer a read of VM.Name for {waited:.1f} s"
            return outcome
        if reply is None:
            outcome.kind = "contract"
            outcome.evidence = (
                f"QEMU replied, but {refused}"
                if refused is not None
                else f"no reply within {self.options.call_timeout:g} s, while QEMU kept answering other calls"
            )
        return outcome

    def _crashed(self, status: int | None, outcome: Outcome) -> Outcome:
        from ..launch import exit_text

        outcome.kind = "crash"
        if self.launched is not None:
            last = [line.strip() for line in self._new_output() if line.strip()]
            words = f"; it wrote: {' / '.join(last[-3:])}" if last else ""
            outcome.evidence = f"QEMU exited ({exit_text(status)}){words}"
        else:
            outcome.evidence = f"{self.dest} left the bus"
        self._recover("crash")
        return outcome

    def _mark_output(self) -> None:
        """Remember where QEMU's output ends now: a crash's evidence is what it wrote after."""
        self._output_at = _size_of(self.launched.qemu.log) if self.launched is not None else 0

    def _new_output(self) -> list[str]:
        """The lines QEMU wrote since `_mark_output` (the last five, at most 4 KiB of them)."""
        try:
            with open(self.launched.qemu.log, "rb") as stream:
                stream.seek(max(self._output_at, _size_of(self.launched.qemu.log) - 4096))
                text = stream.read(4096).decode("utf-8", "replace")
        except OSError:
            return []
        return text.splitlines()[-5:]

    def _recover(self, why: str) -> None:
        self.teardown()
        if self.launched is None:
            # The fault is reported; the run stops before the next call.
            what = "crashed" if why == "crash" else "hangs"
            self.gone = f"{self.dest} {what}; the probe cannot relaunch a peer it did not start"
            return
        self._check_deadline()
        self.say(f"relaunching QEMU after a {why}")
        self.report.relaunches += 1
        self.launched.restart(self.options.deadline)
        self.setup([self.console] if self.console else [])

    def _exit_status(self, wait: float) -> int | None:
        if self.launched is None:
            return None
        status = self.launched.qemu_exit()
        if status is None and wait > 0:
            status = self.launched.wait_exit(wait)
        return status  # type: ignore[no-any-return]

    def _liveness_message(self) -> Any:
        address = DBusAddress(VM_PATH, bus_name=self.dest, interface=PROPERTIES)
        return new_method_call(address, "Get", "ss", (VM, "Name"))

    def liveness(self, timeout: float) -> bool | None:
        """True when QEMU answered a read of ``VM.Name`` within ``timeout``; False when the bus
        said it is gone; None when it did not answer."""
        try:
            return _alive(self.client.call(self._liveness_message(), timeout))
        except WireError as error:
            raise Stop(f"the bus connection broke: {error}") from error

    def _check_reply(self, target: Target, outcome: Outcome) -> Outcome:
        if outcome.reply_signature is not None and outcome.reply_signature != target.out_signature:
            outcome.kind = "contract"
            outcome.evidence = (
                f"the reply's signature is {outcome.reply_signature!r}, the registry's is {target.out_signature!r}"
            )
        elif outcome.error_name and outcome.error_name not in target.documented_errors():
            outcome.kind = "undocumented-error"
            outcome.evidence = f"QEMU replied with the error {outcome.error_name}, which the registry does not give"
        return outcome

    def _check_deadline(self) -> None:
        if time.monotonic() >= self.options.deadline:
            raise Stop("the run's deadline passed")

    # --- a member ----------------------------------------------------------------------------

    def probe_member(self, target: Target) -> None:
        """Every value of every argument of ``target``, one argument varying at a time."""
        properties = self.integer_properties(target.path)
        names = target.arg_names
        per_arg = [
            arg_values(
                code, target.texts(i), properties, f"{self.options.seed}:{target.name}:{names[i]}", DESCRIPTOR_KINDS
            )
            for i, code in enumerate(target.signature)
        ]
        base = [_neutral(code, target.texts(i)) for i, code in enumerate(target.signature)]
        calls: list[tuple[int | None, list[Value]]] = [] if target.signature else [(None, base)]
        for argument, values in enumerate(per_arg):
            for value in values:
                calls.append((argument, [*base[:argument], value, *base[argument + 1 :]]))
        if len(calls) > self.options.per_member:
            self.report.unchecked.append(
                f"{target.name}: {len(calls) - self.options.per_member} of {len(calls)} calls left out (--per-member)"
            )
            calls = _spread(calls, self.options.per_member)
        self.report.probed.append(target.name)
        passed: dict[int, list[int]] = {}
        grouped: dict[tuple[Any, ...], tuple[Fault, list[str]]] = {}
        for index, chosen in calls:
            if self.gone is not None:
                break
            if index is not None and self._covered(target, index, chosen[index]):
                continue
            concrete = [v.value for v in chosen]
            outcome = self.attempt(target, concrete)
            if outcome.kind is None:
                if index is not None and chosen[index].integer:
                    passed.setdefault(index, []).append(chosen[index].value)
                continue
            threshold = ""
            bisectable = outcome.kind in ("crash", "stall") and index is not None and chosen[index].integer
            if bisectable and self.options.bisect and self.gone is None:
                assert index is not None
                threshold, concrete = self.bisect(target, index, chosen, passed.get(index, []), outcome.kind)
            key = (index, outcome.kind, _evidence_key(outcome.evidence), threshold)
            if key in grouped:
                grouped[key][1].append(shown(concrete[index]) if index is not None else "")
                continue
            fault = Fault(
                kind=outcome.kind,
                interface=target.interface.name,
                member=target.member.name,
                path=target.path,
                call=call_text(_call_name(target), names, concrete, shown),
                evidence=outcome.evidence,
                command=self.command(target, concrete),
                threshold=threshold,
                trigger=chosen[index].label if index is not None else "",
            )
            grouped[key] = (fault, [])
            self.say(f"{fault.kind}: {fault.qualified} {fault.call}" + (f" ({threshold})" if threshold else ""))
        for (index, *_), (first, others) in grouped.items():
            more = ""
            if others and index is not None:
                more = f"; the same for {len(others)} other value(s) of {names[index]}: {', '.join(others[:5])}"
                more += ", ..." if len(others) > 5 else ""
            self.report.faults.append(replace(first, evidence=first.evidence + more) if more else first)
        if self.gone is not None:
            raise Stop(self.gone)

    def command(self, target: Target, values: Sequence[Any]) -> str:
        member = target.member
        if isinstance(member, Property):
            return reproduction(
                self.dest,
                target.path,
                PROPERTIES,
                "Set",
                ("s", "s", "v"),
                (target.interface.name, member.name, values[0]),
            )
        register = session_registration(target.interface) if target.needs_registration else None
        first = (register.name,) if register is not None else ()
        return reproduction(self.dest, target.path, target.interface.name, member.name, target.signature, values, first)

    def integer_properties(self, path: str) -> dict[str, int]:
        """The integer properties of the object at ``path``, as the peer reports them now."""
        found: dict[str, int] = {}
        for interface in _interfaces_at(self.registry, path):
            address = DBusAddress(path, bus_name=self.dest, interface=PROPERTIES)
            try:
                reply = self.client.call(
                    new_method_call(address, "GetAll", "s", (interface.name,)), self.options.call_timeout
                )
            except WireError as error:
                raise Stop(f"the bus connection broke: {error}") from error
            # The signature first: a body that is not a{sv} is never decoded.
            if reply is None or reply.message.kind != METHOD_RETURN or reply.message.signature != "a{sv}":
                continue
            for name, (signature, value) in reply.message.body[0].items():
                if signature in INTEGER_RANGES and isinstance(value, int):
                    found[str(name)] = value
        return found

    # --- bisection ---------------------------------------------------------------------------

    def bisect(
        self, target: Target, index: int, chosen: list[Value], passed: list[int], kind: str
    ) -> tuple[str, list[Any]]:
        """The smallest value at or below ``chosen[index]`` that does what it did (``kind``: a
        crash or a stall), or the largest above it when every passing value lies above, and how
        far that extends beyond it: "crashes for every value >= N of button"."""
        bad = int(chosen[index].value)
        name = target.arg_names[index]
        low, high = INTEGER_RANGES[target.signature[index]]
        below = [p for p in passed if p < bad]
        above = [p for p in passed if p > bad]
        concrete = [v.value for v in chosen]

        verb = {"crash": "crashes", "stall": "stalls"}[kind]

        def crashes(value: int) -> bool:
            attempt = [*concrete[:index], value, *concrete[index + 1 :]]
            return self.attempt(target, attempt).kind == kind

        if below or not above:
            good = max(below) if below else None
            if good is None:
                if bad == low or not crashes(low):
                    good = low if bad != low else None
                if good is None:
                    return "", concrete
            good, bad = _neighbours(good, bad, crashes)
            extent = [
                high,
                *random.Random(f"{self.options.seed}:{target.name}:{name}:extent").sample(
                    range(bad, high + 1), min(EXTENT_SAMPLES, high - bad + 1)
                ),
            ]
            every = all(crashes(v) for v in sorted(set(extent) - {bad}))
            self._bisected[(target.name, index)] = (bad, high) if every else (bad, bad)
            text = (
                f"{verb} for every value >= {bad} of {name}" if every else f"{verb} for {name} = {bad}, not for {good}"
            )
        else:
            good, bad = _neighbours(min(above), bad, crashes)
            every = all(crashes(v) for v in sorted({low} - {bad}))
            self._bisected[(target.name, index)] = (low, bad) if every else (bad, bad)
            text = (
                f"{verb} for every value <= {bad} of {name}" if every else f"{verb} for {name} = {bad}, not for {good}"
            )
        return text, [*concrete[:index], bad, *concrete[index + 1 :]]

    def _covered(self, target: Target, index: int, value: Value) -> bool:
        """Whether a bisected threshold already says what this value does."""
        span = self._bisected.get((target.name, index))
        return span is not None and value.integer and span[0] <= value.value <= span[1]

    # --- what QEMU waits for from its peers --------------------------------------------------

    def probe_answers(self, objects: dict[str, tuple[str, ...]], patterns: Sequence[str] = ()) -> None:
        """Answer QEMU's calls to the listeners it is handed in every way a peer can: for each
        registration the peer offers (that ``patterns`` select), one listener per
        `answer_probes` entry.  A call QEMU does not make with one answer is not waited for
        again with the others (nor an optional interface whose ``GetAll`` it never sends)."""
        for registration in registrations():
            interface, method, served = registration.interface, registration.method, registration.served[0]
            path = next((p for p, names in sorted(objects.items()) if interface in names), None)
            if path is None or served not in self.registry or interface not in self.registry:
                continue
            if patterns and not any(fnmatch.fnmatchcase(f"{interface}.{method}", p) for p in patterns):
                continue
            unreached: set[str] = set()
            for answer in answer_probes(self.served(served), self._optional(served)):
                if self.gone is not None:
                    raise Stop(self.gone)
                self._check_deadline()
                key, variant = answer.key, answer.variant
                member = f"{key[0]}.{key[1]}" + (f"({key[2]})" if key[2] else "")
                name = f"{interface}.{method} → {member}"
                if member in unreached or key[0] in unreached:
                    continue
                self.report.calls += 1
                self._mark_output()
                replacements = {**answer.setup, key: variant}
                responder, peer, reply = self._register_listener(
                    path, interface, method, served, replacements, answer.interfaces
                )
                reached = wait_for_calls(self.session, responder, [member], self.options.answer_wait)
                outcome = self.observe(reply)
                broken = peer.problem
                peer.stop()
                if outcome.kind is None and broken is not None:
                    # QEMU's side broke the connection (a malformed message, a failed handshake):
                    # however the listener answers, so the other answers are not tried.
                    self._listener_broke(registration, path, broken)
                    break
                if outcome.kind is None and not reached:
                    self.report.unexercised.append(f"{name} (QEMU did not make the call)")
                    unreached.add(member)
                    if key[1] == "GetAll" and key[2] != served:
                        unreached.add(key[2])  # an optional interface QEMU does not use
                    continue
                if name not in self.report.probed:
                    self.report.probed.append(name)
                if outcome.kind is None or outcome.kind == "contract":
                    continue
                # A fault belongs to the registry member QEMU called (AudioInListener.Read,
                # ScanoutMap), or to the registration when it called Properties.GetAll.
                owner, owned = (interface, method) if key[0] == PROPERTIES else (key[0], key[1])
                silent_getall = variant.kind == "silence" and key[:2] == (PROPERTIES, "GetAll")
                announce = key[2] if key[2] != served else ""
                fault = Fault(
                    kind=outcome.kind,
                    interface=owner,
                    member=owned,
                    path=path,
                    call=f"{method}, then {member} answered with {variant.label}",
                    evidence=outcome.evidence,
                    command=silent_listener_reproduction(self.dest, path, interface, method, announce)
                    if silent_getall
                    else f"(a listener answering {member} with {variant.label}: no standard tool serves a listener; "
                    f"qemu-dbus probe --member '{interface}.{method}' repeats it)",
                    trigger=variant.label,
                )
                self.report.faults.append(fault)
                self.say(f"{fault.kind}: {name}: {variant.label}")

    def _listener_broke(self, registration: Registration, path: str, problem: str) -> None:
        interface, method = registration.interface, registration.method
        name = f"{interface}.{method}"
        if name not in self.report.probed:
            self.report.probed.append(name)
        fault = Fault(
            kind="contract",
            interface=interface,
            member=method,
            path=path,
            call=f"{method}, then the listener connection",
            evidence=f"QEMU broke the listener connection: {problem}",
            command=f"(no standard tool serves a listener: qemu-dbus probe --member '{name}' repeats it)",
        )
        self.report.faults.append(fault)
        self.say(f"contract: {name}: the listener connection: {problem}")

    def _optional(self, served: str) -> list[Interface]:
        """The optional interfaces a listener of ``served`` may announce in its ``Interfaces``
        property: the registry's client-implemented peer-to-peer interfaces named under it and
        served at its object path (``Listener.Unix.Map``), in the release and on the platform."""
        base = self.registry.entry(served).metadata.object_path
        found = []
        for entry in self.registry:
            metadata = entry.metadata
            if entry.interface.name.startswith(served + ".") and metadata.object_path == base:
                interface = self.served(entry.interface.name)
                if metadata.peer_to_peer and "client" in metadata.implementers and interface.members:
                    found.append(interface)
        return found


@record(frozen=True)
class AnswerProbe:
    """One way of answering one call QEMU makes to a listener: the listener serves
    ``interfaces``, answers as ``setup`` says (announcing an optional interface), and answers
    the call ``key`` with ``variant``."""

    interfaces: tuple[Interface, ...]
    setup: Mapping[tuple[str, str, str], ReplyVariant]
    key: tuple[str, str, str]
    variant: ReplyVariant


def answer_probes(listener: Interface, optional: Sequence[Interface] = ()) -> list[AnswerProbe]:
    """The ways to answer what QEMU waits for from a listener of interface ``listener``: its
    ``GetAll`` (an error, another signature, a property of another type, a long list, silence);
    every method QEMU calls on it and waits for (``AudioInListener.Read``: an error, another
    signature, zero values, silence, too much data); and for each ``optional`` interface the
    listener announces in ``Interfaces``, its ``GetAll`` and the methods QEMU waits for there
    (``Listener.Unix.Map.ScanoutMap``)."""
    getall = (PROPERTIES, "GetAll", listener.name)
    alone = (listener,)
    probes = [
        AnswerProbe(alone, {}, getall, ReplyVariant("an error", "error")),
        AnswerProbe(alone, {}, getall, ReplyVariant("a reply of signature s", "body", "s", ("probe",))),
        AnswerProbe(
            alone, {}, getall, ReplyVariant("Interfaces of type u", "body", "a{sv}", ({"Interfaces": ("u", 7)},))
        ),
        AnswerProbe(
            alone,
            {},
            getall,
            ReplyVariant(
                "16384 unknown Interfaces", "body", "a{sv}", ({"Interfaces": ("as", ["org.qemu.Probe.X"] * 16384)},)
            ),
        ),
        AnswerProbe(alone, {}, getall, ReplyVariant("no answer", "silence")),
    ]
    for member in listener.members:
        if isinstance(member, Method) and member.out_args:
            probes += [AnswerProbe(alone, {}, key, v) for key, v in _method_variants(listener, member)]
    for extra in optional:
        announce = ReplyVariant(
            f"Interfaces = [{extra.name}]", "body", "a{sv}", ({"Interfaces": ("as", [extra.name])},)
        )
        served = (listener, extra)
        setup = {getall: announce}
        own = (PROPERTIES, "GetAll", extra.name)
        probes += [
            AnswerProbe(served, setup, own, ReplyVariant("an error", "error")),
            AnswerProbe(served, setup, own, ReplyVariant("a reply of signature s", "body", "s", ("probe",))),
            AnswerProbe(served, setup, own, ReplyVariant("no answer", "silence")),
        ]
        for member in extra.members:
            if isinstance(member, Method) and not member.no_reply:
                probes += [AnswerProbe(served, setup, key, v) for key, v in _method_variants(extra, member)]
    return probes


def _method_variants(interface: Interface, member: Method) -> list[tuple[tuple[str, str, str], ReplyVariant]]:
    key = (interface.name, member.name, "")
    out = "".join(arg.type for arg in member.out_args)
    variants = [
        ReplyVariant("an error", "error"),
        ReplyVariant("a reply of signature s", "body", "s", ("probe",)),
        ReplyVariant("no answer", "silence"),
    ]
    if out:
        variants.append(ReplyVariant("zero values", "body", out, default_body(out)))
    if out == "ay":  # more data than QEMU asked for
        variants.append(ReplyVariant(f"{LONG} bytes", "body", out, (b"\0" * LONG,)))
    return [(key, variant) for variant in variants]


def _neighbours(good: int, bad: int, fails: Callable[[int], bool]) -> tuple[int, int]:
    """Bisect between a value that does not fail and one that does (in either order) until they
    are neighbours: ``(good, bad)``, ``bad`` the failing value nearest the good one."""
    while abs(bad - good) > 1:
        middle = (good + bad) // 2
        if fails(middle):
            bad = middle
        else:
            good = middle
    return good, bad


def _size_of(path: Any) -> int:
    try:
        return int(os.stat(path).st_size)
    except OSError:
        return 0


def _alive(reply: Received | None) -> bool | None:
    """What a liveness read's reply says: answered (True), gone (False), nothing (None)."""
    if reply is None:
        return None
    reply.close()
    if reply.message.kind == ERROR:
        return reply.message.field(ERROR_NAME) not in _GONE
    return True


def registrations() -> list[Registration]:
    """One `REGISTRATIONS` entry per registration call, the plain one: a listener that also
    serves an optional interface (``display-map``) is one of the ways `answer_probes` answers."""
    seen: set[tuple[str, str]] = set()
    found = []
    for registration in REGISTRATIONS.values():
        key = (registration.interface, registration.method)
        if key not in seen:
            seen.add(key)
            found.append(registration)
    return found


def _listener_of(target: Target) -> tuple[str, str] | None:
    """(listener interface, its object path) when ``target`` registers a listener."""
    for registration in registrations():
        if registration.interface == target.interface.name and registration.method == target.member.name:
            return registration.served[0], registration.path
    return None


def _interfaces_at(registry: Registry, path: str) -> list[Interface]:
    import re

    found = []
    for entry in registry:
        pattern = entry.metadata.object_path
        if pattern and re.fullmatch(re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(pattern)), path):
            found.append(entry.interface)
    return found


def _neutral(code: str, texts: Sequence[str]) -> Value:
    return Value(SERVED, "neutral") if code == "h" else neutral_value(code, texts)


def _spread(calls: list[Any], limit: int) -> list[Any]:
    """``limit`` of ``calls``, taken evenly from each argument's list (documented values first)."""
    by_arg: dict[Any, list[Any]] = {}
    for call in calls:
        by_arg.setdefault(call[0], []).append(call)
    chosen: list[Any] = []
    while len(chosen) < limit and any(by_arg.values()):
        for queue in by_arg.values():
            if queue and len(chosen) < limit:
                chosen.append(queue.pop(0))
    return chosen


def _close_sent(descriptor: Descriptor) -> None:
    descriptor.close()


def _call_name(target: Target) -> str:
    return "Set" if isinstance(target.member, Property) else target.member.name


def _evidence_key(evidence: str) -> str:
    """What makes two faults of one argument the same: their evidence without numbers."""
    import re

    return re.sub(r"[0-9.]+", "#", evidence)


__all__ = ["AUDIO", "AUDIO_IN", "AUDIO_OUT", "Options", "Outcome", "Probe", "Report", "Stop", "answer_probes"]

"""The policy matrix: what to try on a real bus, what must happen, and what did.

`run_matrix` generates the configuration of one scenario, writes a plan for every peer, runs
`runner.py` as root in a private mount namespace, and compares each outcome with the expectation.

The expectation is *derived* from the registry and the deployment (`Expectation`), not from the
generated configuration: a message from peer S to peer T is allowed exactly when the deployment
has an intended message (`trust.bus_messages`) of the same type, interface, member and path whose
sender runs as S's user and whose receiver runs as T's user (dbus-daemon policies can only tell
users apart), and T (for a call or a signal) owns the name the intended receiver is reached by,
and S (for a signal) owns the name the intended sender is known by.  Names may be owned when some
peer under the same user owns them; the bus driver's methods follow `policy.DRIVER_METHODS`.  The
hand-written spot checks in ``test_policy_daemon.py`` catch what this derivation and the generator
could get wrong together.

The matrix tries, for every ordered pair of peers: every method of every registry interface (bus
and peer-to-peer) at its path, by unique name and by every name the target is primary owner of;
property reads and introspection; a call at a wrong path and one without an interface; every
signal unicast and broadcast; an unrequested reply and an unrequested error.  For every peer: RequestName of every name
of the deployment and the registry and of a name nobody owns, and the bus-driver methods.  Then
root and an outsider (a user the deployment does not list) try to own those names, queueing
allowed, while their owners hold them, and the outsider tries to connect.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jeepney

from sphinxext_qemudbus.model.introspection import Interface, Method, Property, Signal, interface_for_platform
from sphinxext_qemudbus.model.registry import Registry
from sphinxext_qemudbus.security.deployment import Deployment, User
from sphinxext_qemudbus.security.policy import (
    DISCOVERY_METHODS,
    DRIVER,
    DRIVER_METHODS,
    FORBIDDEN_DRIVER_CALLS,
    generate_policy,
)
from sphinxext_qemudbus.security.trust import (
    INTROSPECTABLE,
    OBJECT_MANAGER,
    PROPERTIES,
    BusMessage,
    bus_messages,
    deployment_links,
)

HERE = Path(__file__).parent
ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied"
REQUESTED_ERROR = "org.qemu.Test.Error.Requested"
UNLISTED_NAME = "org.qemu.Unlisted"
WRONG_PATH = "/org/qemu/Elsewhere"
OUTSIDER = "qemu-outsider"
#: Probe kind → the type of the message that answers no call.
UNREQUESTED = {"reply": "method_return", "error": "error"}
#: How dbus-daemon words its refusal to let a connection send a message (bus/bus.c).
SEND_REFUSED = "Rejected send message"

#: Bus-driver calls tried by every peer (interface, member, signature, args); "$self" is replaced by
#: the caller's unique name.  BecomeMonitor comes last: were it allowed, the connection would turn
#: into a monitor and could not send anything more.
DRIVER_PROBES: tuple[tuple[str, str, str, tuple[Any, ...]], ...] = (
    (DRIVER, "GetNameOwner", "s", (DRIVER,)),
    (DRIVER, "NameHasOwner", "s", ("org.qemu",)),
    (DRIVER, "ListQueuedOwners", "s", ("org.qemu.VMState1",)),
    (DRIVER, "GetConnectionCredentials", "s", ("$self",)),
    (DRIVER, "GetConnectionUnixUser", "s", ("$self",)),
    (DRIVER, "GetId", "", ()),
    (DRIVER, "AddMatch", "s", ("type='error'",)),
    (DRIVER, "RemoveMatch", "s", ("type='error'",)),
    (DRIVER, "ListNames", "", ()),
    (DRIVER, "ListActivatableNames", "", ()),
    (DRIVER, "StartServiceByName", "su", ("org.qemu.Unlisted", 0)),
    (DRIVER, "ReloadConfig", "", ()),
    (DRIVER, "GetConnectionUnixProcessID", "s", ("$self",)),
    (DRIVER, "GetAdtAuditSessionData", "s", ("$self",)),
    (DRIVER, "GetConnectionSELinuxSecurityContext", "s", ("$self",)),
    (DRIVER, "UpdateActivationEnvironment", "a{ss}", ({},)),
    (f"{DRIVER}.Debug.Stats", "GetStats", "", ()),
    ("org.freedesktop.DBus.Introspectable", "Introspect", "", ()),
    ("org.freedesktop.DBus.Peer", "Ping", "", ()),
    (f"{DRIVER}.Monitoring", "BecomeMonitor", "asu", ([], 0)),
)


class MatrixUnavailable(Exception):
    """The machine cannot run the matrix (not root, no unshare, no dbus-daemon): a skip reason."""


def require_matrix() -> None:
    """Skip the calling test when this machine cannot run peers under test users on a real
    dbus-daemon; fail it instead where CI requires that (``QEMU_DBUS_REQUIRE_MATRIX``)."""
    import pytest

    try:
        check_available()
    except MatrixUnavailable as reason:
        if os.environ.get("QEMU_DBUS_REQUIRE_MATRIX"):
            pytest.fail(f"QEMU_DBUS_REQUIRE_MATRIX is set but the daemon matrix cannot run: {reason}")
        pytest.skip(f"no real dbus-daemon matrix on this machine: {reason}")


# --- the expectation -----------------------------------------------------------------------------


class Expectation:
    """What the registry and the deployment allow in one scenario, at the granularity dbus-daemon
    can enforce (users)."""

    def __init__(self, registry: Registry, deployment: Deployment, scenario: str) -> None:
        self.deployment = deployment
        self.scenario = scenario
        self.messages: tuple[BusMessage, ...] = bus_messages(registry, deployment)
        discoverers = {
            link.caller
            for link in deployment_links(registry, deployment)
            if not link.peer_to_peer and registry.metadata(link.interface).bus_name
        }
        self.discovering_users = {self.user(peer) for peer in discoverers}

    def user(self, peer_id: str) -> User:
        return self.deployment.user_of(peer_id, self.scenario)

    def _owns_any(self, peer_id: str, names: tuple[str, ...]) -> bool:
        return not names or bool(set(names) & set(self.deployment.peer(peer_id).owns))

    def _matches(self, m: BusMessage, kind: str, interface: str, member: str, path: str) -> bool:
        return (m.type, m.interface, m.member) == (kind, interface, member) and m.path in (None, path)

    def intended(self, kind: str, interface: str | None, member: str, path: str, sender: str, target: str) -> bool:
        """Whether one intended message covers this one: same user on both ends, and the names
        by which its receiver is reached (and, for a signal, its sender is known) owned by the
        actual target (and sender)."""
        if interface is None:
            return False  # every intended message names its interface
        d = self.deployment
        return any(
            self._matches(m, kind, interface, member, path)
            and self.user(m.sender) == self.user(sender)
            and self.user(m.receiver) == self.user(target)
            and self._owns_any(target, d.addresses(m.receiver))
            and (kind != "signal" or self._owns_any(sender, d.addresses(m.sender)))
            for m in self.messages
        )

    def message(self, kind: str, interface: str | None, member: str, path: str, sender: str, target: str) -> bool:
        """Whether user-level rules can let this message through: one intended message lets the
        sender's user send it to a connection owning the target's names, and one (possibly
        another) lets the target's user receive it from a connection owning the sender's names.
        Where peers have users of their own this equals `intended`; where users are shared, the
        two halves may come from two different intended messages, and dbus-daemon cannot do
        better."""
        if interface is None:
            return False
        d = self.deployment
        may_send = any(
            self._matches(m, kind, interface, member, path)
            and self.user(m.sender) == self.user(sender)
            and self._owns_any(target, d.addresses(m.receiver))
            for m in self.messages
        )
        may_receive = any(
            self._matches(m, kind, interface, member, path)
            and self.user(m.receiver) == self.user(target)
            and (kind != "signal" or self._owns_any(sender, d.addresses(m.sender)))
            for m in self.messages
        )
        return may_send and may_receive

    def own(self, peer_id: str, name: str) -> bool:
        user = self.user(peer_id)
        return any(name in peer.owns for peer in self.deployment.peers if self.user(peer.id) == user)

    def driver(self, peer_id: str, interface: str, member: str) -> bool:
        if interface != DRIVER or any(i == interface and m in (member, None) for i, m, _ in FORBIDDEN_DRIVER_CALLS):
            return False
        if member in DRIVER_METHODS:
            return True
        return member in DISCOVERY_METHODS and self.user(peer_id) in self.discovering_users


# --- what a configuration grants, against what was asked ----------------------------------------


def unasked_rules(config: str, registry: Registry, deployment: Deployment, scenario: str) -> list[str]:
    """Every rule of ``config`` that grants more than the deployment asks in ``scenario``: a
    user, a name, a message no intended message (`trust.bus_messages`) of that user needs, or a
    wildcard.  Read from the XML as dbus-daemon reads it, rule by rule; empty when the
    configuration is within what was asked.  (Whether it grants *enough* is the matrix's job.)"""
    from lxml import etree

    tree = etree.fromstring(config.encode(), etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
    messages = bus_messages(registry, deployment)
    users = {str(user.uid): user for user in deployment.users(scenario) if deployment.peers_of(user, scenario)}
    discovering = {
        str(deployment.user_of(link.caller, scenario).uid)
        for link in deployment_links(registry, deployment)
        if not link.peer_to_peer and registry.metadata(link.interface).bus_name
    }
    answers = {(("send_type", kind), ("send_requested_reply", "true")) for kind in ("method_return", "error")} | {
        (("receive_type", kind), ("receive_requested_reply", "true")) for kind in ("method_return", "error")
    }
    driver = {(("send_destination", DRIVER), ("send_interface", DRIVER), ("send_member", m)) for m in DRIVER_METHODS}
    found: list[str] = []

    def uid_of(peer_id: str) -> str:
        return str(deployment.user_of(peer_id, scenario).uid)

    def names_of(peer_id: str) -> tuple[str, ...]:
        return deployment.addresses(peer_id)

    def asked(uid: str, rule: dict[str, str]) -> bool:
        if set(rule) == {"own"}:
            return any(rule["own"] in peer.owns for peer in deployment.peers_of(users[uid], scenario))
        key = tuple(rule.items())
        if key in driver or (
            key[:2] == (("send_destination", DRIVER), ("send_interface", DRIVER))
            and rule.get("send_member") in DISCOVERY_METHODS
            and uid in discovering
        ):
            return True
        for side, mine, theirs, other in (
            ("send", "sender", "receiver", "send_destination"),
            ("receive", "receiver", "sender", "receive_sender"),
        ):
            if f"{side}_type" not in rule:
                continue
            kind = (rule[f"{side}_type"], rule.get(f"{side}_interface"), rule.get(f"{side}_member"))
            # Without a name on the other end the rule matches any connection: asked only when
            # the other peer has no name to give (and for calls a receiver accepts from anyone).
            return any(
                uid_of(getattr(m, mine)) == uid
                and (m.type, m.interface, m.member) == kind
                and rule.get(f"{side}_path") == m.path
                and (
                    rule[other] in names_of(getattr(m, theirs))
                    if other in rule
                    else (side == "receive" and m.type == "method_call") or not names_of(getattr(m, theirs))
                )
                for m in messages
            )
        return False

    for policy in tree.iter("policy"):
        context, user = policy.get("context"), policy.get("user")
        for element in policy:
            if not isinstance(element.tag, str):
                continue  # a comment
            rule = {str(k): str(v) for k, v in element.attrib.items()}
            text = f"<policy {'context=' + str(context) if context else 'user=' + str(user)}>: <{element.tag} {rule}>"
            if any(value in ("*", "") for value in rule.values()):
                found.append(f"{text}: a wildcard")
            elif context == "mandatory":
                if element.tag != "deny":
                    found.append(f"{text}: the mandatory context only denies")
            elif element.tag != "allow":
                found.append(f"{text}: unexpected")
            elif context == "default":
                key = tuple(rule.items())
                fixed = key in answers or key in driver or rule == {"receive_sender": DRIVER}
                if not (fixed or (set(rule) == {"user"} and rule["user"] in users)):
                    found.append(f"{text}: not asked")
            elif user not in users or not asked(str(user), rule):
                found.append(f"{text}: not asked")
    return found


# --- the plan ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One thing one peer tries, with what must happen."""

    n: int
    kind: str  # call, signal, own, driver, reply
    sender: str
    target: str | None = None  # None: a broadcast signal, or not addressed to a peer
    via: str | None = None  # "unique" or a well-known name
    interface: str | None = None
    member: str | None = None
    path: str | None = None
    signature: str = ""
    args: tuple[Any, ...] | None = None
    twice: bool = False
    name: str | None = None
    served_outcome: tuple[str, ...] | None = None  # exact outcomes when allowed and served
    allowed: bool = False  # what user-level rules let through: what the daemon must do
    intended: bool = False  # what one intended message covers (differs only under shared users)
    recipients: tuple[tuple[str, bool, bool], ...] = ()  # broadcast: (peer, allowed, intended)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"n": self.n, "kind": self.kind}
        for key in ("target", "via", "interface", "member", "path", "name"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        data["signature"] = self.signature
        if self.args is not None:
            data["args"] = list(self.args)
        if self.twice:
            data["twice"] = True
        return data

    def describe(self) -> str:
        if self.kind == "own":
            return f"{self.sender} RequestName {self.name}"
        if self.kind == "driver":
            return f"{self.sender} → bus driver {self.interface}.{self.member}"
        if self.kind in ("reply", "error"):
            return f"{self.sender} → {self.target}: unrequested {UNREQUESTED[self.kind]}"
        where = "broadcast" if self.target is None else f"{self.target} via {self.via or 'unique name'}"
        return f"{self.sender} → {where}: {self.kind} {self.interface}.{self.member} at {self.path}"


@dataclass(frozen=True)
class Candidate:
    """A message worth trying: a registry member or a standard message at a registry path."""

    kind: str  # call or signal
    interface: str | None
    member: str
    path: str
    signature: str
    args: tuple[Any, ...] | None = None
    registry_method: bool = False
    out_signature: str = ""


def concrete(pattern: str) -> str:
    """A path matching a registry pattern: every ``{name}`` becomes ``0``."""
    out, depth = [], 0
    for char in pattern:
        if char == "{":
            depth += 1
            out.append("0")
        elif char == "}":
            depth -= 1
        elif not depth:
            out.append(char)
    return "".join(out)


def parent_of(pattern: str) -> str:
    """Where an object manager for a variable path lives: the path up to the variable element."""
    head = pattern.split("{", 1)[0]
    return head.rsplit("/", 1)[0] or "/"


def candidates(registry: Registry) -> list[Candidate]:
    """Every message the matrix tries between two peers, from the whole registry."""
    found: dict[tuple[Any, ...], Candidate] = {}

    def add(candidate: Candidate) -> None:
        key = (candidate.kind, candidate.interface, candidate.member, candidate.path, json.dumps(candidate.args))
        found.setdefault(key, candidate)

    for entry in registry:
        interface: Interface = interface_for_platform(entry.interface, "unix")
        pattern = entry.metadata.object_path or "/"
        path = concrete(pattern)
        methods = [m for m in interface.members if isinstance(m, Method)]
        properties = [m for m in interface.members if isinstance(m, Property)]
        for method in methods:
            signature = "".join(arg.type for arg in method.in_args)
            out = "".join(arg.type for arg in method.out_args)
            add(Candidate("call", interface.name, method.name, path, signature, None, True, out))
        for signal in (m for m in interface.members if isinstance(m, Signal)):
            add(Candidate("signal", interface.name, signal.name, path, "".join(arg.type for arg in signal.args)))
        if properties:
            add(Candidate("call", PROPERTIES, "Get", path, "ss", (interface.name, properties[0].name)))
            add(Candidate("call", PROPERTIES, "GetAll", path, "s", (interface.name,)))
            add(Candidate("signal", PROPERTIES, "PropertiesChanged", path, "sa{sv}as", (interface.name, {}, [])))
        add(Candidate("call", INTROSPECTABLE, "Introspect", path, ""))
        if "{" in pattern:
            manager = parent_of(pattern)
            add(Candidate("call", OBJECT_MANAGER, "GetManagedObjects", manager, ""))
            add(Candidate("signal", OBJECT_MANAGER, "InterfacesAdded", manager, "oa{sa{sv}}", (path, {})))
            add(Candidate("signal", OBJECT_MANAGER, "InterfacesRemoved", manager, "oas", (path, [])))
        elif methods:
            first = methods[0]
            signature = "".join(arg.type for arg in first.in_args)
            add(Candidate("call", interface.name, first.name, WRONG_PATH, signature))
    add(Candidate("call", None, "Save", "/org/qemu/VMState1", ""))  # no interface header
    add(Candidate("call", None, "Press", "/org/qemu/Display1/Console_0", "u"))
    return list(found.values())


def serve_table(registry: Registry, deployment: Deployment, peer_id: str) -> dict[str, Any]:
    """What a peer serves on the bus: its bus interfaces' methods (in and out signatures) and
    properties, on Unix."""
    table: dict[str, Any] = {}
    for name in deployment.peer(peer_id).implements:
        entry = registry.entry(name)
        if entry.metadata.peer_to_peer:
            continue
        interface = interface_for_platform(entry.interface, "unix")
        table[name] = {
            "methods": {
                m.name: ["".join(a.type for a in m.in_args), "".join(a.type for a in m.out_args)]
                for m in interface.members
                if isinstance(m, Method)
            },
            "properties": {p.name: p.type for p in interface.members if isinstance(p, Property)},
        }
    return table


def _served_outcome(candidate: Candidate, serve: dict[str, Any]) -> tuple[str, ...] | None:
    """The exact outcomes of an allowed call to a peer that serves it; None when the peer does
    not serve it (any answer but AccessDenied then shows the daemon let the call through)."""
    if candidate.interface is None:
        return None
    if candidate.registry_method:
        if candidate.member in serve.get(candidate.interface, {}).get("methods", {}):
            return (f"reply:{candidate.out_signature}", f"error:{REQUESTED_ERROR}")
        return None
    if candidate.interface == PROPERTIES and candidate.args:
        served = serve.get(str(candidate.args[0]))
        if served is None:
            return None
        return ("reply:v",) if candidate.member == "Get" else ("reply:a{sv}",)
    if candidate.interface == INTROSPECTABLE and serve:
        return ("reply:s",)
    if candidate.interface == OBJECT_MANAGER and serve:
        return ("reply:a{oa{sa{sv}}}",)
    return None


def primary_owners(deployment: Deployment) -> dict[str, str]:
    """Name → the peer that owns it first (peers request their names in deployment order)."""
    owners: dict[str, str] = {}
    for peer in deployment.peers:
        for name in peer.owns:
            owners.setdefault(name, peer.id)
    return owners


def build_probes(registry: Registry, deployment: Deployment, expectation: Expectation) -> list[Probe]:
    probes: list[Probe] = []
    owners = primary_owners(deployment)
    all_candidates = candidates(registry)
    serves = {peer.id: serve_table(registry, deployment, peer.id) for peer in deployment.peers}
    own_names = list(
        dict.fromkeys(
            [*deployment.names(), *(e.metadata.bus_name for e in registry if e.metadata.bus_name), UNLISTED_NAME]
        )
    )

    def add(**kwargs: Any) -> None:
        probes.append(Probe(n=len(probes), **kwargs))

    for sender in deployment.peers:
        for target in deployment.peers:
            if target.id == sender.id:
                continue
            vias = ["unique"] + [name for name, owner in owners.items() if owner == target.id]
            for via in vias:
                for c in (c for c in all_candidates if c.kind == "call"):
                    if via != "unique" and not (c.registry_method or (c.interface, c.member) == (PROPERTIES, "Get")):
                        continue  # the daemon judges the receiving connection, however addressed: sample it
                    allowed = expectation.message("method_call", c.interface, c.member, c.path, sender.id, target.id)
                    intended = expectation.intended("method_call", c.interface, c.member, c.path, sender.id, target.id)
                    add(
                        kind="call", sender=sender.id, target=target.id, via=via, interface=c.interface, member=c.member,
                        path=c.path, signature=c.signature, args=c.args, twice=c.registry_method and allowed,
                        served_outcome=_served_outcome(c, serves[target.id]), allowed=allowed, intended=intended,
                    )  # fmt: skip
            for c in (c for c in all_candidates if c.kind == "signal"):
                allowed = expectation.message("signal", c.interface, c.member, c.path, sender.id, target.id)
                intended = expectation.intended("signal", c.interface, c.member, c.path, sender.id, target.id)
                add(
                    kind="signal", sender=sender.id, target=target.id, via="unique", interface=c.interface,
                    member=c.member, path=c.path, signature=c.signature, args=c.args, allowed=allowed, intended=intended,
                )  # fmt: skip
            add(kind="reply", sender=sender.id, target=target.id, allowed=False)
            add(kind="error", sender=sender.id, target=target.id, allowed=False)
        for c in (c for c in all_candidates if c.kind == "signal"):
            recipients = tuple(
                (
                    peer.id,
                    expectation.message("signal", c.interface, c.member, c.path, sender.id, peer.id),
                    expectation.intended("signal", c.interface, c.member, c.path, sender.id, peer.id),
                )
                for peer in deployment.peers
                if peer.id != sender.id
            )
            add(
                kind="signal", sender=sender.id, interface=c.interface, member=c.member, path=c.path,
                signature=c.signature, args=c.args, allowed=any(r[1] for r in recipients), recipients=recipients,
            )  # fmt: skip
        for name in own_names:
            if name not in sender.owns:
                allowed = expectation.own(sender.id, name)
                add(kind="own", sender=sender.id, name=name, allowed=allowed, intended=allowed)
        for interface, member, signature, args in DRIVER_PROBES:
            allowed = expectation.driver(sender.id, interface, member)
            add(
                kind="driver", sender=sender.id, interface=interface, member=member, signature=signature, args=args,
                allowed=allowed, intended=allowed,
            )  # fmt: skip
    return probes


# --- running -------------------------------------------------------------------------------------


def _world_usable(path: str) -> bool:
    """Whether a user other than root can execute ``path`` (every folder above it searchable)."""
    real = os.path.realpath(path)
    try:
        if not os.stat(real).st_mode & stat.S_IXOTH:
            return False
        folder = os.path.dirname(real)
        while True:
            if not os.stat(folder).st_mode & stat.S_IXOTH:
                return False
            if folder == "/":
                return True
            folder = os.path.dirname(folder)
    except OSError:
        return False


def peer_python() -> str:
    """An interpreter the test users can run: this one if they can, else the system's python3.
    The peers need only the standard library and a copy of jeepney."""
    for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3", shutil.which("python3") or ""):
        if candidate and _world_usable(candidate):
            return os.path.realpath(candidate)
    raise MatrixUnavailable("no Python interpreter that unprivileged test users may run")


def check_available() -> None:
    """Raise `MatrixUnavailable` with the reason when this machine cannot run the matrix."""
    if os.geteuid() != 0:
        raise MatrixUnavailable("the daemon matrix runs peers under several uids: it needs root")
    for tool in ("unshare", "setpriv", "dbus-daemon", "mount"):
        if shutil.which(tool) is None:
            raise MatrixUnavailable(f"{tool} is not installed")
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        raise MatrixUnavailable(f"unshare --mount failed: {probe.stderr.strip()}")
    peer_python()


class Workdir:
    """A folder every test user can read (pytest's tmp_path is private to root), removed at the
    end."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="qemu-dbus-matrix-"))
        self.path.chmod(0o755)

    def __enter__(self) -> Workdir:
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def write_users(work: Path, users: list[User]) -> tuple[str, str]:
    passwd = ["root:x:0:0:root:/root:/bin/sh"] + [
        f"{u.name}:x:{u.uid}:{u.gid}::/nonexistent:/usr/sbin/nologin" for u in users
    ]
    group = ["root:x:0:"] + [f"{u.name}:x:{u.gid}:" for u in users]
    (work / "passwd").write_text("\n".join(passwd) + "\n")
    (work / "group").write_text("\n".join(group) + "\n")
    return str(work / "passwd"), str(work / "group")


def all_users(deployment: Deployment) -> list[User]:
    users = [deployment.bus_user] + [peer.user for peer in deployment.peers]
    return list(dict.fromkeys(users))


def outsider(deployment: Deployment) -> User:
    return User(OUTSIDER, max(u.uid for u in all_users(deployment)) + 1000)


def run_runner(work: Path, job: dict[str, Any]) -> dict[str, Any]:
    (work / "job.json").write_text(json.dumps(job, indent=1))
    runner = str(HERE / "runner.py")
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", sys.executable, runner, str(work)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if proc.returncode != 0 or not (work / "results.json").exists():
        raise RuntimeError(f"runner failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    result: dict[str, Any] = json.loads((work / "results.json").read_text())
    return result


def validate_configs(configs: list[tuple[str, str, User, list[User]]]) -> list[dict[str, Any]]:
    """Start dbus-daemon on each (label, text, daemon user, users) and return, per config, the
    address it printed and what it wrote on stderr before listening."""
    with Workdir() as work:
        users = list(dict.fromkeys(u for _, _, _, us in configs for u in us))
        passwd, group = write_users(work.path, users)
        items = []
        for index, (label, text, daemon_user, _) in enumerate(configs):
            sockets = work.path / f"bus{index}"
            sockets.mkdir()
            os.chown(sockets, daemon_user.uid, daemon_user.gid)
            config = work.path / f"{index}.conf"
            config.write_text(text.replace("@SOCKET@", str(sockets / "socket")))
            items.append(
                {
                    "label": label,
                    "config": str(config),
                    "uid": daemon_user.uid,
                    "gid": daemon_user.gid,
                    "stderr": str(work.path / f"{index}.err"),
                }
            )
        job = {"mode": "validate", "passwd": passwd, "group": group, "configs": items}
        results = run_runner(work.path, job)["configs"]
        assert len(results) == len(items)
        for item, result in zip(items, results):
            result["label"] = item["label"]
        return list(results)


# --- comparing -----------------------------------------------------------------------------------


@dataclass
class Check:
    """One combination tried: what was expected, what happened."""

    scenario: str
    kind: str
    description: str
    expected_allowed: bool
    observed: str
    ok: bool
    intended: bool | None = None  # None: same as expected_allowed


@dataclass
class MatrixReport:
    deployment: str
    scenario: str
    checks: list[Check] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    probe_seconds: float = 0.0
    daemon_stderr_at_start: str = ""
    config: str = ""
    outcomes: dict[str, dict[int, Any]] = field(default_factory=dict)
    probes: list[Probe] = field(default_factory=list)
    uniques: dict[str, str] = field(default_factory=dict)

    @property
    def allowed(self) -> int:
        return sum(1 for check in self.checks if check.expected_allowed)

    @property
    def denied(self) -> int:
        return sum(1 for check in self.checks if not check.expected_allowed)

    @property
    def overreach(self) -> list[Check]:
        """Combinations user-level rules must allow although no single intended message needs
        them (only where peers share a user)."""
        return [check for check in self.checks if check.expected_allowed and check.intended is False]

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def by_kind(self) -> dict[str, tuple[int, int]]:
        counts: dict[str, tuple[int, int]] = {}
        for check in self.checks:
            allowed, denied = counts.get(check.kind, (0, 0))
            counts[check.kind] = (allowed + check.expected_allowed, denied + (not check.expected_allowed))
        return counts

    def outcome(self, sender: str, predicate: Any) -> list[tuple[Probe, Any]]:
        """(probe, outcome) of ``sender``'s probes matching ``predicate`` (for spot checks)."""
        return [(p, self.outcomes[sender][p.n]) for p in self.probes if p.sender == sender and predicate(p)]

    def summary(self) -> str:
        kinds = ", ".join(f"{kind} {a}/{d}" for kind, (a, d) in sorted(self.by_kind().items()))
        return (
            f"{self.deployment}/{self.scenario}: {len(self.checks)} combinations tried, {self.allowed} to be allowed "
            f"and {self.denied} to be denied; {len(self.checks) - len(self.failures)} behaved so ({kinds}; "
            f"allowed/denied) in {self.seconds:.2f} s"
            + (f"; {len(self.overreach)} allowed only because peers share a user" if self.overreach else "")
        )


def _is_denied(outcome: str) -> bool:
    return outcome == f"error:{ACCESS_DENIED}"


def _iter_outcomes(outcome: Any) -> Iterator[str]:
    if isinstance(outcome, list):
        yield from outcome
    else:
        yield str(outcome)


def compare(report: MatrixReport, probes: list[Probe], result: dict[str, Any]) -> None:
    """Turn the runner's results into checks: one per combination tried."""
    scenario = report.scenario
    uniques = {peer_id: event["unique"] for peer_id, event in result["hello"].items()}
    report.uniques = uniques
    by_unique = {unique: peer_id for peer_id, unique in uniques.items()}
    outcomes = {peer_id: {item["n"]: item["outcome"] for item in items} for peer_id, items in result["probed"].items()}
    report.outcomes = outcomes
    why = {peer_id: {item["n"]: item.get("why", "") for item in items} for peer_id, items in result["probed"].items()}
    received: dict[str, set[tuple[Any, ...]]] = {}
    strays: dict[str, set[str]] = {}
    for peer_id, event in result["received"].items():
        received[peer_id] = {
            (by_unique.get(s["sender"], s["sender"]), s["interface"], s["member"], s["path"], s["unicast"])
            for s in event["signals"]
        }
        strays[peer_id] = {
            (by_unique.get(stray["sender"], str(stray["sender"])), stray["type"]) for stray in event["stray"]
        }

    for peer_id, owned in result["owned"].items():
        for name, outcome in owned.items():
            if name == "AddMatch":
                report.checks.append(
                    Check(scenario, "driver", f"{peer_id} AddMatch type='signal'", True, outcome, outcome == "reply:")
                )
            else:
                good = outcome in ("reply:u=1", "reply:u=2")
                report.checks.append(
                    Check(scenario, "own", f"{peer_id} RequestName {name} (its own)", True, outcome, good)
                )

    for probe in probes:
        outcome = outcomes[probe.sender][probe.n]
        if probe.kind == "signal" and probe.target is None:
            for recipient, allowed, intended in probe.recipients:
                got = (probe.sender, probe.interface, probe.member, probe.path, False) in received[recipient]
                description = f"{probe.describe()} → received by {recipient}"
                observed = "delivered" if got else "not delivered"
                report.checks.append(
                    Check(scenario, "signal", description, allowed, observed, got == allowed, intended)
                )
            continue
        if probe.kind == "signal":
            got = (probe.sender, probe.interface, probe.member, probe.path, True) in received[str(probe.target)]
            observed = ("delivered" if got else "not delivered") + ("" if outcome == "sent" else f" ({outcome})")
            # A denied unicast signal is answered with AccessDenied; an allowed one with nothing.
            ok = got == probe.allowed and _is_denied(str(outcome)) != probe.allowed
            report.checks.append(
                Check(scenario, "signal", probe.describe(), probe.allowed, observed, ok, probe.intended)
            )
            continue
        if probe.kind in UNREQUESTED:
            # Never delivered, and refused on the sending side: the policy lets a peer send only
            # the replies and errors that answer a call (a refusal by the receiver's rules alone
            # would hide a send rule that lets them all out).
            got = (probe.sender, UNREQUESTED[probe.kind]) in strays[str(probe.target)]
            reason = why[probe.sender].get(probe.n, "")
            observed = ("delivered" if got else "not delivered") + ("" if outcome == "sent" else f" ({outcome})")
            observed += f": {reason}" if reason else ""
            ok = not got and _is_denied(str(outcome)) and reason.startswith(SEND_REFUSED)
            report.checks.append(Check(scenario, probe.kind, probe.describe(), False, observed, ok))
            continue
        values = list(_iter_outcomes(outcome))
        denied = [v for v in values if _is_denied(v)]
        if probe.allowed:
            ok = not denied and "timeout" not in values
            if ok and probe.served_outcome is not None:
                ok = tuple(values) == probe.served_outcome[: len(values)]
        else:
            ok = len(denied) == len(values)
        report.checks.append(
            Check(scenario, probe.kind, probe.describe(), probe.allowed, " ".join(values), ok, probe.intended)
        )


def _copy_peer(root: Path) -> Path:
    """peer.py and a copy of jeepney in a folder every test user can read; peer.py's path."""
    lib = root / "lib"
    shutil.copytree(
        Path(jeepney.__file__).parent, lib / "jeepney", ignore=shutil.ignore_patterns("tests", "__pycache__")
    )
    shutil.copy(HERE / "peer.py", lib / "peer.py")
    for path in [lib, *lib.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return lib / "peer.py"


def claim_names(
    config: Callable[[str], str], bus_user: User, users: list[User], claimants: list[tuple[str, User, list[str]]]
) -> list[dict[str, Any]]:
    """Start dbus-daemon as ``bus_user`` on ``config(listen address)``, with ``users`` in the
    passwd database, and let each claimant (label, user, names) connect and ask for the names,
    queueing allowed.  Returns each claimant's outcome: ``ok``, ``outcome`` and ``names`` (name →
    ``reply:u=N`` or ``error:NAME``), as `peer.connect_only` tells them."""
    with Workdir() as work:
        root = work.path
        passwd, group = write_users(root, list(dict.fromkeys([*users, bus_user])))
        sockets = root / "bus"
        sockets.mkdir()
        os.chown(sockets, bus_user.uid, bus_user.gid)
        (root / "bus.conf").write_text(config(f"unix:path={sockets / 'socket'}"))
        job = {
            "mode": "claims",
            "passwd": passwd,
            "group": group,
            "config": str(root / "bus.conf"),
            "daemon_stderr": str(root / "daemon.err"),
            "bus": {"uid": bus_user.uid, "gid": bus_user.gid},
            "python": peer_python(),
            "peer_script": str(_copy_peer(root)),
            "claimants": [
                {"label": label, "uid": u.uid, "gid": u.gid, "names": names} for label, u, names in claimants
            ],
        }
        return list(run_runner(root, job)["claims"])


def run_matrix(
    registry: Registry, deployment: Deployment, scenario: str, mutate: Callable[[str], str] | None = None
) -> MatrixReport:
    """Generate the configuration of ``scenario``, run every peer on a real dbus-daemon, and
    return every combination tried with its expected and observed outcome.  ``mutate`` edits
    the generated configuration first: a test that the matrix notices a broken policy."""
    report = MatrixReport(deployment.name, scenario)
    expectation = Expectation(registry, deployment, scenario)
    probes = build_probes(registry, deployment, expectation)
    report.probes = probes
    with Workdir() as work:
        root = work.path
        bus_user = deployment.bus_user_in(scenario)
        users = [*all_users(deployment), outsider(deployment)]
        passwd, group = write_users(root, users)
        sockets = root / "bus"
        sockets.mkdir()
        os.chown(sockets, bus_user.uid, bus_user.gid)
        report.config = generate_policy(registry, deployment, scenario, listen=f"unix:path={sockets / 'socket'}")
        if mutate is not None:
            report.config = mutate(report.config)
        (root / "bus.conf").write_text(report.config)
        peer_script = _copy_peer(root)
        plans, logs = root / "plans", root / "logs"
        plans.mkdir()
        logs.mkdir()
        peers = []
        for peer in deployment.peers:
            plan = {
                "owns": list(peer.owns),
                "serve": serve_table(registry, deployment, peer.id),
                "probes": [p.to_json() for p in probes if p.sender == peer.id],
            }
            plan_path = plans / f"{peer.id}.json"
            plan_path.write_text(json.dumps(plan))
            user = deployment.user_of(peer.id, scenario)
            peers.append(
                {
                    "id": peer.id,
                    "uid": user.uid,
                    "gid": user.gid,
                    "plan": str(plan_path),
                    "stderr": str(logs / f"{peer.id}.err"),
                }
            )
        for path in [plans, *plans.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        other = outsider(deployment)
        names = list(
            dict.fromkeys([*deployment.names(), *(e.metadata.bus_name for e in registry if e.metadata.bus_name)])
        )
        job = {
            "mode": "matrix",
            "passwd": passwd,
            "group": group,
            "config": str(root / "bus.conf"),
            "daemon_stderr": str(logs / "daemon.err"),
            "bus": {"uid": bus_user.uid, "gid": bus_user.gid},
            "python": peer_python(),
            "peer_script": str(peer_script),
            "peers": peers,
            "outsider": {"uid": other.uid, "gid": other.gid},
            "intruders": [
                {"label": "root (uid 0)", "uid": 0, "gid": 0, "names": names},
                {"label": f"{OUTSIDER} (uid {other.uid})", "uid": other.uid, "gid": other.gid, "names": names},
            ],
        }
        result = run_runner(root, job)
        report.seconds = float(result.get("seconds", 0.0))
        report.probe_seconds = float(result.get("probe_seconds", 0.0))
        report.daemon_stderr_at_start = str(result.get("daemon_stderr_at_start", ""))
        if "error" in result:
            logs_text = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(logs.iterdir()))
            raise RuntimeError(f"matrix run failed: {result['error']}\n{logs_text}")
    compare(report, probes, result)
    for intruder in result["intruders"]:
        # Refused means: disconnected once authenticated, or every name denied by the daemon.
        claimed = intruder.get("names", {})
        if not intruder.get("ok"):
            refused = intruder.get("outcome") in ("disconnected", f"error:{ACCESS_DENIED}")
            observed = str(intruder.get("outcome"))
            for name in names:
                report.checks.append(
                    Check(scenario, "intruder", f"{intruder['label']} RequestName {name}", False, observed, refused)
                )
            continue
        for name in names:
            outcome = str(claimed.get(name, "missing"))
            report.checks.append(
                Check(
                    scenario, "intruder", f"{intruder['label']} RequestName {name}", False, outcome, _is_denied(outcome)
                )
            )
    connect = result["outsider"]
    # Refused means refused by the daemon: disconnected once authenticated, or Hello denied.
    # Any other failure (no socket, no authentication, a crash) proves nothing about the policy.
    refused = connect.get("outcome") in ("disconnected", f"error:{ACCESS_DENIED}")
    report.checks.append(
        Check(
            scenario,
            "connect",
            f"{OUTSIDER} (uid {other.uid}, not in the deployment) connects",
            False,
            json.dumps(connect),
            refused and not connect.get("ok"),
        )
    )
    return report

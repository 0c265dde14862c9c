"""Trust semantics: who must validate which data.

A bus policy only decides who may talk.  Whatever a peer *receives* from a peer of another trust
level must still be validated by the receiver:

* method in-args are received, and validated, by the implementer;
* method out-args (the reply) and signal args are received by the caller;
* a property value is received by whoever reads it (a caller); a written value by the implementer.

This module derives those duties from the registry metadata (`validation_duties`), and, for a
deployment (`deployment.Deployment`): which peer uses which interface of which other peer
(`deployment_links`), the messages that cross the bus (`bus_messages`: exactly what the policy
generator allows), the member flows that cross a UID boundary in each scenario
(`boundary_flows`), and per member the notes the documentation shows (`member_trust_notes`).
The Sphinx pages, the trust tables and the policy generator render them.
"""

from __future__ import annotations

from ..diagnostics.frozen import record
from ..model.introspection import Arg, Direction, EmitsChanged, Interface, Member, Method, Property, Signal
from ..model.metadata import InterfaceMetadata, validation_note
from ..model.registry import Registry
from .deployment import SCENARIOS, Deployment, Peer, builtin_deployment


@record(frozen=True)
class ValidationDuty:
    """One value that crosses from one peer to another, and who must check it on arrival."""

    item: Arg | Property
    senders: tuple[str, ...]
    receivers: tuple[str, ...]
    note: str | None
    flow: str  # "in-arg", "out-arg", "signal-arg", "property-read", "property-write"

    @property
    def name(self) -> str:
        return self.item.name or "(unnamed)"


def validation_duties(metadata: InterfaceMetadata, member: Member) -> list[ValidationDuty]:
    """The values ``member`` carries between peers, each with its sender and receiver roles."""
    implementers, callers = metadata.implementers, metadata.callers
    duties: list[ValidationDuty] = []
    if isinstance(member, Property):
        note = validation_note(member)
        if member.access.readable:
            duties.append(ValidationDuty(member, implementers, callers, note, "property-read"))
        if member.access.writable:
            duties.append(ValidationDuty(member, callers, implementers, note, "property-write"))
        return duties
    for arg in member.args:
        note = validation_note(arg)
        if isinstance(member, Signal):
            duties.append(ValidationDuty(arg, implementers, callers, note, "signal-arg"))
        elif isinstance(member, Method) and arg.direction is Direction.IN:
            duties.append(ValidationDuty(arg, callers, implementers, note, "in-arg"))
        else:
            duties.append(ValidationDuty(arg, implementers, callers, note, "out-arg"))
    return duties


# --- deployments: who talks to whom, and where a trust boundary lies -----------------------------
#
# The registry speaks of roles; a deployment names the peers.  A `Link` is one caller peer using an
# interface one implementer peer serves.  Over the bus a link carries `BusMessage`s (what the
# dbus-daemon policy allows); over a link whose interface is peer-to-peer the same members travel on
# a private connection that no bus policy sees.  Either way the values cross a trust boundary when
# the two peers run under different users in the scenario at hand, and then the receiver of each
# value must validate it (`validation_duties`).

PROPERTIES = "org.freedesktop.DBus.Properties"
INTROSPECTABLE = "org.freedesktop.DBus.Introspectable"
OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager"


@record(frozen=True)
class Link:
    """A caller peer using an interface that an implementer peer serves."""

    interface: str
    caller: str  # peer id
    implementer: str  # peer id
    peer_to_peer: bool
    path: str | None  # the registry object path, when it has no variable part


@record(frozen=True)
class BusMessage:
    """One kind of message a bus link carries, as dbus-daemon's policy sees it: a method call from
    the caller to the implementer, or a signal from the implementer to the caller.  ``standard``
    marks the ``org.freedesktop.DBus.*`` messages that come with serving an object (property
    access, introspection, object-manager discovery) rather than registry members."""

    type: str  # "method_call" or "signal"
    interface: str
    member: str
    path: str | None  # None: any path (variable registry path, or the object manager's parent path)
    sender: str  # peer id
    receiver: str  # peer id
    link: Link
    standard: bool


def deployment_links(registry: Registry, deployment: Deployment) -> tuple[Link, ...]:
    """Every (caller, implementer, interface) the registry allows between the deployment's peers
    (`interface_links` for each interface)."""
    return tuple(link for entry in registry for link in interface_links(entry.interface, entry.metadata, deployment))


def interface_links(interface: Interface, metadata: InterfaceMetadata, deployment: Deployment) -> tuple[Link, ...]:
    """The (caller, implementer) links of one interface between the deployment's peers.  They
    depend on this interface's metadata and the deployment only, so a docs page that shows one
    interface's trust notes depends on that interface's file and nothing else of the registry.

    A caller uses an interface when its role is among the interface's callers (and its ``calls``
    list, when it has one, names the interface).  On an interface that several roles implement
    (``org.qemu.Display1.Clipboard``: QEMU and the client), each side calls the *other* side's
    implementation: a role never calls another peer of its own role there.  A peer never links to
    itself."""
    name = interface.name
    if not (metadata.implementers and metadata.callers and metadata.connection):
        return ()  # invalid metadata: check_deployment reports it
    implementers = deployment.implementers_of(name)
    if not implementers:
        return ()
    path = metadata.object_path if metadata.object_path and "{" not in metadata.object_path else None
    callers = [
        peer
        for peer in deployment.peers
        if peer.role in metadata.callers and (peer.calls is None or name in peer.calls)
    ]
    several = len(metadata.implementers) > 1
    # The callers each implementer gets, by the role they must not have: worked out once per
    # role, so that the links cost what they number (a thousand clients each serving their
    # clipboard to QEMU must not cost a million skipped pairs).
    eligible: dict[str | None, list[Peer]] = {}
    links: list[Link] = []
    for implementer in implementers:
        excluded = implementer.role if several else None
        if excluded not in eligible:
            eligible[excluded] = [caller for caller in callers if caller.role != excluded]
        links += [
            Link(name, caller.id, implementer.id, metadata.peer_to_peer, path)
            for caller in eligible[excluded]
            if caller.id != implementer.id
        ]
    return tuple(links)


def _unique_members(interface: Interface) -> list[Member]:
    """Members by name across platform variants (a ``<?if?>`` can define one member twice)."""
    seen: dict[tuple[str, str], Member] = {}
    for member in interface.members:
        seen.setdefault((member.kind, member.name), member)
    return list(seen.values())


def link_messages(registry: Registry, link: Link) -> tuple[BusMessage, ...]:
    """The messages a bus link carries (none for a peer-to-peer link).

    Besides the interface's own methods and signals: ``Properties.Get``/``GetAll`` when it has
    readable properties, ``Properties.Set`` when it has writable ones and ``PropertiesChanged``
    when one of them emits it; ``Introspectable.Introspect``; and, where the registry path has a
    variable part (objects that come and go: consoles, chardevs, VNC clients), the object manager
    that lists them (``GetManagedObjects``, ``InterfacesAdded``/``InterfacesRemoved``), which
    lives on a parent path and so is not tied to the registry path."""
    if link.peer_to_peer:
        return ()
    interface = registry.interface(link.interface)
    members = _unique_members(interface)
    calls: list[tuple[str, str, str | None, bool]] = []
    signals: list[tuple[str, str, str | None, bool]] = []
    for member in members:
        if isinstance(member, Method):
            calls.append((link.interface, member.name, link.path, False))
        elif isinstance(member, Signal):
            signals.append((link.interface, member.name, link.path, False))
    properties = [member for member in members if isinstance(member, Property)]
    if any(prop.access.readable for prop in properties):
        calls += [(PROPERTIES, "Get", link.path, True), (PROPERTIES, "GetAll", link.path, True)]
    if any(prop.access.writable for prop in properties):
        calls.append((PROPERTIES, "Set", link.path, True))
    if any(prop.emits_changed in (EmitsChanged.TRUE, EmitsChanged.INVALIDATES) for prop in properties):
        signals.append((PROPERTIES, "PropertiesChanged", link.path, True))
    calls.append((INTROSPECTABLE, "Introspect", link.path, True))
    if link.path is None:
        calls.append((OBJECT_MANAGER, "GetManagedObjects", None, True))
        signals += [(OBJECT_MANAGER, "InterfacesAdded", None, True), (OBJECT_MANAGER, "InterfacesRemoved", None, True)]
    messages = [
        BusMessage("method_call", iface, member, path, link.caller, link.implementer, link, standard)
        for iface, member, path, standard in calls
    ]
    messages += [
        BusMessage("signal", iface, member, path, link.implementer, link.caller, link, standard)
        for iface, member, path, standard in signals
    ]
    return tuple(messages)


def bus_messages(registry: Registry, deployment: Deployment) -> tuple[BusMessage, ...]:
    """Every message the deployment's bus links carry: exactly what the bus policy must allow."""
    return tuple(
        message for link in deployment_links(registry, deployment) for message in link_messages(registry, link)
    )


def crosses_users(deployment: Deployment, scenario: str, first: str, second: str) -> bool:
    """Whether peers ``first`` and ``second`` run under different users in ``scenario``."""
    return deployment.user_of(first, scenario) != deployment.user_of(second, scenario)


@record(frozen=True)
class PeerDuty:
    """A value that one peer sends another over a link, and that the receiver must validate when
    the two run under different users."""

    link: Link
    member: Member
    duty: ValidationDuty
    sender: str  # peer id
    receiver: str  # peer id


def link_duties(registry: Registry, link: Link) -> tuple[PeerDuty, ...]:
    """The values every member of the link's interface carries, each with the peer that receives
    it: in-args and written properties go to the implementer, out-args, signal args and read
    property values to the caller."""
    entry = registry.entry(link.interface)
    duties: list[PeerDuty] = []
    for member in _unique_members(entry.interface):
        for duty in validation_duties(entry.metadata, member):
            towards_implementer = duty.flow in ("in-arg", "property-write")
            sender, receiver = (
                (link.caller, link.implementer) if towards_implementer else (link.implementer, link.caller)
            )
            duties.append(PeerDuty(link, member, duty, sender, receiver))
    return tuple(duties)


@record(frozen=True)
class MemberFlow:
    """A registry member used over one link in one scenario: whether the link crosses a trust
    boundary there, and the values the receivers must validate."""

    link: Link
    member: Member
    crosses: bool
    duties: tuple[PeerDuty, ...]

    @property
    def sender(self) -> str:
        """Who starts the exchange: the implementer for a signal, the caller otherwise."""
        return self.link.implementer if isinstance(self.member, Signal) else self.link.caller

    @property
    def receiver(self) -> str:
        return self.link.caller if isinstance(self.member, Signal) else self.link.implementer


def member_flows(registry: Registry, deployment: Deployment, scenario: str) -> tuple[MemberFlow, ...]:
    """Every registry member over every link (bus and peer-to-peer) of the deployment, in
    ``scenario``, in interface, then member order."""
    flows: list[MemberFlow] = []
    for link in deployment_links(registry, deployment):
        duties = link_duties(registry, link)
        crosses = crosses_users(deployment, scenario, link.caller, link.implementer)
        for member in _unique_members(registry.interface(link.interface)):
            own = tuple(duty for duty in duties if duty.member is member)
            flows.append(MemberFlow(link, member, crosses, own))
    order = {name: index for index, name in enumerate(entry.interface.name for entry in registry)}
    flows.sort(key=lambda flow: order[flow.link.interface])  # stable: member and peer order kept
    return tuple(flows)


def boundary_flows(registry: Registry, deployment: Deployment, scenario: str) -> tuple[MemberFlow, ...]:
    """The member flows that cross a trust boundary (a UID boundary) in ``scenario``."""
    return tuple(flow for flow in member_flows(registry, deployment, scenario) if flow.crosses)


# --- per-member trust notes, for the interface pages ----------------------------------------------


@record(frozen=True)
class ValueTrust:
    """One value of a member: who sends it, who receives and so validates it, the registry's
    validation note, and in which scenarios it crosses from one user to another."""

    name: str
    type: str
    flow: str  # in-arg, out-arg, signal-arg, property-read, property-write
    note: str | None
    senders: tuple[str, ...]  # peer ids
    receivers: tuple[str, ...]  # peer ids: the validators
    crossings: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # (scenario, ((sender, receiver), ...))

    @property
    def boundary_scenarios(self) -> tuple[str, ...]:
        return tuple(scenario for scenario, pairs in self.crossings if pairs)

    def validators_in(self, scenario: str) -> tuple[str, ...]:
        """The peers that receive this value from a peer under another user in ``scenario``."""
        pairs = dict(self.crossings).get(scenario, ())
        return tuple(dict.fromkeys(receiver for _, receiver in pairs))


@record(frozen=True)
class MemberTrust:
    """What the documentation says about one member's trust: the peers that exchange it, the
    scenarios in which that exchange crosses a UID boundary, and each value to validate."""

    interface: str
    member: str
    kind: str  # method, signal, property
    peer_to_peer: bool
    deployment: str
    pairs: tuple[tuple[str, str], ...]  # (sender, receiver) peer ids of the member's messages
    boundary_scenarios: tuple[str, ...]
    values: tuple[ValueTrust, ...]
    labels: tuple[tuple[str, str], ...]  # (peer id, label) for prose
    in_deployment: bool = True  # False: no peer of the deployment uses it; pairs are of roles

    def label(self, peer_id: str) -> str:
        return dict(self.labels).get(peer_id, peer_id)

    def headline(self) -> str:
        """The first sentence: where the member crosses a trust boundary, between whom."""
        if not self.pairs:
            return f"No role of the registry uses this {self.kind}."
        route = _join(tuple(dict.fromkeys(f"{self.label(s)} → {self.label(r)}" for s, r in self.pairs)))
        where = _join(self.boundary_scenarios)
        if not self.in_deployment:
            start = f"No peer of the {self.deployment} deployment uses this {self.kind}; between its roles ({route})"
            if not where:
                return f"{start} it never crosses a trust boundary."
            return f"{start} it crosses a trust boundary in {where}."
        if not where:
            return f"Never crosses a trust boundary: its ends always share a user ({route})."
        return f"Crosses a trust boundary in {where}: {route}."

    def validations(self, notes: bool = True) -> tuple[str, ...]:
        """Who validates which crossing value.  With ``notes``, one sentence per value with the
        registry's note; without, one sentence per (validators, flow), naming its values once each
        (an arg with a variant per platform is one value here)."""
        if notes:
            sentences = []
            for value, who in self._validated():
                text = f"{_capitalize(who)} {_verb(who)} {value.name} ({value.flow})"
                sentences.append(f"{text}: {value.note}" if value.note else f"{text}.")
            return tuple(sentence if sentence.endswith(".") else sentence + "." for sentence in sentences)
        groups: dict[tuple[str, str], list[str]] = {}
        for value, who in self._validated():
            names = groups.setdefault((who, value.flow), [])
            if value.name not in names:
                names.append(value.name)
        return tuple(
            f"{_capitalize(who)} {_verb(who)} {_join(tuple(names))} ({flow}{'s' if len(names) > 1 else ''})."
            for (who, flow), names in groups.items()
        )

    def _validated(self) -> list[tuple[ValueTrust, str]]:
        """The values that cross a boundary in some scenario, with who validates them (prose)."""
        result = []
        for value in self.values:
            validators = tuple(
                dict.fromkeys(r for scenario in value.boundary_scenarios for r in value.validators_in(scenario))
            )
            if validators:
                result.append((value, _join(tuple(self.label(peer) for peer in validators))))
        return result

    def summary(self, notes: bool = True) -> str:
        """One plain-text paragraph: the crossing, then who validates what — with the registry's
        validation notes, or (``notes=False``, where the page shows them next to each arg) without."""
        sentences = [self.headline()]
        if self.boundary_scenarios:
            sentences += self.validations(notes) or ("It carries no values; its receiver can still check who sent it.",)
        return " ".join(sentences)


def _join(items: tuple[str, ...]) -> str:
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _verb(who: str) -> str:
    """'validates' after one validator, 'validate' after several ("QEMU and the viewer")."""
    return "validate" if " and " in who else "validates"


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


#: How prose names a role when no peer of the deployment plays it.
ROLE_LABELS = {"qemu": "QEMU", "helper": "a helper", "client": "a client", "manager": "the manager"}


def roles_cross(scenario: str, first: str, second: str) -> bool:
    """Whether two processes of these roles run under different users in ``scenario``, whatever
    the deployment: never in single-uid, across QEMU's boundary in two-uids, always in many-uids."""
    if scenario == "single-uid":
        return False
    if scenario == "two-uids":
        return (first == "qemu") != (second == "qemu")
    return True


def member_trust_notes(
    registry: Registry, interface: str, member: str, deployment: Deployment | None = None
) -> MemberTrust:
    """The trust notes of ``interface``'s ``member`` (a method, signal or property name) for
    ``deployment`` (the built-in default deployment when None), over every scenario.  When no
    peer of the deployment uses the interface (a Windows-only listener in a Unix deployment), the
    notes are worked out between the registry's roles instead (``in_deployment`` is then False).

    Raises KeyError when the registry has no such interface or member."""
    entry = registry.entry(interface)
    return interface_member_trust(entry.interface, entry.metadata, member, deployment)


def interface_member_trust(
    interface_model: Interface, metadata: InterfaceMetadata, member: str, deployment: Deployment | None = None
) -> MemberTrust:
    """`member_trust_notes` from one interface alone (see `interface_links`): what a renderer
    showing that interface can compute without reading the rest of the registry."""
    if deployment is None:
        deployment = builtin_deployment("default")
    interface = interface_model.name
    matches = [m for m in _unique_members(interface_model) if m.name == member]
    if not matches:
        raise KeyError(f"{interface}.{member}")
    target = matches[0]
    links = list(interface_links(interface_model, metadata, deployment))
    ends: list[tuple[str, str]]  # (caller, implementer): peer ids, or "role:<role>"
    if links:
        ends = [(link.caller, link.implementer) for link in links]
        labels = tuple((peer.id, peer.label) for peer in deployment.peers)

        def crosses(scenario: str, first: str, second: str) -> bool:
            return crosses_users(deployment, scenario, first, second)

    else:
        several = len(metadata.implementers) > 1
        ends = [
            (f"role:{caller}", f"role:{implementer}")
            for implementer in metadata.implementers
            for caller in metadata.callers
            if not (several and caller == implementer)
        ]
        labels = tuple((f"role:{role}", label) for role, label in ROLE_LABELS.items())

        def crosses(scenario: str, first: str, second: str) -> bool:
            return roles_cross(scenario, first.removeprefix("role:"), second.removeprefix("role:"))

    signal = isinstance(target, Signal)
    pairs = tuple(dict.fromkeys((i, c) if signal else (c, i) for c, i in ends))
    values: list[ValueTrust] = []
    for duty in validation_duties(metadata, target):
        towards_implementer = duty.flow in ("in-arg", "property-write")
        moves = list(dict.fromkeys((c, i) if towards_implementer else (i, c) for c, i in ends))
        crossings = tuple(
            (scenario, tuple((s, r) for s, r in moves if crosses(scenario, s, r))) for scenario in SCENARIOS
        )
        values.append(
            ValueTrust(
                name=duty.name,
                type=duty.item.type,
                flow=duty.flow,
                note=duty.note,
                senders=tuple(dict.fromkeys(s for s, _ in moves)),
                receivers=tuple(dict.fromkeys(r for _, r in moves)),
                crossings=crossings,
            )
        )
    boundary = tuple(scenario for scenario in SCENARIOS if any(crosses(scenario, s, r) for s, r in pairs))
    return MemberTrust(
        interface=interface,
        member=member,
        kind=target.kind,
        peer_to_peer=metadata.peer_to_peer,
        deployment=deployment.name,
        pairs=pairs,
        boundary_scenarios=boundary,
        values=tuple(values),
        labels=labels,
        in_deployment=bool(links),
    )

"""The bus policy generator: registry + deployment + scenario → a dbus-daemon configuration.

The output is a complete configuration for one VM's private bus.  It is pure and byte-stable: the
same registry, deployment, scenario and listen address always give the same text, so the
documentation (``dbus-policy`` directive), the command line (``qemu-dbus policy``) and the tests on
a real dbus-daemon all show and exercise the same bytes.

How the rules are built (dbus-daemon's semantics are in ``shared/dbus-facts.md`` §5):

* nothing is allowed unless a rule says so: dbus-daemon denies send, receive and own when no rule
  matches, for every user;
* the ``default`` context lets the deployment's users connect, lets every peer answer the calls it
  receives (``send_requested_reply``: an unrequested reply stays denied) and receive the answers to
  its own calls, and opens the bus-driver methods client libraries need;
* one ``<policy user=UID>`` per user holds, for the peers running as that user, the names they own,
  the methods they call (``send_destination`` + ``send_interface`` + ``send_member``, and
  ``send_path`` when the registry path is fixed), the signals they emit, and — a second fence on the
  receiving side — the calls and signals they accept;
* the ``mandatory`` context, applied after every other rule, denies the bus-driver calls that would
  let a peer watch or reconfigure the bus.

Users are named by uid: dbus-daemon resolves a user name through the passwd database of the
machine it runs on, so a rule written with a name would grant whatever uid that machine gives it
(a peer declared as ``root`` with uid 64502 handed its rights to uid 0).  The names stay in the
comments.

Nothing the registry or the deployment holds is trusted into a rule: `build_config` refuses
invalid interface, method and signal names (dbus-daemon reads a lone ``*`` as a wildcard), a
registry with XML errors, a listen address that is not one printable line, and checks every
attribute of every rule it made against what that attribute may hold.

Callers are given rules towards the *implementer's* names, never the other way round: a rule in a
helper's policy that mentioned ``org.qemu.VMState1`` as a destination would let it reach every other
helper queued for that name, because ``send_destination`` matches any connection that owns or
queues for the name.  When an implementer owns an exclusive name (``vm.helper.net``) callers reach
it through that name only; an implementer that owns no name (a viewer's clipboard, called by unique
name) gets destination-less rules, and only the receiving side's rules keep them from reaching
others.

This module never imports Sphinx.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import field

from ..diagnostics.diagnostic import Location
from ..diagnostics.frozen import record
from ..diagnostics.output import printable
from ..model.introspection import Property
from ..model.names import bus_name_error, interface_name_error, member_name_error, object_path_error
from ..model.registry import Registry
from .deployment import (
    SCENARIO_DESCRIPTIONS,
    SCENARIO_TITLES,
    SCENARIOS,
    Deployment,
    DeploymentError,
    DeploymentProblem,
    Peer,
    User,
    check_deployment,
    resolve_deployment,
)
from .trust import BusMessage, Link, bus_messages, deployment_links

DEFAULT_LISTEN = "unix:path=/run/qemu/VM/dbus.sock"
DEFAULT_REGISTRY = "interfaces/"
DRIVER = "org.freedesktop.DBus"

#: Bus-driver methods every peer may call: what GDBus, sd-bus, zbus and jeepney call on their own
#: (Hello, AddMatch, RemoveMatch, GetNameOwner, NameHasOwner), asking for a name (RequestName,
#: ReleaseName: the own rules decide), checking who a caller is (GetConnectionUnixUser,
#: GetConnectionCredentials: how a receiver confirms a message comes from QEMU) and GetId.
DRIVER_METHODS: tuple[str, ...] = (
    "Hello",
    "AddMatch",
    "RemoveMatch",
    "RequestName",
    "ReleaseName",
    "GetNameOwner",
    "NameHasOwner",
    "GetConnectionUnixUser",
    "GetConnectionCredentials",
    "GetId",
)
#: Only for callers of an interface that has a registry bus name: how they find every queued
#: owner of it (QEMU walks the queue of ``org.qemu.VMState1``).  Peers that call nothing cannot
#: even list who else is on the bus.
DISCOVERY_METHODS: tuple[str, ...] = ("ListQueuedOwners",)
#: Denied in the mandatory context whatever another rule says.  dbus-daemon itself lets only its own
#: user (and root) call BecomeMonitor and UpdateActivationEnvironment, but in the single-uid and
#: two-uids scenarios peers *are* the daemon's user.
FORBIDDEN_DRIVER_CALLS: tuple[tuple[str, str | None, str], ...] = (
    (f"{DRIVER}.Monitoring", None, "BecomeMonitor: a monitor sees every message on the bus"),
    (DRIVER, "UpdateActivationEnvironment", "it changes the environment of services the bus starts"),
    (f"{DRIVER}.Debug.Stats", None, "statistics about every connection"),
    (f"{DRIVER}.Verbose", None, "debug switches of a verbose daemon build"),
)
_WIDTH = 100


@functools.lru_cache(maxsize=4096)  # a policy repeats its interface, member and path names
def _quoteattr(value: str) -> str:
    # Imported here: xml.sax.saxutils pulls in urllib.request (and ssl, email), some 30 ms of the
    # CLI's start-up time, which `qemu-dbus check` would pay without ever writing a policy.
    from xml.sax.saxutils import quoteattr

    return quoteattr(value)


@record(frozen=True)
class Rule:
    """One ``<allow>`` or ``<deny>`` element, its attributes in the order they are written."""

    verdict: str  # "allow" or "deny"
    attributes: tuple[tuple[str, str], ...]

    def render(self) -> str:
        attributes = " ".join(f"{name}={_quoteattr(value)}" for name, value in self.attributes)
        return f"<{self.verdict} {attributes}/>"


@record
class Section:
    """Rules under one explanatory comment."""

    comment: str
    rules: list[Rule] = field(default_factory=list)


@record(frozen=True)
class PolicyBlock:
    """One ``<policy>`` element: ``context="default"``, ``user="64501"``, ``context="mandatory"``.
    ``key`` names it for people: ``default``, ``mandatory`` or the user's name (what the
    directive's snippet option takes)."""

    key: str
    attribute: tuple[str, str]
    comment: str
    sections: tuple[Section, ...]


@record(frozen=True)
class BusConfig:
    """A whole configuration, before rendering."""

    header: str
    listen: str
    blocks: tuple[PolicyBlock, ...]

    def render(self) -> str:
        return render_config(self)

    def block(self, key: str) -> PolicyBlock:
        for block in self.blocks:
            if block.key == key:
                return block
        raise KeyError(key)


# --- building ------------------------------------------------------------------------------------


def _comment_text(text: str) -> str:
    """Text that is safe inside an XML comment ("--" is not allowed there, nor a final "-"; and
    no character XML forbids: deployment files refuse them, one built in code may hold some)."""
    text = "\n".join(printable(line) for line in text.split("\n"))
    while "--" in text:
        text = text.replace("--", "- -")
    return text + " " if text.endswith("-") else text


def _send_rules(messages: Sequence[BusMessage], addresses: Sequence[str]) -> list[Rule]:
    """One send rule per message and destination name; towards a peer that owns no name, rules
    that name no destination (the receiver's own rules are then the fence)."""
    return [
        _send(address, m.interface, m.member, m.path, m.type) for m in messages for address in (addresses or (None,))
    ]


def _send(destination: str | None, interface: str, member: str | None, path: str | None, kind: str) -> Rule:
    attributes: list[tuple[str, str]] = []
    if destination:
        attributes.append(("send_destination", destination))
    attributes.append(("send_interface", interface))
    if member:
        attributes.append(("send_member", member))
    if path:
        attributes.append(("send_path", path))
    attributes.append(("send_type", kind))
    return Rule("allow", tuple(attributes))


def _receive(sender: str | None, interface: str, member: str, path: str | None, kind: str) -> Rule:
    attributes: list[tuple[str, str]] = []
    if sender:
        attributes.append(("receive_sender", sender))
    attributes += [("receive_interface", interface), ("receive_member", member)]
    if path:
        attributes.append(("receive_path", path))
    attributes.append(("receive_type", kind))
    return Rule("allow", tuple(attributes))


def _driver(member: str) -> Rule:
    return Rule("allow", (("send_destination", DRIVER), ("send_interface", DRIVER), ("send_member", member)))


def _names(items: Iterable[str]) -> str:
    items = list(items)
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _reach(deployment: Deployment, peer: Peer) -> str:
    addresses = deployment.addresses(peer.id)
    return f"{peer.label} ({', '.join(addresses)})" if addresses else peer.label


class _Builder:
    """Collects the rules of one scenario, user by user."""

    def __init__(self, registry: Registry, deployment: Deployment, scenario: str) -> None:
        self.registry = registry
        self.deployment = deployment
        self.scenario = scenario
        self.links = deployment_links(registry, deployment)
        self.messages = bus_messages(registry, deployment)
        # Indexed once by peer, in message order, so that each user's block reads its own
        # messages and links only: the whole policy costs what it holds, not users times messages.
        self.sent: dict[str, list[tuple[int, BusMessage]]] = {}
        self.received: dict[str, list[tuple[int, BusMessage]]] = {}
        for index, message in enumerate(self.messages):
            self.sent.setdefault(message.sender, []).append((index, message))
            self.received.setdefault(message.receiver, []).append((index, message))
        self.calls_from: dict[str, list[Link]] = {}
        for link in self.links:
            self.calls_from.setdefault(link.caller, []).append(link)

    def _of(self, table: dict[str, list[tuple[int, BusMessage]]], peers: Sequence[Peer]) -> list[BusMessage]:
        """The messages of ``peers`` in ``table``, in the order of all messages."""
        lists = [table.get(peer.id, []) for peer in peers]
        return [message for _, message in heapq.merge(*lists, key=_first)]

    def user_of(self, peer_id: str) -> User:
        return self.deployment.user_of(peer_id, self.scenario)

    def header(self, listen: str) -> str:
        d, scenario = self.deployment, self.scenario
        lines = [
            "dbus-daemon configuration of one VM's private bus, generated by qemu-dbus policy from the "
            f'org.qemu.* interface registry: scenario {scenario}, deployment "{d.name}".  Regenerate it '
            "rather than editing it."
        ]
        paragraphs = ["\n".join(_wrap(" ".join(lines)))]
        if d.description:
            paragraphs.append("\n".join(_wrap(f"Deployment: {' '.join(d.description.split())}.")))
        scenario_text = f"{SCENARIO_TITLES[scenario]}.  {SCENARIO_DESCRIPTIONS[scenario]}"
        if scenario == "single-uid":
            scenario_text += "  NO ISOLATION: every rule below applies to every peer."
        paragraphs.append("\n".join(_wrap(scenario_text)))
        users = d.users(scenario)
        width = max(len(user.name) for user in users)
        rows = ["Users (each with a group of the same name and number):"]
        for user in users:
            who = []
            if user == d.bus_user_in(scenario):
                who.append("the bus daemon: start dbus-daemon as this user")
            who += [f"{peer.id}: {peer.description or peer.label}" for peer in d.peers_of(user, scenario)]
            rows.append(f"  {user.name:<{width}}  {user.uid:>10}  {who[0]}")
            rows += [f"  {'':<{width}}  {'':>10}  {item}" for item in who[1:]]
        paragraphs.append("\n".join(rows))
        paragraphs.append(
            "\n".join(
                _wrap(
                    "dbus-daemon denies every send, receive and own that no rule allows.  The rules follow "
                    "the registry: a peer may own only its names, call only what its role calls (method by "
                    "method, on the peers that implement it) and emit only the signals of what it "
                    "implements; everything else stays denied, replies included unless they answer a call."
                )
            )
        )
        p2p = [link for link in self.links if link.peer_to_peer]
        if p2p:
            rows = _wrap(
                "Not on this bus: peer-to-peer interfaces travel over private connections whose socket one "
                "side hands to the other in a bus call allowed below.  No bus policy applies to them; their "
                "receivers validate what they get (see the trust notes):"
            )
            by_interface: dict[str, list[Link]] = {}
            for link in p2p:
                by_interface.setdefault(link.interface, []).append(link)
            for interface, links in by_interface.items():
                pairs = _names(
                    dict.fromkeys(
                        f"{d.peer(link.caller).label} calls {d.peer(link.implementer).label}" for link in links
                    )
                )
                rows += _wrap(f"{interface}: {pairs}", indent="  ", subsequent="    ")
            paragraphs.append("\n".join(rows))
        if listen == DEFAULT_LISTEN:
            paragraphs.append(
                "\n".join(
                    _wrap(
                        f"{DEFAULT_LISTEN} is a placeholder: give each VM its own socket (the listen option of qemu-dbus policy)."
                    )
                )
            )
        return "\n\n".join(_comment_text(paragraph) for paragraph in paragraphs)

    def default_block(self) -> PolicyBlock:
        users = [user for user in self.deployment.users(self.scenario) if self.deployment.peers_of(user, self.scenario)]
        connect = Section(
            "Connect: only the deployment's users, by uid (the daemon's own user always may).",
            [Rule("allow", (("user", str(user.uid)),)) for user in users],
        )
        answers = Section(
            "Answers: a peer may answer a call it received and receive the answer to a call it made; an "
            "unrequested reply or error stays denied.",
            [
                Rule("allow", (("send_type", "method_return"), ("send_requested_reply", "true"))),
                Rule("allow", (("send_type", "error"), ("send_requested_reply", "true"))),
                Rule("allow", (("receive_type", "method_return"), ("receive_requested_reply", "true"))),
                Rule("allow", (("receive_type", "error"), ("receive_requested_reply", "true"))),
            ],
        )
        driver_in = Section(
            "The bus driver's answers and signals (NameAcquired, NameLost, NameOwnerChanged).",
            [Rule("allow", (("receive_sender", DRIVER),))],
        )
        driver_out = Section(
            "Bus-driver methods every client library uses.  RequestName only asks: the own rules below "
            "decide who gets a name.  GetConnectionUnixUser and GetConnectionCredentials let a receiver "
            "check who sent a message.",
            [_driver(member) for member in DRIVER_METHODS],
        )
        comment = "Every connection: who may connect, replies, and the bus driver."
        return PolicyBlock("default", ("context", "default"), comment, (connect, answers, driver_in, driver_out))

    def user_block(self, user: User) -> PolicyBlock:
        d = self.deployment
        peers = d.peers_of(user, self.scenario)
        sent, received = self._of(self.sent, peers), self._of(self.received, peers)
        who = "; ".join(f"{peer.label} (peer {peer.id}, role {peer.role})" for peer in peers)
        comment = f"{user.name} ({user.uid}): {who}."
        if len(peers) > 1:
            comment += "  Peers that share a user share every rule: they are not isolated from each other."
        sections: list[Section] = []

        owned = sorted(dict.fromkeys(name for peer in peers for name in peer.owns))
        if owned:
            shared = [name for name in owned if d.is_shared(name)]
            text = "Own its names."
            if shared:
                text += (
                    f"  Shared (several peers queue for it, and its callers list the queue): {', '.join(shared)}; "
                    "the others belong to one peer alone."
                )
            sections.append(Section(text, [Rule("allow", (("own", name),)) for name in owned]))

        named_calls = [
            link
            for peer in peers
            for link in self.calls_from.get(peer.id, ())
            if not link.peer_to_peer and self.registry.metadata(link.interface).bus_name
        ]
        if named_calls:
            called = _names(sorted({str(self.registry.metadata(link.interface).bus_name) for link in named_calls}))
            sections.append(
                Section(
                    f"List every connection queued for the names it calls ({called}).",
                    [_driver(member) for member in DISCOVERY_METHODS],
                )
            )

        seen: set[Rule] = set()

        def add(section: Section) -> None:
            fresh = [rule for rule in dict.fromkeys(section.rules) if rule not in seen]  # another peer's rule
            seen.update(fresh)
            section.rules = fresh
            if section.rules:
                sections.append(section)

        # Calls it makes, grouped by interface and implementer.
        for (interface, implementer), messages in _group(m for m in sent if m.type == "method_call"):
            peer = d.peer(implementer)
            callers = _names(dict.fromkeys(d.peer(m.link.caller).label for m in messages))
            members = _names(dict.fromkeys(m.member for m in messages if not m.standard)) or "no methods"
            text = f"Call {interface} on {_reach(d, peer)}: {members}, with its properties and introspection"
            text += f" (for {callers})." if len(peers) > 1 else "."
            if not d.addresses(implementer):
                text += (
                    f"  {_capital(peer.label)} owns no name and is called by unique name, so the rules name no "
                    "destination: the receivers' own rules accept only what they serve."
                )
            add(Section(text, _send_rules(messages, d.addresses(implementer))))

        # Signals it emits, grouped by interface and receiver.
        for (interface, caller), messages in _group(m for m in sent if m.type == "signal"):
            peer = d.peer(caller)
            members = _names(dict.fromkeys(f"{m.interface.rsplit('.', 1)[-1]}.{m.member}" for m in messages))
            text = f"Emit the signals of {interface} for {_reach(d, peer)}: {members}."
            if not d.addresses(caller):
                text += (
                    f"  {_capital(peer.label)} owns no name, so the rules name no destination: the receivers' "
                    "own rules decide who gets the signals."
                )
            add(Section(text, _send_rules(messages, d.addresses(caller))))

        # The receiving side: a second fence, so that a destination-less rule of some sender cannot
        # reach a peer that does not serve the message.
        accepted = [m for m in received if m.type == "method_call"]
        if accepted:
            rules = sorted(
                dict.fromkeys(_receive(None, m.interface, m.member, m.path, "method_call") for m in accepted),
                key=_rule_order,
            )
            add(Section("Accept the calls its interfaces serve, and no others.", rules))
        heard = [m for m in received if m.type == "signal"]
        if heard:
            rules = sorted(
                dict.fromkeys(
                    _receive(address, m.interface, m.member, m.path, "signal")
                    for m in heard
                    for address in (d.addresses(m.sender) or (None,))
                ),
                key=_rule_order,
            )
            add(Section("Accept the signals of the peers it calls, from those peers' names where they own one.", rules))
        return PolicyBlock(user.name, ("user", str(user.uid)), comment, _without_subsumed(sections))

    def mandatory_block(self) -> PolicyBlock:
        rules = []
        reasons = []
        for interface, member, reason in FORBIDDEN_DRIVER_CALLS:
            attributes = [("send_destination", DRIVER), ("send_interface", interface)]
            if member:
                attributes.append(("send_member", member))
            rules.append(Rule("deny", tuple(attributes)))
            reasons.append(f"{member or interface.rsplit('.', 1)[-1]} ({reason})")
        text = "Never, whatever a rule above says: " + "; ".join(reasons) + "."
        return PolicyBlock(
            "mandatory", ("context", "mandatory"), "Applied after every other rule.", (Section(text, rules),)
        )


def _without_subsumed(sections: list[Section]) -> tuple[Section, ...]:
    """Drop every rule that a broader rule of the same block already allows (a rule without a
    destination, sender or path matches everything the narrower one does), then empty sections.
    The output stays exact: it only loses rules that would change nothing.

    A rule has a handful of attributes, so its broader forms (its proper subsets) are few: each
    is looked up in a set of the block's rules, instead of comparing every pair of rules."""
    present = {(rule.verdict, frozenset(rule.attributes)) for section in sections for rule in section.rules}

    def subsumed(rule: Rule) -> bool:
        attributes = rule.attributes
        return any(
            (rule.verdict, frozenset(subset)) in present
            for size in range(len(attributes))
            for subset in itertools.combinations(attributes, size)
        )

    kept = []
    for section in sections:
        section.rules = [rule for rule in section.rules if not subsumed(rule)]
        if section.rules:
            kept.append(section)
    return tuple(kept)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _group(messages: Iterable[BusMessage]) -> list[tuple[tuple[str, str], list[BusMessage]]]:
    """Messages by (interface of the link, the other peer), in first-seen order."""
    groups: dict[tuple[str, str], list[BusMessage]] = {}
    for message in messages:
        other = message.receiver
        groups.setdefault((message.link.interface, other), []).append(message)
    return list(groups.items())


def _rule_order(rule: Rule) -> tuple[tuple[str, str], ...]:
    return rule.attributes


def _first(item: tuple[int, BusMessage]) -> int:
    return item[0]


def _wrap(text: str, indent: str = "", subsequent: str | None = None) -> list[str]:
    return textwrap.wrap(
        text,
        width=_WIDTH,
        initial_indent=indent,
        subsequent_indent=indent if subsequent is None else subsequent,
        break_on_hyphens=False,
        break_long_words=False,
    )


def build_config(registry: Registry, deployment: Deployment, scenario: str, listen: str = DEFAULT_LISTEN) -> BusConfig:
    """The configuration as data (`BusConfig.render` gives the text).  Raises `DeploymentError`
    when the inputs cannot be trusted with a policy (`input_problems`, a listen address that is
    not one line of printable text), and, as a last fence, when a rule would carry a value that
    is not valid for its attribute: a policy is written exactly as asked, or not at all."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; scenarios are {', '.join(SCENARIOS)}")
    problems = [*listen_problems(listen), *input_problems(registry, deployment)]
    if problems:
        raise DeploymentError(problems)
    builder = _Builder(registry, deployment, scenario)
    blocks = [builder.default_block()]
    blocks += [builder.user_block(user) for user in deployment.users(scenario) if deployment.peers_of(user, scenario)]
    blocks.append(builder.mandatory_block())
    problems = [
        DeploymentProblem(deployment.location, f"cannot write {name}={value!r} into a policy: {problem}")
        for block in blocks
        for section in block.sections
        for rule in section.rules
        for name, value in rule.attributes
        if (problem := _attribute_error(name, value)) is not None
    ]
    if problems:
        raise DeploymentError(problems[:1])  # one is enough: the deployment did not come from a file
    return BusConfig(builder.header(listen), listen, tuple(blocks))


#: What each rule attribute the generator writes may hold.  dbus-daemon reads a lone ``*`` as a
#: wildcard and an empty value as no value, and neither is a name; nothing else is special.
_VALUES = {
    "send_type": frozenset({"method_call", "method_return", "signal", "error"}),
    "receive_type": frozenset({"method_call", "method_return", "signal", "error"}),
    "send_requested_reply": frozenset({"true"}),
    "receive_requested_reply": frozenset({"true"}),
}


def _attribute_error(name: str, value: str) -> str | None:
    if name in _VALUES:
        return None if value in _VALUES[name] else f"expected one of {', '.join(sorted(_VALUES[name]))}"
    if name in ("own", "send_destination", "receive_sender"):
        return "a unique name is no well-known name" if value.startswith(":") else bus_name_error(value)
    if name in ("send_interface", "receive_interface"):
        return interface_name_error(value)
    if name in ("send_member", "receive_member"):
        return member_name_error(value)
    if name in ("send_path", "receive_path"):
        return object_path_error(value)
    if name == "user":
        return None if value.isdigit() and value.isascii() else "expected a uid"
    return f"the generator writes no {name} attribute"


def input_problems(registry: Registry, deployment: Deployment) -> tuple[DeploymentProblem, ...]:
    """Why a policy cannot be generated from ``registry`` and ``deployment``: the registry's
    parse errors (a policy from part of it would deny what the rest allows); every interface,
    method and signal name of the registry that is not a valid D-Bus name (the policy writes
    them as rule attributes, and dbus-daemon reads ``*`` there as "any": a member named ``*``
    would let calls to any method through), at its line with the checker's code; then what
    `check_deployment` finds."""
    problems = [DeploymentProblem(d.location, f"registry: {d.message} [{d.code}]") for d in registry.errors]
    for entry in registry:
        interface = entry.interface
        problem = interface_name_error(interface.name)
        if problem is not None:
            message = f"registry: invalid interface name {interface.name!r}: {problem} [S101]"
            problems.append(DeploymentProblem(interface.location, message))
        for member in interface.members:
            if isinstance(member, Property):
                continue  # never written: Properties.Get and GetAll carry the interface alone
            problem = member_name_error(member.name)
            if problem is not None:
                message = f"registry: invalid {member.kind} name {member.name!r}: {problem} [S102]"
                problems.append(DeploymentProblem(member.location, message))
    return (*problems, *check_deployment(deployment, registry))


LISTEN = "<listen address>"


def listen_problems(listen: str) -> tuple[DeploymentProblem, ...]:
    """The listen address goes into the configuration as text: one line of printable characters
    (a control character would make the XML ill-formed, and dbus-daemon refuse it)."""
    if listen and listen.isprintable() and listen.strip() == listen:
        return ()
    message = (
        f"the listen address {printable(listen)!r} must be one non-empty line of printable characters, "
        "without surrounding spaces (a D-Bus address escapes other bytes as %XX)"
    )
    return (DeploymentProblem(Location(LISTEN), message),)


def generate_policy(registry: Registry, deployment: Deployment, scenario: str, listen: str = DEFAULT_LISTEN) -> str:
    """The complete dbus-daemon configuration text for ``scenario``."""
    return build_config(registry, deployment, scenario, listen).render()


# --- rendering -----------------------------------------------------------------------------------

_DOCTYPE = (
    '<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"\n'
    ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">'
)


def _comment(text: str, indent: str) -> list[str]:
    text = _comment_text(text)
    if len(indent) + len(text) + 9 <= _WIDTH:
        return [f"{indent}<!-- {text} -->"]
    lines = textwrap.wrap(text, width=_WIDTH - len(indent) - 2, break_on_hyphens=False, break_long_words=False)
    return [f"{indent}<!--"] + [f"{indent}  {line}" for line in lines] + [f"{indent}-->"]


def render_block(block: PolicyBlock, indent: str = "  ") -> str:
    """One ``<policy>`` element with its comments, as it appears in the full configuration."""
    lines = _comment(block.comment, indent)
    lines.append(f"{indent}<policy {block.attribute[0]}={_quoteattr(block.attribute[1])}>")
    for number, section in enumerate(block.sections):
        if number:
            lines.append("")
        lines += _comment(section.comment, indent + "  ")
        lines += [f"{indent}  {rule.render()}" for rule in section.rules]
    lines.append(f"{indent}</policy>")
    return "\n".join(lines)


def render_config(config: BusConfig) -> str:
    lines = [_DOCTYPE, "<!--"]
    lines += [f"  {line}" if line else "" for line in config.header.split("\n")]
    lines += ["-->", "<busconfig>"]
    lines.append(f"  <listen>{_xml_text(config.listen)}</listen>")
    lines.append("  <auth>EXTERNAL</auth>")
    for block in config.blocks:
        lines.append("")
        lines.append(render_block(block))
    lines.append("</busconfig>")
    return "\n".join(lines) + "\n"


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def snippet(config: BusConfig, key: str) -> str:
    """The ``<policy>`` element for ``key`` (``default``, ``mandatory`` or a user name), exactly as
    in the full text, indentation removed."""
    return textwrap.dedent(render_block(config.block(key))) + "\n"


def policy_text(registry_path: str, deployment_spec: str | None, scenario: str, listen: str = DEFAULT_LISTEN) -> str:
    """Load, check and generate; every problem (registry, deployment) raises `DeploymentError`."""
    problems = listen_problems(listen)
    if problems:
        raise DeploymentError(problems)
    registry, deployment = checked_inputs(registry_path, deployment_spec)
    return generate_policy(registry, deployment, scenario, listen)


def checked_inputs(registry_path: str, deployment_spec: str | None) -> tuple[Registry, Deployment]:
    """The registry and the deployment, checked against each other: what the generator (and the
    diagram drawn from the same links) needs.  Every problem raises `DeploymentError`."""
    deployment = resolve_deployment(deployment_spec)
    registry = load_registry(registry_path)
    problems = input_problems(registry, deployment)
    if problems:
        raise DeploymentError(problems)
    return registry, deployment


def load_registry(path: str) -> Registry:
    """The registry at ``path``; an unreadable registry or one with parse errors raises
    `DeploymentError`, because a policy generated from part of it would silently deny too much."""
    try:
        registry = Registry.load([path])
    except FileNotFoundError:
        raise DeploymentError([_problem(path, "no such registry file or folder")]) from None
    if registry.errors:
        problems = [DeploymentProblem(d.location, f"registry: {d.message} [{d.code}]") for d in registry.errors]
        raise DeploymentError(problems)
    if not len(registry):
        raise DeploymentError([_problem(path, "the registry has no interfaces")])
    return registry


def _problem(where: str, message: str) -> DeploymentProblem:
    return DeploymentProblem(Location(where), message)

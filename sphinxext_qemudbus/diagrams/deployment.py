"""A deployment in one scenario as a picture: who may call whom, as which user, and which arrows
cross a trust boundary.

It is drawn from `security.trust.deployment_links`, the links the policy generator turns into
rules (`security.policy` allows exactly the messages of those links), so the picture cannot show
a call the configuration does not allow, nor leave out one it does; a test holds the two against
each other and against a real dbus-daemon running the generated configuration.

One lane per process and one for the bus daemon, in a frame per user; one arrow per caller,
implementer and kind of link (over the bus or peer-to-peer; a management interface or one QEMU
and its peers speak), labelled with the interfaces.  Arrows between two users are the places
where the receiver must validate everything it gets.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..model.registry import Registry
from ..security.deployment import SCENARIO_TITLES, Deployment, User
from ..security.trust import Link, crosses_users, deployment_links
from .lanes import Arrow, Diagram, Frame, Lane, LegendEntry, Span, Table

#: The bus daemon's lane: not a valid peer id, so it never collides with one.
BUS = "(bus)"

LEGEND = {
    "bus": "solid: calls over the VM's bus, which the generated policy allows",
    "p2p": "dashed: a peer-to-peer connection, handed over by a bus call; no bus policy applies",
    "cross": "thick, orange: from one user to another, a trust boundary: the receiver validates everything",
    "peer": "filled head: an interface QEMU and its peers speak to each other",
    "management": "open head: a management interface, called by the manager and never by QEMU",
}


def _family(name: str) -> str:
    """The versioned family of an interface: ``org.qemu.Display1`` for every Display1 interface."""
    parts = name.split(".")
    for index, part in enumerate(parts[1:], start=1):
        if part[-1:].isdigit():
            return ".".join(parts[: index + 1])
    return name


def interface_spans(names: Sequence[str]) -> tuple[Span, ...]:
    """Interface names, each a link, shortened by family: ``org.qemu.Display1.{Console, Mouse}``."""
    families: dict[str, list[str]] = {}
    for name in names:
        families.setdefault(_family(name), []).append(name)
    spans: list[Span] = []
    for number, (family, members) in enumerate(families.items()):
        if number:
            spans.append(Span("; "))
        if members == [family]:
            spans.append(Span(family, family, "interface"))
            continue
        spans.append(Span(family + ".{"))
        for index, name in enumerate(members):
            if index:
                spans.append(Span(", "))
            short = name if name == family else name[len(family) + 1 :]
            spans.append(Span(short, name, "interface"))
        spans.append(Span("}"))
    return tuple(spans)


def _lane_order(deployment: Deployment, scenario: str) -> list[tuple[User, list[str]]]:
    """Lanes by user.  Every scenario draws the lanes in one order (QEMU, the bus daemon, then the
    peers in deployment order), so that pictures of the three scenarios compare at a glance; the
    frames follow it, each user's frame where its first lane is."""
    lanes = [deployment.qemu.id, BUS] + [peer.id for peer in deployment.peers if peer.role != "qemu"]
    users: dict[str, tuple[User, list[str]]] = {}
    for lane in lanes:
        user = deployment.bus_user_in(scenario) if lane == BUS else deployment.user_of(lane, scenario)
        users.setdefault(user.name, (user, []))[1].append(lane)
    return list(users.values())


def deployment_diagram(registry: Registry, deployment: Deployment, scenario: str) -> Diagram:
    """The picture of ``deployment`` in ``scenario`` (the deployment checked against the registry
    beforehand, as the policy generator wants it)."""
    order = _lane_order(deployment, scenario)
    labels = {peer.id: peer.label for peer in deployment.peers}
    labels[BUS] = "the bus daemon"
    lanes = tuple(Lane(lane, labels[lane], daemon=lane == BUS) for _, ids in order for lane in ids)
    frames = tuple(Frame(f"user {user.name} ({user.uid})", tuple(ids)) for user, ids in order)

    grouped: dict[tuple[str, str, bool, bool], list[Link]] = {}
    for link in deployment_links(registry, deployment):
        management = registry.metadata(link.interface).kind == "management"
        grouped.setdefault((link.caller, link.implementer, link.peer_to_peer, management), []).append(link)
    position = {lane.id: index for index, lane in enumerate(lanes)}
    keys = sorted(grouped, key=lambda key: (key[3], position[key[0]], position[key[1]], key[2]))

    arrows: list[Arrow] = []
    rows: list[tuple[tuple[Span, ...], ...]] = []
    for caller, implementer, peer_to_peer, management in keys:
        names = [link.interface for link in grouped[(caller, implementer, peer_to_peer, management)]]
        crossing = crosses_users(deployment, scenario, caller, implementer)
        # Said in words as well as drawn: the line style alone would not reach every reader.
        tags = [tag for tag, on in (("peer-to-peer", peer_to_peer), ("management", management)) if on]
        label = (Span(f"({', '.join(tags)}) "),) if tags else ()
        spans = interface_spans(names)
        from_user = deployment.user_of(caller, scenario)
        to_user = deployment.user_of(implementer, scenario)
        how = "over a peer-to-peer connection" if peer_to_peer else "over the bus"
        boundary = (
            f"crosses from user {from_user.name} to user {to_user.name}: {labels[implementer]} validates what it receives"
            if crossing
            else f"both run as user {from_user.name}"
        )
        kind = "management interfaces" if management else "interfaces"
        title = f"{labels[caller]} calls {labels[implementer]} {how}, {kind} {', '.join(names)}; {boundary}"
        arrows.append(Arrow(caller, implementer, label + spans, peer_to_peer, management, crossing, _capital(title)))
        connection = "peer-to-peer" if peer_to_peer else "bus"
        rows.append(
            (
                (Span(labels[caller]),),
                (Span(labels[implementer]),),
                spans,
                (Span(connection + (", management" if management else "")),),
                (Span(f"yes: {from_user.name} → {to_user.name}" if crossing else "no"),),
            )
        )

    legend = [LegendEntry("bus", LEGEND["bus"])]
    if any(arrow.peer_to_peer for arrow in arrows):
        legend.append(LegendEntry("p2p", LEGEND["p2p"]))
    if any(arrow.crossing for arrow in arrows):
        legend.append(LegendEntry("cross", LEGEND["cross"]))
    legend.append(LegendEntry("peer", LEGEND["peer"]))
    if any(arrow.management for arrow in arrows):
        legend.append(LegendEntry("management", LEGEND["management"]))

    users = "; ".join(f"user {user.name}: {', '.join(labels[lane] for lane in ids)}" for user, ids in order)
    summary = (
        f'Who may call whom in the "{deployment.name}" deployment, scenario {scenario} '
        f"({SCENARIO_TITLES[scenario].lower()}). Processes by user: {users}."
    )
    if not arrows:
        summary += " No process may call another."
    table = Table(("Caller", "Implementer", "Interfaces", "Connection", "Crosses users"), tuple(rows))
    return Diagram(
        title=f"{deployment.name} deployment, {scenario}: who may call whom",
        summary=summary,
        lanes=lanes,
        frames=frames,
        rows=tuple(arrows),
        legend=tuple(legend),
        table=table,
    )


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]

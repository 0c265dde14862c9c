"""The security-model directives: generated bus policies and trust tables in the documentation.

``.. dbus-policy::``
    the dbus-daemon configuration ``qemu-dbus policy`` writes for a scenario and deployment —
    byte for byte the same text, because both call `policy.generate_policy` — or one
    ``<policy>`` element of it (``:policy: qemu-net``);
``.. dbus-trust-table::``
    for a scenario, every registry member whose messages cross a UID boundary, the peers
    involved, and what each receiver must validate;
``.. dbus-deployment::``
    the peers of a deployment and the user each runs as in every scenario.

The registry is read from ``dbus_registry_path`` (parsed once per build by `sources.parse_cached`),
and every file a directive reads — the registry XML and the deployment file — is recorded with
``env.note_dependency``, so editing either rebuilds the page.  Problems become located warnings
(``dbus.deployment``, ``dbus.policy``), never a failed build.

`trust_note_nodes` renders `trust.member_trust_notes` for the ``dbus-interface`` renderer.

Call `setup` after `config.register` (``sphinxext_qemudbus.sphinx.setup`` does); loaded on its own
(``extensions = ["sphinxext_qemudbus.sphinx.policy"]``) it registers the settings itself.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from docutils import nodes
from docutils.nodes import Node
from docutils.parsers.rst import directives
from sphinx import addnodes
from sphinx.util.docutils import SphinxDirective

from .._version import __version__
from ..check.references import KIND_ROLES
from ..model.registry import Registry
from ..security.deployment import (
    BUILTIN_DEPLOYMENTS,
    SCENARIOS,
    Deployment,
    DeploymentError,
    builtin_deployment,
    builtin_deployment_path,
    check_deployment,
    load_deployment,
    resolve_deployment,
)
from ..security.policy import DEFAULT_LISTEN, build_config, snippet
from ..security.trust import MemberFlow, MemberTrust, boundary_flows
from .config import registry_in_use
from .reporting import warn
from .sources import parse_cached, registry_files
from .tables import table

if TYPE_CHECKING:
    from sphinx.application import Sphinx


def _scenario(argument: str | None) -> str:
    return str(directives.choice(argument or "", SCENARIOS))


class _PolicyDirective(SphinxDirective):
    """Shared by the three directives: find the registry and the deployment, note both as
    dependencies, and warn (at the directive) instead of failing."""

    has_content = False
    option_spec: ClassVar[dict[str, Any]] = {"deployment": directives.unchanged_required}

    def registry(self) -> Registry | None:
        """The registry in use, or None when it is unusable (reported once, at conf.py)."""
        folder = registry_in_use(self.config)
        if folder is None:
            return None
        files = registry_files(folder)
        for path in files:
            self.env.note_dependency(os.path.abspath(path))
        return Registry([parse_cached(path) for path in files])

    def deployment(self, registry: Registry) -> Deployment | None:
        spec = self.options.get("deployment", "default")
        try:
            if spec in BUILTIN_DEPLOYMENTS and not spec.endswith(".toml"):
                self.env.note_dependency(builtin_deployment_path(spec))
                deployment = builtin_deployment(spec)
            else:
                path = os.fspath(self.env.relfn2path(spec, self.env.docname)[1])
                self.env.note_dependency(path)
                if "/" not in spec and not spec.endswith(".toml") and not os.path.exists(path):
                    resolve_deployment(spec)  # a misspelt built-in name: says so, with the closest
                deployment = load_deployment(path)
        except DeploymentError as error:
            for problem in error.problems:
                warn("deployment", problem.format(), self.get_location())
            return None
        problems = check_deployment(deployment, registry)
        for problem in problems:
            warn("deployment", problem.format(), self.get_location())
        return None if problems else deployment


class DBusPolicyDirective(_PolicyDirective):
    """``.. dbus-policy::`` with ``:scenario:`` (required), ``:deployment:`` (a built-in name or a
    ``.toml`` path relative to the document; default: ``default``), ``:policy:`` (show only the
    ``<policy>`` element of that user, or ``default``/``mandatory``) and ``:listen:``."""

    option_spec: ClassVar[dict[str, Any]] = {
        "scenario": _scenario,
        "deployment": directives.unchanged_required,
        "policy": directives.unchanged_required,
        "listen": directives.unchanged_required,
    }

    def run(self) -> list[Node]:
        if "scenario" not in self.options:
            raise self.error(f"dbus-policy needs :scenario: ({', '.join(SCENARIOS)})")
        registry = self.registry()
        deployment = self.deployment(registry) if registry is not None else None
        if registry is None or deployment is None:
            return []
        try:
            config = build_config(
                registry, deployment, self.options["scenario"], self.options.get("listen", DEFAULT_LISTEN)
            )
        except DeploymentError as error:  # names the policy cannot be trusted with, a bad :listen:
            for problem in error.problems:
                warn("policy", problem.format(), self.get_location())
            return []
        key = self.options.get("policy")
        if key is None:
            text = config.render()
        else:
            try:
                text = snippet(config, key)
            except KeyError:
                keys = ", ".join(block.key for block in config.blocks)
                warn(
                    "policy", f"no <policy> for {key!r} in this configuration (there are: {keys})", self.get_location()
                )
                return []
        block = nodes.literal_block(text, text, language="xml")
        block["classes"].append("dbus-policy")
        self.set_source_info(block)
        return [block]


def _member_link(interface: str, member: str, kind: str, docname: str) -> addnodes.pending_xref:
    target = f"{interface}.{member}"
    link = addnodes.pending_xref(
        "",
        nodes.literal(target, target),
        refdomain="dbus",
        reftype=KIND_ROLES[kind],
        reftarget=target,
        refexplicit=False,
        refwarn=False,
        refdoc=docname,
    )
    link["dbus:optional"] = True  # linked where the project documents it, plain text elsewhere
    return link


class DBusTrustTableDirective(_PolicyDirective):
    """``.. dbus-trust-table::`` with ``:scenario:`` (required), ``:deployment:`` and
    ``:interface:`` (only members of this interface, or of the interfaces under a prefix ending
    in ``.*``)."""

    option_spec: ClassVar[dict[str, Any]] = {
        "scenario": _scenario,
        "deployment": directives.unchanged_required,
        "interface": directives.unchanged_required,
    }

    def run(self) -> list[Node]:
        if "scenario" not in self.options:
            raise self.error(f"dbus-trust-table needs :scenario: ({', '.join(SCENARIOS)})")
        scenario = self.options["scenario"]
        registry = self.registry()
        deployment = self.deployment(registry) if registry is not None else None
        if registry is None or deployment is None:
            return []
        wanted = self.options.get("interface")
        flows = [
            flow for flow in boundary_flows(registry, deployment, scenario) if _wanted(flow.link.interface, wanted)
        ]
        if not flows:
            text = (
                f"In the {scenario} scenario no message of the {deployment.name} deployment crosses a trust "
                "boundary: the peers that exchange them run under one user, and nothing stops one from "
                "attacking the other."
            )
            return [nodes.paragraph(text, text)]
        grouped: dict[tuple[str, str, str], list[MemberFlow]] = {}
        for flow in flows:
            grouped.setdefault((flow.link.interface, flow.member.kind, flow.member.name), []).append(flow)
        rows = [self.row(deployment, key, group) for key, group in grouped.items()]
        headers = ["Member", "Crosses from → to", "The receiver validates"]
        return [table(headers, rows, [30, 25, 45], "dbus-trust-table")]

    def row(self, deployment: Deployment, key: tuple[str, str, str], flows: list[MemberFlow]) -> list[list[Node]]:
        interface, kind, member = key
        link: list[Node] = [_member_link(interface, member, kind, self.env.docname)]
        if flows[0].link.peer_to_peer:
            link.append(nodes.Text(" (peer-to-peer)"))
        label = {peer.id: peer.label for peer in deployment.peers}
        routes = dict.fromkeys(f"{label[flow.sender]} → {label[flow.receiver]}" for flow in flows)
        route_nodes: list[Node] = [nodes.Text("; ".join(routes))]
        duties: dict[tuple[str, str, str], tuple[list[str], str | None]] = {}
        for flow in flows:
            for duty in flow.duties:
                entry = duties.setdefault((duty.duty.name, duty.duty.flow, duty.duty.item.type), ([], duty.duty.note))
                if label[duty.receiver] not in entry[0]:
                    entry[0].append(label[duty.receiver])
        items = nodes.bullet_list()
        for (name, flow_kind, value_type), (receivers, note) in duties.items():
            paragraph = nodes.paragraph()
            paragraph += nodes.Text(f"{', '.join(receivers)}: ")
            paragraph += nodes.literal(name, name)
            paragraph += nodes.Text(f" ({flow_kind}, {value_type})")
            if note:
                paragraph += nodes.Text(f": {note}")
            items += nodes.list_item("", paragraph)
        validates: list[Node] = (
            [items] if len(items) else [nodes.Text("no values; the receiver can still check the sender")]
        )
        return [link, route_nodes, validates]


def _wanted(interface: str, wanted: str | None) -> bool:
    if wanted is None:
        return True
    if wanted.endswith(".*"):
        return interface.startswith(wanted[:-1])
    return interface == wanted


class DBusDeploymentDirective(_PolicyDirective):
    """``.. dbus-deployment::`` with ``:deployment:``: the peers, their roles, names and
    interfaces, and the user each one runs as in every scenario."""

    def run(self) -> list[Node]:
        registry = self.registry()
        deployment = self.deployment(registry) if registry is not None else None
        if registry is None or deployment is None:
            return []
        rows: list[list[list[Node]]] = []
        for peer in deployment.peers:
            who: list[Node] = [
                nodes.strong(peer.id, peer.id),
                nodes.Text(f" ({peer.role}): {peer.description or peer.label}"),
            ]
            owns: list[Node] = _literals(peer.owns) or [nodes.Text("—")]
            implements: list[Node] = _literals(peer.implements) or [nodes.Text("—")]
            users: list[list[Node]] = [[nodes.Text(deployment.user_of(peer.id, s).name)] for s in SCENARIOS]
            rows.append([who, owns, implements, *users])
        bus: list[list[Node]] = [[nodes.Text(deployment.bus_user_in(s).name)] for s in SCENARIOS]
        rows.append([[nodes.strong("bus", "the bus daemon")], [nodes.Text("—")], [nodes.Text("—")], *bus])
        headers = ["Peer", "Owns", "Implements", *(f"User in {s}" for s in SCENARIOS)]
        return [table(headers, rows, [19, 18, 39, 8, 8, 8], "dbus-deployment")]


def _literals(names: Sequence[str]) -> list[Node]:
    result: list[Node] = []
    for index, name in enumerate(names):
        if index:
            result.append(nodes.Text(", "))
        result.append(nodes.literal(name, name))
    return result


def trust_note_nodes(trust: MemberTrust) -> list[Node]:
    """The trust note of one member as docutils nodes, for the ``dbus-interface`` renderer: a
    paragraph on the crossing, then one item per value its receivers validate."""
    head = trust.headline()
    result: list[Node] = [nodes.paragraph(head, head, classes=["dbus-trust"])]
    items = nodes.bullet_list(classes=["dbus-trust"])
    for sentence in trust.validations() if trust.boundary_scenarios else ():
        items += nodes.list_item("", nodes.paragraph(sentence, sentence))
    if len(items):
        result.append(items)
    return result


def trust_note_rest(trust: MemberTrust, notes: bool = False) -> list[str]:
    """The trust note of one member as reST lines (a ``dbus-trust`` container), for a renderer
    that generates reST; ``notes=False`` leaves out the per-value validation notes that the
    renderer already shows beside each arg."""
    from .render import escape

    return [".. container:: dbus-trust", "", "   **Trust:** " + escape(trust.summary(notes)), ""]


DIRECTIVES: dict[str, type[SphinxDirective]] = {
    "dbus-policy": DBusPolicyDirective,
    "dbus-trust-table": DBusTrustTableDirective,
    "dbus-deployment": DBusDeploymentDirective,
}


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directives (and the settings, when loaded without the rest of the
    extension).  Nothing is stored in the environment: parallel reading and writing are safe."""
    if "dbus_registry_path" not in app.config:
        from .config import register

        register(app)
    for name, directive in DIRECTIVES.items():
        app.add_directive(name, directive)
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}

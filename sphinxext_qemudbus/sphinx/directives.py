"""Directives that generate documentation: from XML (``dbus-interface``, ``dbus-doc``), from the
registry (``dbus-registry``) and from the project's own tables (``dbus-rules``,
``dbus-metadata-keys``, ``dbus-config``, ``dbus-warnings``), so the documentation of the checker
and of this extension cannot drift from the code.

The XML directives record every file they read with ``env.note_dependency`` (editing it re-reads
exactly the documents that use it), log the parser's diagnostics at their XML line, and leave out
an interface that has errors instead of failing the build.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable
from typing import Any

from docutils import nodes
from docutils.nodes import Node
from docutils.parsers.rst import directives
from sphinx import addnodes
from sphinx.util.docutils import SphinxDirective

from ..diagnostics.diagnostic import Diagnostic, Severity
from ..diagnostics.output import printable
from ..diagnostics.rules import GROUPS, PROFILES, RULES
from ..model.introspection import ALL_PLATFORMS, Interface, platform_label, platforms_of
from ..model.metadata import KEYS, ROLE_DESCRIPTIONS, interface_metadata
from ..model.parser import ParsedFile
from ..security.deployment import (
    BUILTIN_DEPLOYMENTS,
    Deployment,
    DeploymentError,
    builtin_deployment,
    builtin_deployment_path,
    load_deployment,
)
from .config import CONFIG_VALUES, registry_in_use
from .describe import describe
from .domain import DBusDomain
from .render import Entry, escape, file_entries, interface_entry
from .reporting import SPHINX_WARNINGS, log_diagnostic, warn
from .rst import parse_generated
from .sources import find_interface, parse_cached, registry_files, registry_index
from .tables import table


def usable_interfaces(parsed: ParsedFile) -> list[Interface]:
    """The interfaces of a file without an error inside them.  An error is attributed to the
    interface that starts last at or before its line; a file-level error (bad XML) leaves no
    interface at all."""
    interfaces = sorted(parsed.interfaces, key=lambda i: i.location.line)
    broken: set[int] = set()
    for diagnostic in parsed.diagnostics:
        if diagnostic.severity is not Severity.ERROR:
            continue
        owner = None
        for index, interface in enumerate(interfaces):
            if interface.location.line <= diagnostic.location.line:
                owner = index
        if owner is not None:
            broken.add(owner)
    return [interface for index, interface in enumerate(interfaces) if index not in broken]


class XMLDirective(SphinxDirective):
    """What the XML directives share: dependencies and diagnostics."""

    def read(self, path: str) -> ParsedFile:
        parsed = parse_cached(path)
        self.env.note_dependency(parsed.path)
        return parsed

    def report(self, diagnostics: Iterable[Diagnostic]) -> None:
        for diagnostic in diagnostics:
            log_diagnostic(diagnostic, fallback=self.get_location())

    def note_scan(self, folder: str) -> None:
        """Re-read this document when a file is added to or removed from ``folder``."""
        names = tuple(os.path.basename(path) for path in registry_files(folder))
        domain = self.env.get_domain("dbus")
        assert isinstance(domain, DBusDomain)
        domain.scans[self.env.docname] = (folder, names)

    def render(self, path: str, entries: list[Entry]) -> list[Node]:
        """The nodes of entries from the XML file ``path``: its text is untrusted (`untrusted`)."""
        return describe(self, path, entries)


class DBusInterfaceDirective(XMLDirective):
    """``.. dbus-interface:: org.qemu.Display1.Console``: one interface from the registry."""

    required_arguments = 1
    has_content = False
    option_spec = {"no-index": directives.flag, "noindex": directives.flag}  # noqa: RUF012

    def run(self) -> list[Node]:
        name = self.arguments[0].strip()
        folder = registry_in_use(self.config)
        if folder is None:
            return []  # the unusable registry was reported once, at conf.py
        lookup = find_interface(folder, name)
        read = list(lookup.read)
        if lookup.interface is None and lookup.parsed is None:
            # Not a full name: the last elements of one (``Console``), as the CLI takes them.
            # Having looked in every file, the page depends on all of them, as it should: a new
            # interface can make a short name ambiguous.
            named = registry_index(folder).interfaces.lookup(name)
            if named.found is None:
                problem = named.problem(f"the registry ({folder})") or ""
                warn("missing-interface", printable(problem), self.get_location())
            else:
                lookup = find_interface(folder, named.found)
                read += lookup.read
        for path in dict.fromkeys(read):
            self.env.note_dependency(path)
        if len(read) > 1 or lookup.interface is None:
            self.note_scan(folder)
        if lookup.parsed is not None:
            self.report(lookup.parsed.diagnostics)
        if lookup.interface is None:
            return []
        assert lookup.parsed is not None
        if lookup.interface not in usable_interfaces(lookup.parsed):
            return []  # its errors were reported above
        no_index = "no-index" in self.options or "noindex" in self.options
        deployment = self.trust_deployment()
        entry = interface_entry(lookup.interface, no_index=no_index, deployment=deployment)
        return self.render(lookup.parsed.path, [entry])

    def trust_deployment(self) -> Deployment | None:
        """The deployment of ``dbus_trust_deployment`` (recorded as a dependency), or None."""
        spec = self.config.dbus_trust_deployment
        if not spec:
            return None
        try:
            if spec in BUILTIN_DEPLOYMENTS:
                self.env.note_dependency(builtin_deployment_path(spec))
                return builtin_deployment(spec)
            self.env.note_dependency(spec)
            return load_deployment(spec)
        except DeploymentError as error:
            for problem in error.problems:
                warn("deployment", problem.format(), self.get_location())
            return None


class DBusDocDirective(XMLDirective):
    """``.. dbus-doc:: ui/dbus-display1.xml``: every interface of a file, as QEMU's directive.
    The path is relative to ``dbusdoc_srctree`` when it is set, else to the document; a path
    that starts with ``/`` is relative to that tree, or to the source folder (Sphinx's own rule
    for included files, and what QEMU's string concatenation does).  A path that leaves the tree
    warns: the page would depend on a file outside the project."""

    required_arguments = 1
    final_argument_whitespace = True
    has_content = True

    def run(self) -> list[Node]:
        argument = self.arguments[0].strip()
        srctree = self.config.dbusdoc_srctree
        if srctree:
            base = srctree
            path = os.path.join(srctree, argument.lstrip("/"))
        else:
            base = os.fspath(self.env.srcdir)
            path = os.fspath(self.env.relfn2path(argument, self.env.docname)[1])
        if not _inside(path, base):
            tree = "dbusdoc_srctree" if srctree else "the source folder"
            where = os.path.realpath(path)
            warn("outside-source", f"dbus-doc path {argument!r} leads out of {tree}, to {where}", self.get_location())
        parsed = self.read(path)
        self.report(parsed.diagnostics)
        return self.render(parsed.path, file_entries(usable_interfaces(parsed)))


def _inside(path: str, folder: str) -> bool:
    """Whether ``path`` lies in ``folder``, once both are resolved (``..``, symbolic links)."""
    real, top = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([real, top]) == top


# --- tables ----------------------------------------------------------------------------------


def _literal(text: str) -> nodes.literal:
    return nodes.literal(text, text)


class DBusRegistryDirective(XMLDirective):
    """``.. dbus-registry::``: a table of every registry interface with its metadata, each name
    linking to its reference entry where the project documents it.  It reports no parse errors
    (``qemu-dbus check`` and the ``dbus-interface`` pages do); an unreadable file is left out."""

    optional_arguments = 1
    has_content = False

    def run(self) -> list[Node]:
        folder = self.arguments[0] if self.arguments else registry_in_use(self.config)
        if folder is None:
            return []  # the unusable registry was reported once, at conf.py
        if self.arguments and not os.path.isabs(folder):
            folder = os.fspath(self.env.relfn2path(folder, self.env.docname)[1])
        rows: list[list[list[Node]]] = []
        for path in registry_files(folder):
            parsed = self.read(path)
            for interface in usable_interfaces(parsed):
                rows.append(self.row(interface))
        self.note_scan(folder)
        if not rows:
            warn("missing-interface", f"no registry interfaces found in {folder}", self.get_location())
            return []
        rows.sort(key=lambda row: row[0][0].astext())
        headers = ["Interface", "Implemented by → called by", "Reached at", "Since"]
        return [table(headers, rows, [34, 18, 36, 12], "dbus-registry")]

    def row(self, interface: Interface) -> list[list[Node]]:
        metadata = interface_metadata(interface)
        link = addnodes.pending_xref(
            "",
            _literal(interface.name),
            refdomain="dbus",
            reftype="iface",
            reftarget=interface.name,
            refexplicit=False,
            refwarn=False,
            refdoc=self.env.docname,
        )
        link["dbus:optional"] = True
        self.set_source_info(link)
        name: list[Node] = [link]
        platforms = platforms_of(interface.conditions)
        if platforms != ALL_PLATFORMS:
            name += [nodes.Text(f" ({platform_label(platforms)} only)")]
        reached: list[Node] = []
        if metadata.peer_to_peer:
            reached.append(nodes.Text("peer-to-peer: "))
        elif metadata.bus_name:
            reached += [_literal(metadata.bus_name), nodes.Text(" at ")]
        if metadata.object_path:
            reached.append(_literal(metadata.object_path))
        roles = f"{', '.join(metadata.implementers) or '?'} → {', '.join(metadata.callers) or '?'}"
        if metadata.kind == "management":
            roles += " (management interface)"
        since = metadata.since or interface.since or ""
        stability: list[Node] = [nodes.Text(since)]
        if metadata.stability and metadata.stability != "stable":
            stability.append(nodes.Text(f" ({metadata.stability})"))
        return [name, [nodes.Text(roles)], reached, stability]


class GeneratedTable(SphinxDirective):
    """A table generated from one of the project's tables, whose texts are reST."""

    has_content = False

    def rows(self) -> tuple[list[str], list[list[str]], str]:
        raise NotImplementedError

    def run(self) -> list[Node]:
        headers, rows, widths = self.rows()
        lines = [".. list-table::", "   :header-rows: 1", f"   :widths: {widths}", "   :class: dbus-table", ""]
        for row in [headers, *rows]:
            for index, cell in enumerate(row):
                parts = cell.split("\n") or [""]
                lines.append(f"   {'*' if index == 0 else ' '} - {parts[0]}")
                lines += [f"       {part}" for part in parts[1:]]
        lines.append("")
        return parse_generated(self, lines)


class DBusRulesDirective(GeneratedTable):
    """``.. dbus-rules::``: every rule code of the checker, from `sphinxext_qemudbus.diagnostics.rules.RULES`.
    ``:group: R`` limits it to one letter."""

    option_spec = {"group": lambda argument: (argument or "").strip().upper()}  # noqa: RUF012

    def rows(self) -> tuple[list[str], list[list[str]], str]:
        group = self.options.get("group")
        rows = []
        for rule in RULES.values():
            if group and not rule.code.startswith(group):
                continue
            profiles = "" if len(rule.profiles) == len(PROFILES) else f" ({', '.join(rule.profiles)} profile only)"
            # The rule table is plain text (it is also printed by `qemu-dbus rules`).
            text = escape(rule.doc) + (f"\n\n*Fix:* {escape(rule.hint)}" if rule.hint else "")
            rows.append(
                [
                    f"``{rule.code}``",
                    f"``{rule.name}``",
                    f"{rule.severity.value}{profiles}",
                    f"{GROUPS[rule.code[0]]}",
                    text,
                ]
            )
        return ["Code", "Name", "Severity", "Group", "What it checks"], rows, "8 18 10 12 52"


class DBusMetadataKeysDirective(GeneratedTable):
    """``.. dbus-metadata-keys::``: the ``org.qemu.Registry.*`` annotations, from
    `sphinxext_qemudbus.metadata.KEYS`, and the roles they name."""

    def rows(self) -> tuple[list[str], list[list[str]], str]:
        rows = [
            [f"``{key.name}``", ", ".join(key.applies_to), "yes" if key.required else "no", key.value, key.doc]
            for key in KEYS
        ]
        return ["Annotation", "On", "Required", "Value", "Meaning"], rows, "26 10 8 16 40"

    def run(self) -> list[Node]:
        result = super().run()
        roles = nodes.definition_list(classes=["dbus-roles"])
        for role, description in ROLE_DESCRIPTIONS.items():
            roles += nodes.definition_list_item(
                "", nodes.term("", "", _literal(role)), nodes.definition("", nodes.paragraph(description, description))
            )
        return [*result, nodes.paragraph("Roles:", "Roles:"), roles]


class DBusConfigDirective(GeneratedTable):
    """``.. dbus-config::``: the extension's ``conf.py`` settings, from `config.CONFIG_VALUES`."""

    def rows(self) -> tuple[list[str], list[list[str]], str]:
        rows = []
        for value in CONFIG_VALUES:
            qemu = "\n\n(also a setting of QEMU's own extension)" if value.qemu else ""
            rows.append(
                [
                    f"``{value.name}``",
                    f"``{value.default!r}``",
                    value.type_names,
                    value.rebuild or "none",
                    value.help + qemu,
                ]
            )
        return ["Setting", "Default", "Type", "Rebuild", "Meaning"], rows, "20 14 10 8 48"


class DBusDirectivesDirective(GeneratedTable):
    """``.. dbus-directives::``: every directive of the extension with its options, read from
    the directives' own ``option_spec`` (and the first paragraph of each one's documentation),
    so the list cannot miss a directive or an option."""

    def rows(self) -> tuple[list[str], list[list[str]], str]:
        from .domain import DBusDomain
        from .policy import DIRECTIVES as POLICY_DIRECTIVES
        from .probe import DIRECTIVES as PROBE_DIRECTIVES

        every: dict[str, type[Any]] = {f"dbus:{name}": cls for name, cls in DBusDomain.directives.items()}
        every |= {**DIRECTIVES, **POLICY_DIRECTIVES, **PROBE_DIRECTIVES}
        rows = []
        for name, directive in sorted(every.items()):
            options = sorted(getattr(directive, "option_spec", None) or {})
            summary = " ".join((inspect.getdoc(directive) or "").split("\n\n")[0].split())
            rows.append([f"``{name}``", ", ".join(f"``:{option}:``" for option in options) or "none", summary])
        return ["Directive", "Options", "What it does"], rows, "18 32 50"


class DBusWarningsDirective(GeneratedTable):
    """``.. dbus-warnings::``: the warning codes only a docs build produces."""

    def rows(self) -> tuple[list[str], list[list[str]], str]:
        rows = [[f"``dbus.{code}``", text] for code, text in SPHINX_WARNINGS.items()]
        return ["Warning type", "Meaning"], rows, "25 75"


DIRECTIVES: dict[str, type[SphinxDirective]] = {
    "dbus-interface": DBusInterfaceDirective,
    "dbus-doc": DBusDocDirective,
    "dbus-registry": DBusRegistryDirective,
    "dbus-rules": DBusRulesDirective,
    "dbus-metadata-keys": DBusMetadataKeysDirective,
    "dbus-config": DBusConfigDirective,
    "dbus-warnings": DBusWarningsDirective,
    "dbus-directives": DBusDirectivesDirective,
}

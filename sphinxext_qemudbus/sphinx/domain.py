"""The ``dbus`` domain: interfaces, methods, signals and properties, keyed by full name.

Markup-compatible with QEMU's ``docs/sphinx/dbusdomain.py`` (the same directives, options, fields,
roles and index), without its defects: objects are stored by fully qualified name, so
``Keyboard.Press`` and ``Mouse.Press`` are two objects; a role finds only objects of its own kind;
references resolve with `sphinxext_qemudbus.references.resolve`, the algorithm the checker uses;
dangling, wrong-kind and ambiguous references warn at the reference (in the XML file when the
reference came from a doc comment) even without ``-n``; duplicates warn with both locations; and
the domain data is merged correctly after a parallel read.

What each hook does:

* ``handle_signature`` builds the signature nodes only (for methods and signals it reads the
  ``:arg:``/``:ret:`` field names from the raw content instead of parsing the content twice);
* ``add_target_and_index`` makes the id with `make_id`, notes the target and the object;
* ``before_content``/``after_content`` push and pop the current interface in ``env.ref_context``;
* ``transform_content`` adds the fields that come from options (metadata, access, reply...).

The directives that render XML (``dbus-interface``, ``dbus-doc``) run these same classes, with
the content already built from the model (`Generated`) instead of reST: targets, index entries,
signatures, badges and fields have one implementation, whoever writes the description.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, cast

from docutils import nodes
from docutils.nodes import Element, Node
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx import addnodes
from sphinx.addnodes import desc_signature, pending_xref
from sphinx.directives import ObjectDescription
from sphinx.domains import Domain, Index, IndexEntry, ObjType
from sphinx.locale import _
from sphinx.roles import XRefRole
from sphinx.util.docfields import Field, TypedField
from sphinx.util.docutils import SphinxDirective, switch_source_input
from sphinx.util.logging import get_node_location
from sphinx.util.nodes import make_id, make_refnode

from ..check.references import KIND_ROLES, ROLE_KINDS, Resolution, display_text, resolve, suffix_index
from ..diagnostics.frozen import record
from ..model.introspection import ALL_PLATFORMS, PLATFORM_LABELS, PLATFORMS, EmitsChanged, platform_label
from ..model.metadata import ROLE_DESCRIPTIONS, ROLES
from ..model.names import interface_name_error, member_name_error
from ..model.signature import SignatureError, describe, parse_single_type
from .config import common_prefixes, registry_in_use
from .reporting import warn
from .sources import registry_index

if TYPE_CHECKING:
    from docutils.parsers.rst.states import Inliner
    from sphinx.builders import Builder
    from sphinx.environment import BuildEnvironment

KINDS = ("interface", "method", "signal", "property")
# Sphinx 7.4 added parse_content_to_nodes, with which ObjectDescription parses its content at the
# content's own offset.
_PARSES_CONTENT_AT_ITS_OFFSET = hasattr(SphinxDirective, "parse_content_to_nodes")
_CURRENT = "dbus:interface"  # env.ref_context key, the same as QEMU's
#: The column of a reference from a doc comment (its node's line is the reference's own).
COLUMN = "dbus:column"


class ObjectEntry(NamedTuple):
    """One documented object.  ``location`` is ``path:line`` of its description (the XML file
    when it was generated), for duplicate warnings that name both places."""

    docname: str
    node_id: str
    objtype: str
    location: str


# --- option converters ---------------------------------------------------------------------


def optional_text(argument: str | None) -> str:
    """``:deprecated:`` is a flag in QEMU's markup; here it may also carry the reason."""
    return (argument or "").strip()


_PLATFORM_ALIASES = {"unix": "unix", "linux": "unix", "posix": "unix", "windows": "windows", "win32": "windows"}


def platform_option(argument: str | None) -> frozenset[str]:
    """``:platform: unix`` or ``:platform: windows``: where the object exists."""
    names = (argument or "").replace(",", " ").split()
    if not names:
        raise ValueError("give one or more platforms: unix, windows")
    platforms = set()
    for name in names:
        platform = _PLATFORM_ALIASES.get(name.lower())
        if platform is None:
            raise ValueError(f"unknown platform {name!r}; use unix or windows")
        platforms.add(platform)
    return frozenset(platforms)


def roles_option(argument: str | None) -> tuple[str, ...]:
    roles = tuple(role.strip() for role in (argument or "").split(",") if role.strip())
    if not roles:
        raise ValueError("give one or more roles: " + ", ".join(ROLES))
    return roles


_EMITS_ALIASES = {"yes": EmitsChanged.TRUE, "no": EmitsChanged.FALSE}


def emits_option(argument: str | None) -> EmitsChanged:
    """``:emits-changed:`` takes the annotation's values; QEMU's ``yes`` means ``true``."""
    value = (argument or "").strip().lower()
    if value in _EMITS_ALIASES:
        return _EMITS_ALIASES[value]
    try:
        return EmitsChanged(value)
    except ValueError:
        raise ValueError("expected true, invalidates, const or false (or yes/no)") from None


def name_problems(objtype: str, name: str, interface: str | None) -> list[tuple[str, str]]:
    """What is wrong with the full ``name`` of an object of kind ``objtype`` described inside
    ``interface`` (None outside any), as the checker's codes and words: S101 for an interface
    name, S102 for a method or signal name, S103 for a property name.  A docs build reads XML the
    checker never saw (``dbus-doc`` of another project's file) and hand-written descriptions.
    The enclosing interface's own name is checked where it is described."""
    if objtype == "interface":
        problem = interface_name_error(name)
        return [("S101", f"invalid interface name {name!r}: {problem}")] if problem else []
    found = []
    if interface is not None:
        member = name[len(interface) + 1 :]
    else:
        owner, _dot, member = name.rpartition(".")
        if owner and (problem := interface_name_error(owner)):
            found.append(("S101", f"invalid interface name {owner!r}: {problem}"))
    if problem := member_name_error(member, f"{objtype} name"):
        found.append(("S103" if objtype == "property" else "S102", f"invalid {objtype} name {member!r}: {problem}"))
    return found


# --- nodes shared by the directives ---------------------------------------------------------


def badge(text: str, kind: str) -> nodes.inline:
    """A small label in a signature: ``Since 7.0``, ``deprecated``, ``Unix``, ``no reply``."""
    return nodes.inline(text, text, classes=["dbus-badge", f"dbus-badge-{kind}"])


@functools.lru_cache(maxsize=4096)
def human_type(code: str) -> str | None:
    """``a{sv}`` → "dict of string to variant"; None for an invalid type (the checker says why).
    Cached: every page repeats a few dozen types."""
    try:
        return describe(parse_single_type(code))
    except SignatureError:
        return None


def type_nodes(code: str) -> list[Node]:
    """The raw type code and its human-readable form, side by side."""
    result: list[Node] = [nodes.literal(code, code, classes=["dbus-type"])]
    human = human_type(code)
    if human is not None and human != code:
        result += [nodes.Text(", "), nodes.emphasis(human, human, classes=["dbus-human-type"])]
    return result


def _field(name: str, *body: Node) -> nodes.field:
    paragraph = nodes.paragraph("", "", *body)
    return nodes.field("", nodes.field_name(name, name), nodes.field_body("", paragraph))


def _text_field(name: str, text: str) -> nodes.field:
    return _field(name, nodes.Text(text))


class DBusArgField(TypedField):
    """``:arg TYPE NAME: text`` / ``:ret TYPE NAME: text``, shown as "name (TYPE, human type):
    text".  Unlike `TypedField` it keeps block content (a second paragraph, such as a validation
    note) out of the first paragraph, where docutils does not allow it."""

    def make_field(
        self,
        types: dict[str, list[Node]],
        domain: str,
        items: Iterable[tuple[str, list[Node]]],
        env: BuildEnvironment | None = None,
        inliner: Inliner | None = None,
        location: Element | None = None,
    ) -> nodes.field:
        body = nodes.bullet_list()
        for name, content in items:
            head = nodes.paragraph()
            head += addnodes.literal_strong(name, name)
            type_given = types.pop(name, None)
            if type_given:
                head += nodes.Text(" (")
                head += type_nodes("".join(node.astext() for node in type_given).strip())
                head += nodes.Text(")")
            blocks: list[Node] = []
            inline = list(content)
            if (
                len(inline) == 1
                and isinstance(inline[0], nodes.inline)
                and any(isinstance(c, nodes.Body) for c in inline[0].children)
            ):
                inline = list(inline[0].children)  # Sphinx >= 7.? wraps the field body for i18n
            if inline and isinstance(inline[0], nodes.paragraph):
                blocks = inline[1:]
                inline = list(inline[0].children)
            elif any(isinstance(node, nodes.Body) for node in inline):
                blocks, inline = inline, []
            if any(node.astext().strip() for node in inline):
                head += nodes.Text(" \N{EN DASH} ")
                head += inline
            body += nodes.list_item("", head, *blocks)
        return nodes.field("", nodes.field_name("", self.label), nodes.field_body("", body))


def _arg_fields(kind: str) -> list[Field]:
    """The arg fields of a method or signal: QEMU's ``arg``/``ret``, plus ``arg-unix``,
    ``arg-windows``... for args that exist on one platform only (one signature per platform)."""
    fields: list[Field] = []
    groups = [("arg", _("Arguments"))] if kind == "signal" else [("arg", _("Arguments")), ("ret", _("Returns"))]
    for field, label in groups:
        fields.append(
            DBusArgField(
                field,
                names=(field,),
                typenames=(f"{field}type", "type") if field == "arg" else (f"{field}type",),
                label=label,
            )
        )
        for platform, platform_name in PLATFORM_LABELS.items():
            name = f"{field}-{platform}"
            fields.append(
                DBusArgField(
                    name, names=(name,), typenames=(f"{field}type-{platform}",), label=f"{label} ({platform_name})"
                )
            )
    return fields


@record(frozen=True)
class SignatureArg:
    """One arg of a method's or signal's signature: ``arg`` or ``ret``, the platform it is
    limited to (None: every platform of the member), its type code and its name."""

    direction: str  # "arg" or "ret"
    platform: str | None
    type: str
    name: str


_ARG_FIELD = re.compile(r":(arg|ret)(?:-([a-z0-9]+))?\s+(?:(\S+)\s+)?([^\s:]+)\s*:(?:\s|$)")
_TYPE_FIELD = re.compile(r":(arg|ret)?type(?:-([a-z0-9]+))?\s+([^\s:]+)\s*:\s*(\S+)")


def signature_args(lines: Iterable[str]) -> list[SignatureArg]:
    """The args a method's content declares in its top-level ``:arg:``/``:ret:`` fields, in
    order.  Reading the field names is enough to build the signature, so the content is parsed
    once, by `ObjectDescription`, and not a second time here as QEMU's domain does."""
    found: list[tuple[str, str | None, str | None, str]] = []
    types: dict[tuple[str | None, str], str] = {}
    for line in lines:
        if match := _ARG_FIELD.match(line):
            found.append((match.group(1), match.group(2), match.group(3), match.group(4)))
        elif match := _TYPE_FIELD.match(line):
            types[(match.group(2), match.group(3))] = match.group(4)
    return [
        SignatureArg(direction, platform, code or types.get((platform, name), types.get((None, name), "")), name)
        for direction, platform, code, name in found
    ]


#: Parses a line of doc-comment text as reST inline markup: ``(nodes, messages)``.
InlineParser = Callable[[str, int], "tuple[list[Node], list[Node]]"]


@record(frozen=True)
class Generated:
    """What a description made from the model has in place of reST content: where it is in the
    XML, its args (for the signature), a function that builds its content nodes (called where
    the directive would parse its content, inside the object, so that references in it know
    their interface), and the parser of the doc text its options carry (the deprecation
    reason), which is reST whatever the document's own markup."""

    source: str
    line: int
    args: tuple[SignatureArg, ...]
    content: Callable[[], list[Node]]
    inline: InlineParser


def run_generated(
    kind: str, argument: str, options: Sequence[tuple[str, str | None]], generated: Generated, directive: Any
) -> list[Node]:
    """Run the ``dbus:<kind>`` description of `DBusDomain` for an object of the model, as the
    directive ``directive`` (which read the XML) would have run it from reST: ``options`` are
    given as reST would write them and converted by the same option functions.  An option value
    the description refuses is left out with a located warning, not the whole object."""
    cls: type[DBusObject] = DBusDomain.directives[kind]
    converted: dict[str, Any] = {}
    for name, value in options:
        try:
            converted[name] = cls.option_spec[name](value)
        except (ValueError, TypeError) as error:
            warn(
                "xml-value",
                f"{kind} {argument}: {name} {value!r} left out: {' '.join(map(str, error.args))}",
                f"{generated.source}:{generated.line}",
            )
    description = cls(
        f"dbus:{kind}",
        [argument],
        converted,
        StringList(),
        generated.line,
        0,
        "",
        directive.state,
        directive.state_machine,
    )
    description.generated = generated
    return description.run()


# --- object descriptions ----------------------------------------------------------------------


class DBusObject(ObjectDescription[str]):
    """What every ``dbus:*`` object description shares: its full name, target, index entry,
    badges and the deprecation note."""

    option_spec: ClassVar[dict[str, Any]] = {
        **ObjectDescription.option_spec,
        "deprecated": optional_text,
        "since": directives.unchanged_required,
        "platform": platform_option,
    }
    #: Set by `run_generated` on a description made from the model.
    generated: Generated | None = None

    def run(self) -> list[Node]:
        if _PARSES_CONTENT_AT_ITS_OFFSET or self.generated is not None:
            return super().run()
        # Sphinx < 7.4 parses the content at offset 0, so the reporter, which maps line numbers
        # through the whole document, points every message of the content at the wrong line.
        # Map them through the content itself instead: its lines carry their own source and
        # line.  (A generated description has no reST content; its doc text is located by
        # `rst.DocParser`.)
        with switch_source_input(self.state, self.content):
            return super().run()

    def get_source_info(self) -> tuple[str, int]:
        if self.generated is not None:
            return self.generated.source, self.generated.line
        return super().get_source_info()

    def parse_content_to_nodes(self, allow_section_headings: bool = False) -> list[Node]:
        """Sphinx >= 7.4 parses the content here; a generated description builds it."""
        if self.generated is not None:
            return self.generated_content()
        return super().parse_content_to_nodes(allow_section_headings)

    def generated_content(self) -> list[Node]:
        assert self.generated is not None
        result = self.generated.content()
        # Where a parse of the content would have left the document: at no line (its end).
        self.state.document.note_source(None, None)  # type: ignore[arg-type]  # what docutils passes at the end
        return result

    def transform_content(self, contentnode: addnodes.desc_content) -> None:
        """Before Sphinx 7.4 the content is parsed before this is called, so a generated
        description builds its content here, first."""
        if self.generated is not None and not _PARSES_CONTENT_AT_ITS_OFFSET:
            contentnode[0:0] = self.generated_content()

    def inline_option_text(self, text: str, lineno: int) -> tuple[list[Node], list[Node]]:
        """Inline markup of an option (the deprecation reason): the document's own markup, or,
        in a generated description, reST like the rest of the doc comment."""
        if self.generated is not None:
            return self.generated.inline(text, lineno)
        return cast("tuple[list[Node], list[Node]]", self.state.inline_text(text, lineno))

    def current_interface(self) -> str | None:
        return cast("str | None", self.env.ref_context.get(_CURRENT))

    def full_name(self, sig: str) -> str:
        interface = self.current_interface()
        return f"{interface}.{sig}" if interface else sig

    def badges(self) -> list[Node]:
        result: list[Node] = []
        if "since" in self.options:
            result.append(badge(_("Since %s") % self.options["since"], "since"))
        if "deprecated" in self.options:
            result.append(badge(_("deprecated"), "deprecated"))
        platforms = self.options.get("platform")
        if platforms and platforms != ALL_PLATFORMS:
            result.append(badge(_("%s only") % platform_label(platforms), "platform"))
        return result

    @staticmethod
    def append_badges(parent: Element, badges: list[Node]) -> None:
        for item in badges:
            parent += addnodes.desc_sig_space()
            parent += item

    def index_text(self, name: str) -> str:
        raise NotImplementedError

    def add_target_and_index(self, name: str, sig: str, signode: desc_signature) -> None:
        document = self.state.document
        interface = self.current_interface() if self.objtype != "interface" else None
        problems = name_problems(self.objtype, name, interface)
        for code, message in problems:
            warn(code, message, signode)
        # The id is made by make_id, which keeps [A-Za-z0-9._-] only: names are hostile (docutils
        # writes every id but the first unescaped, so a raw name could add attributes to the page).
        node_id = make_id(self.env, document, "dbus", name)
        signode["ids"].append(node_id)
        valid = not problems and (interface is None or interface_name_error(interface) is None)
        if valid and name not in document.ids and name != node_id:
            # QEMU's anchor, the bare full name, so that old links keep working.  Only a valid
            # name is one: it holds nothing but [A-Za-z0-9_.].
            signode["ids"].append(name)
        document.note_explicit_target(signode)
        domain = cast("DBusDomain", self.env.get_domain("dbus"))
        domain.note_object(name, self.objtype, node_id, signode)
        if "noindexentry" not in self.options and "no-index-entry" not in self.options:
            self.indexnode["entries"].append(("single", self.index_text(name), node_id, "", None))

    def _object_hierarchy_parts(self, sig_node: desc_signature) -> tuple[str, ...]:
        fullname = sig_node.get("fullname", "")
        interface = self.current_interface()
        if interface and fullname.startswith(interface + "."):
            return (interface, fullname[len(interface) + 1 :])
        return (fullname,)

    def _toc_entry_name(self, sig_node: desc_signature) -> str:
        parts: tuple[str, ...] = tuple(sig_node.get("_toc_parts", ()))
        if not parts or not self.config.dbus_toc_members:
            return ""
        if self.config.toc_object_entries_show_parents == "all":
            return ".".join(parts)
        return str(parts[-1])

    def deprecation_note(self) -> list[Node]:
        reason = self.options.get("deprecated")
        if not reason:
            return []
        text_nodes, messages = self.inline_option_text(reason, self.lineno)
        note = nodes.admonition("", classes=["dbus-deprecated"])
        note += nodes.title(_("Deprecated"), _("Deprecated"))
        note += nodes.paragraph("", "", *text_nodes)
        return [note, *messages]


class DBusInterface(DBusObject):
    """``.. dbus:interface:: org.qemu.Display1.Console``.  Like QEMU's, it opens a section titled
    "<name> interface" (so ``.. contents::`` lists interfaces), unless ``:no-section:``."""

    option_spec: ClassVar[dict[str, Any]] = {
        **DBusObject.option_spec,
        "stability": directives.unchanged_required,
        "implementers": roles_option,
        "callers": roles_option,
        "connection": lambda argument: directives.choice(argument, ("bus", "peer-to-peer")),
        "bus-name": directives.unchanged_required,
        "object-path": directives.unchanged_required,
        "no-section": directives.flag,
    }

    def handle_signature(self, sig: str, signode: desc_signature) -> str:
        signode["fullname"] = sig
        signode += addnodes.desc_annotation("interface ", "interface ")
        signode += addnodes.desc_name(sig, sig)
        badges = self.badges()
        if "stability" in self.options:
            badges.append(badge(self.options["stability"], "stability"))
        self.append_badges(signode, badges)
        return sig

    def index_text(self, name: str) -> str:
        return _("%s (D-Bus interface)") % name

    def _object_hierarchy_parts(self, sig_node: desc_signature) -> tuple[str, ...]:
        return (sig_node.get("fullname", ""),)

    def _toc_entry_name(self, sig_node: desc_signature) -> str:
        if "no-section" not in self.options:
            return ""  # the section title is the entry
        parts: tuple[str, ...] = tuple(sig_node.get("_toc_parts", ()))
        return parts[-1] if parts else ""

    def before_content(self) -> None:
        self._previous = self.env.ref_context.get(_CURRENT)
        if self.names:
            self.env.ref_context[_CURRENT] = self.names[0]

    def after_content(self) -> None:
        if self._previous is None:
            self.env.ref_context.pop(_CURRENT, None)
        else:
            self.env.ref_context[_CURRENT] = self._previous

    def transform_content(self, contentnode: addnodes.desc_content) -> None:
        super().transform_content(contentnode)
        fields = nodes.field_list(classes=["dbus-metadata"])
        connection = self.options.get("connection")
        if connection == "peer-to-peer":
            fields += _text_field(
                _("Connection"),
                _(
                    "peer-to-peer: a private connection whose socket one side hands to the other; no bus name, no bus policy"
                ),
            )
        elif connection == "bus" or "bus-name" in self.options:
            bus_name = self.options.get("bus-name")
            if bus_name:
                fields += _field(_("Bus name"), nodes.literal(bus_name, bus_name))
            else:
                fields += _text_field(_("Connection"), _("the bus; callers address the implementer by its unique name"))
        if "object-path" in self.options:
            path = self.options["object-path"]
            fields += _field(_("Object path"), nodes.literal(path, path))
        for option, label in (("implementers", _("Implemented by")), ("callers", _("Called by"))):
            if option in self.options:
                fields += _field(label, *_role_nodes(self.options[option]))
        stability = self.options.get("stability")
        if stability in _STABILITY:
            fields += _text_field(_("Stability"), _STABILITY[stability])
        # The one-line summary of a doc comment leads; the metadata follows it.
        first = contentnode.children[0] if contentnode.children else None
        lead = 1 if isinstance(first, Element) and "dbus-short" in first["classes"] else 0
        contentnode[lead:lead] = [*self.deprecation_note(), *([fields] if len(fields) else [])]

    def run(self) -> list[Node]:
        result = super().run()
        if "no-section" in self.options or not self.names:
            return result
        name = self.names[0]
        document = self.state.document
        section = nodes.section(ids=[make_id(self.env, document, "dbus-interface", name)])
        if interface_name_error(name) is None and name + "-section" not in document.ids:
            section["ids"].append(name + "-section")  # QEMU's section anchor, for valid names only
        document.set_id(section)
        title = _("%s interface") % name
        section += nodes.title(title, title)
        section.extend(result[1:])
        self.set_source_info(section)
        return [result[0], section]


_STABILITY = {
    "stable": _("stable: changes are compatible; an incompatible change needs a new interface version"),
    "unstable": _("unstable: may change incompatibly in any release"),
}


def _role_nodes(roles: tuple[str, ...]) -> list[Node]:
    result: list[Node] = []
    for index, role in enumerate(roles):
        if index:
            result.append(nodes.Text("; "))
        result.append(nodes.strong(role, role))
        if role in ROLE_DESCRIPTIONS:
            result.append(nodes.Text(f" ({ROLE_DESCRIPTIONS[role]})"))
    return result


class DBusMember(DBusObject):
    def insert_fields(self, contentnode: addnodes.desc_content, fields: nodes.field_list, *, first: bool) -> None:
        """The deprecation note goes first; the fields that come from options join the content's
        own field list (before or after its fields), or follow the description when it has
        none."""
        contentnode[0:0] = self.deprecation_note()
        if not len(fields):
            return
        for child in contentnode.children:
            if isinstance(child, nodes.field_list):
                if first:
                    child[0:0] = list(fields.children)
                else:
                    child.extend(list(fields.children))
                return
        contentnode += fields

    def handle_signature(self, sig: str, signode: desc_signature) -> str:
        sig = sig.strip()
        if sig.endswith("()"):
            sig = sig[:-2]
        fullname = self.full_name(sig)
        signode["fullname"] = fullname
        self.build_signature(sig, signode)
        return fullname

    def build_signature(self, name: str, signode: desc_signature) -> None:
        raise NotImplementedError


class DBusMethod(DBusMember):
    """``.. dbus:method:: Name`` with ``:arg TYPE NAME:`` and ``:ret TYPE NAME:`` fields.  When
    some args exist on one platform only (``:arg-unix h fd:``, ``:arg-windows ay socket:``), the
    method gets one signature line per platform, each labelled, instead of a merged one."""

    option_spec: ClassVar[dict[str, Any]] = {
        **DBusObject.option_spec,
        "noreply": directives.flag,
    }
    doc_field_types: list[Field] = _arg_fields("method")
    keyword = "method"

    def index_text(self, name: str) -> str:
        interface, _dot, member = name.rpartition(".")
        return _("%s() (%s method)") % (member, interface) if interface else _("%s() (D-Bus method)") % name

    def extra_badges(self) -> list[Node]:
        return [badge(_("no reply"), "noreply")] if "noreply" in self.options else []

    def variants(self) -> list[tuple[str, list[SignatureArg]]]:
        """``(label, args)`` per distinct arg list: one unlabelled entry when no arg is
        platform-specific, else one per group of platforms sharing an arg list."""
        args = list(self.generated.args) if self.generated is not None else signature_args(self.content)
        if all(arg.platform is None for arg in args):
            return [("", args)]
        platforms = sorted(self.options.get("platform") or PLATFORMS)
        groups: dict[tuple[SignatureArg, ...], list[str]] = {}
        for platform in platforms:
            selected = tuple(arg for arg in args if arg.platform in (None, platform))
            groups.setdefault(selected, []).append(platform)
        if len(groups) == 1:
            return [("", list(next(iter(groups))))]
        return [(platform_label(frozenset(names)) or ", ".join(names), list(group)) for group, names in groups.items()]

    def build_signature(self, name: str, signode: desc_signature) -> None:
        variants = self.variants()
        badges = self.badges() + self.extra_badges()
        if len(variants) == 1:
            self.signature_line(signode, name, variants[0][1])
            self.append_badges(signode, badges)
            return
        signode["is_multiline"] = True
        for index, (label, args) in enumerate(variants):
            line = addnodes.desc_signature_line()
            line += badge(label, "platform-variant")
            line += addnodes.desc_sig_space()
            self.signature_line(line, name, args)
            if index == 0:
                line["add_permalink"] = True
                self.append_badges(line, badges)
            signode += line

    def signature_line(self, parent: Element, name: str, args: list[SignatureArg]) -> None:
        parent += addnodes.desc_annotation(f"{self.keyword} ", f"{self.keyword} ")
        parent += addnodes.desc_name(name, name)
        parent += _parameter_list(arg for arg in args if arg.direction == "arg")
        if self.keyword == "method" and "noreply" not in self.options:
            returns = addnodes.desc_returns()
            returns += _parameter_list(arg for arg in args if arg.direction == "ret")
            parent += returns

    def transform_content(self, contentnode: addnodes.desc_content) -> None:
        super().transform_content(contentnode)
        self.warn_fields_left_as_text(contentnode)
        fields = nodes.field_list()
        if "noreply" in self.options:
            fields += _text_field(
                _("Reply"),
                _(
                    "none: the method is annotated org.freedesktop.DBus.Method.NoReply, so callers "
                    "send it without waiting for a reply and never learn about errors"
                ),
            )
        self.insert_fields(contentnode, fields, first=False)

    def warn_fields_left_as_text(self, contentnode: addnodes.desc_content) -> None:
        """The signature comes from the ``:arg:`` and ``:ret:`` lines of the content, read as
        text; when the parser did not make them a field list (MyST without its ``fieldlist``
        extension makes them a paragraph), the page would show them as raw text under a correct
        signature, and ``-W`` would pass.  One warning, at the first such line, says why."""
        lines = [index for index, line in enumerate(self.content) if _ARG_FIELD.match(line)]
        if not lines:
            return
        for field_list in contentnode.findall(nodes.field_list):
            for name in field_list.findall(nodes.field_name):
                if re.match(r"(arg|ret)\b", name.astext()):
                    return
        source, offset = self.content.items[lines[0]]
        myst = type(self.state).__module__.startswith("myst_parser")
        # MyST numbers the content's lines from its first; reST (and generated text) from the
        # start of the file.
        line = self.lineno + self.content_offset + lines[0] + 1 if myst else int(offset) + 1
        fix = (
            'MyST parses field lists only with its fieldlist extension: add myst_enable_extensions = ["fieldlist"] to conf.py'
            if myst
            else "a field list needs a blank line before it and each field at the start of a line"
        )
        warn(
            "field-list",
            f"the :arg:/:ret: fields of {self.keyword} {self.names[0] if self.names else ''} are shown as plain text; {fix}",
            f"{source}:{line}",
        )


def _parameter_list(args: Iterable[SignatureArg]) -> addnodes.desc_parameterlist:
    params = addnodes.desc_parameterlist()
    for arg in args:
        param = addnodes.desc_parameter()
        if arg.type:
            param += addnodes.desc_sig_keyword_type(arg.type, arg.type)
            param += addnodes.desc_sig_space()
        param += addnodes.desc_sig_name(arg.name, arg.name)
        params += param
    return params


class DBusSignal(DBusMethod):
    """``.. dbus:signal:: Name`` with ``:arg TYPE NAME:`` fields."""

    option_spec: ClassVar[dict[str, Any]] = {**DBusObject.option_spec}
    doc_field_types: list[Field] = _arg_fields("signal")
    keyword = "signal"

    def index_text(self, name: str) -> str:
        interface, _dot, member = name.rpartition(".")
        return _("%s() (%s signal)") % (member, interface) if interface else _("%s() (D-Bus signal)") % name

    def extra_badges(self) -> list[Node]:
        return []


_ACCESS = (
    ("readonly", _("read-only")),
    ("writeonly", _("write-only")),
    ("readwrite", _("read & write")),
)


class DBusProperty(DBusMember):
    """``.. dbus:property:: Name`` with ``:type:``, ``:readonly:``/``:writeonly:``/``:readwrite:``
    and ``:emits-changed:`` as in QEMU's markup."""

    option_spec: ClassVar[dict[str, Any]] = {
        **DBusObject.option_spec,
        "type": directives.unchanged,
        "readonly": directives.flag,
        "writeonly": directives.flag,
        "readwrite": directives.flag,
        "emits-changed": emits_option,
    }

    def index_text(self, name: str) -> str:
        interface, _dot, member = name.rpartition(".")
        return _("%s (%s property)") % (member, interface) if interface else _("%s (D-Bus property)") % name

    def build_signature(self, name: str, signode: desc_signature) -> None:
        signode += addnodes.desc_annotation("property ", "property ")
        signode += addnodes.desc_name(name, name)
        code = (self.options.get("type") or "").strip()
        if code:
            signode += addnodes.desc_sig_punctuation(":", ":")
            signode += addnodes.desc_sig_space()
            signode += addnodes.desc_sig_keyword_type(code, code)
        self.append_badges(signode, self.badges())

    def transform_content(self, contentnode: addnodes.desc_content) -> None:
        super().transform_content(contentnode)
        fields = nodes.field_list()
        code = (self.options.get("type") or "").strip()
        if code:
            fields += _field(_("Type"), *type_nodes(code))
        for option, text in _ACCESS:
            if option in self.options:
                fields += _text_field(_("Access"), text)
                break
        emits = self.options.get("emits-changed")
        if isinstance(emits, EmitsChanged):
            fields += _text_field(_("Change signal"), f"{emits.value}: {emits.explanation}")
        self.insert_fields(contentnode, fields, first=True)


# --- cross-references ------------------------------------------------------------------------


class DBusXRefRole(XRefRole):
    """``:dbus:meth:`Press```, ``:dbus:meth:`~org.qemu.Display1.Mouse.Press``` (shown as
    "Press"), ``:dbus:meth:`.Press``` (current interface first, then any unique match)."""

    def process_link(
        self, env: BuildEnvironment, refnode: Element, has_explicit_title: bool, title: str, target: str
    ) -> tuple[str, str]:
        refnode[_CURRENT] = env.ref_context.get(_CURRENT)
        target = target.strip().lstrip("~")
        if target.endswith("()"):
            target = target[:-2]
        if not has_explicit_title:
            title = display_text(target, None, title.lstrip().startswith("~"))
        return title, target


# --- the index -------------------------------------------------------------------------------


class DBusIndex(Index):
    """The D-Bus index: every interface, grouped by the first letter after the common prefixes
    (``dbus_index_common_prefix``), with its members under it."""

    name = "dbusindex"
    localname = _("D-Bus Interfaces Index")
    shortname = _("dbus")

    def generate(self, docnames: Iterable[str] | None = None) -> tuple[list[tuple[str, list[IndexEntry]]], bool]:
        domain = cast("DBusDomain", self.domain)
        wanted = set(docnames) if docnames else None
        prefixes = common_prefixes(domain.env.config)
        members: dict[str, list[tuple[str, ObjectEntry]]] = {}
        for name, entry in domain.objects.items():
            if entry.objtype != "interface":
                interface, _dot, member = name.rpartition(".")
                members.setdefault(interface, []).append((member, entry))
        content: dict[str, list[IndexEntry]] = {}
        for name, entry in sorted(domain.objects.items(), key=lambda item: item[0].lower()):
            if entry.objtype != "interface" or (wanted is not None and entry.docname not in wanted):
                continue
            short = next((name[len(p) :] for p in prefixes if name.startswith(p) and len(name) > len(p)), name)
            children = sorted(members.get(name, ()), key=lambda item: item[0].lower())
            entries = content.setdefault(_index_letter(short), [])
            entries.append(IndexEntry(name, 1 if children else 0, entry.docname, entry.node_id, "", "", ""))
            for member, child in children:
                entries.append(IndexEntry(member, 2, child.docname, child.node_id, child.objtype, "", ""))
        return sorted(content.items()), True


def _index_letter(name: str) -> str:
    """The group of a name in the index.  Sphinx's template writes the group into an id and a
    link without escaping it, so a name that does not start with [A-Za-z0-9_] (an invalid one)
    goes under "Symbols", as in Sphinx's general index."""
    first = name[:1]
    return first.upper() if first.isascii() and (first.isalnum() or first == "_") else _("Symbols")


# --- the domain ------------------------------------------------------------------------------


class DBusDomain(Domain):
    """The D-Bus domain.  ``data["objects"]`` maps full names to `ObjectEntry`;
    ``data["documents"]`` maps each document to the names it described, so `clear_doc` and
    `merge_domaindata` touch only what one document owns."""

    name = "dbus"
    label = "D-Bus"
    object_types: ClassVar[dict[str, ObjType]] = {
        "interface": ObjType(_("interface"), "iface"),
        "method": ObjType(_("method"), "meth"),
        "signal": ObjType(_("signal"), "sig"),
        "property": ObjType(_("property"), "prop"),
    }
    directives: ClassVar[dict[str, type[Any]]] = {
        "interface": DBusInterface,
        "method": DBusMethod,
        "signal": DBusSignal,
        "property": DBusProperty,
    }
    roles: ClassVar[dict[str, Any]] = {role: DBusXRefRole(warn_dangling=True) for role in ROLE_KINDS}
    initial_data: ClassVar[dict[str, Any]] = {"objects": {}, "shadowed": {}, "documents": {}, "scans": {}}
    indices: ClassVar[list[type[Index]]] = [DBusIndex]
    data_version = 1

    _lookup: tuple[dict[str, str], dict[str, tuple[str, ...]]] | None = None

    @property
    def objects(self) -> dict[str, ObjectEntry]:
        return cast("dict[str, ObjectEntry]", self.data.setdefault("objects", {}))

    @property
    def documents(self) -> dict[str, list[str]]:
        return cast("dict[str, list[str]]", self.data.setdefault("documents", {}))

    @property
    def scans(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        """Documents that listed a registry folder (``dbus-registry``, or a ``dbus-interface``
        that had to search it): folder and file names, to re-read them when a file is added."""
        return cast("dict[str, tuple[str, tuple[str, ...]]]", self.data.setdefault("scans", {}))

    def _changed(self) -> None:
        self._lookup = None

    def note_object(self, name: str, objtype: str, node_id: str, location: Element | None = None) -> None:
        """Record an object; a second description of the same full name warns with both places."""
        where = (get_node_location(location) if location is not None else None) or self.env.docname
        self.documents.setdefault(self.env.docname, []).append(name)
        self._store(name, ObjectEntry(self.env.docname, node_id, objtype, where), location, frozenset())

    def _store(self, name: str, entry: ObjectEntry, location: Element | str | None, batch: Set[str]) -> None:
        """Add ``entry``.  Of several descriptions of one name, links go to the one in the first
        document by name, so serial and parallel builds agree whatever the reading order; the
        others are kept aside so that removing the first one brings the next one back.  A
        conflict with an entry of ``batch`` (documents read by the same parallel worker) was
        already reported by that worker."""
        other = self.objects.get(name)
        if other is None:
            self.objects[name] = entry
            self._changed()
            return
        # The description in the first document by name is kept (and linked to); say so in the
        # same words whichever of the two was read first.
        kept, extra = (other, entry) if other.docname <= entry.docname else (entry, other)
        if other.docname not in batch:
            warn(
                "duplicate-object",
                f"duplicate description of D-Bus {entry.objtype} {name} in document {extra.docname!r}; "
                f"also described in document {kept.docname!r} at {kept.location}",
                location if extra is entry and location is not None else extra.location,
            )
        self.shadowed.setdefault(name, []).append(extra)
        if kept is not other:
            self.objects[name] = kept
            self._changed()

    @property
    def shadowed(self) -> dict[str, list[ObjectEntry]]:
        """Second and later descriptions of a name (after a duplicate warning)."""
        return cast("dict[str, list[ObjectEntry]]", self.data.setdefault("shadowed", {}))

    def clear_doc(self, docname: str) -> None:
        for name in dict.fromkeys(self.documents.pop(docname, ())):
            rest = sorted((e for e in self.shadowed.pop(name, ()) if e.docname != docname), key=lambda e: e.docname)
            current = self.objects.get(name)
            if current is not None and current.docname == docname:
                if rest:
                    self.objects[name] = rest.pop(0)
                else:
                    del self.objects[name]
            if rest:
                self.shadowed[name] = rest
        self.scans.pop(docname, None)
        self._changed()

    def merge_domaindata(self, docnames: Set[str], otherdata: dict[str, Any]) -> None:
        other_objects: Mapping[str, ObjectEntry] = otherdata.get("objects", {})
        other_shadowed: Mapping[str, list[ObjectEntry]] = otherdata.get("shadowed", {})
        other_documents: Mapping[str, list[str]] = otherdata.get("documents", {})
        for docname in sorted(docnames):
            names = other_documents.get(docname, [])
            self.documents.setdefault(docname, []).extend(names)
            for name in dict.fromkeys(names):
                candidates = [other_objects[name]] if name in other_objects else []
                candidates += other_shadowed.get(name, [])
                for entry in candidates:
                    if entry.docname == docname:
                        self._store(name, entry, entry.location, docnames)
            if docname in otherdata.get("scans", {}):
                self.scans[docname] = otherdata["scans"][docname]
        self._changed()

    def lookup_tables(self) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
        """Full name → kind, and last name element → full names, built once per change."""
        if self._lookup is None:
            kinds = {name: entry.objtype for name, entry in self.objects.items()}
            self._lookup = (kinds, suffix_index(kinds))
        return self._lookup

    def resolve_target(self, target: str, kind: str, interface: str | None) -> Resolution:
        kinds, suffixes = self.lookup_tables()
        return resolve(target, kind, interface, kinds, suffixes)

    def _refnode(self, builder: Builder, fromdocname: str, name: str, contnode: Element) -> nodes.reference:
        entry = self.objects[name]
        return make_refnode(builder, fromdocname, entry.docname, entry.node_id, contnode, name)

    def resolve_xref(  # type: ignore[override]
        self,
        env: BuildEnvironment,
        fromdocname: str,
        builder: Builder,
        typ: str,
        target: str,
        node: pending_xref,
        contnode: Element,
    ) -> Element | None:
        kind = ROLE_KINDS.get(typ)
        if kind is None:
            return None
        result = self.resolve_target(target, kind, node.get(_CURRENT))
        if result.name is None:
            # Not rendered here: intersphinx, then the registry (external.py), may know it.
            return None
        return self._refnode(builder, fromdocname, result.name, contnode)

    def _registry_resolution(self, target: str, kind: str, interface: str | None) -> tuple[Resolution, str] | None:
        """``target`` resolved among the objects of the registry in use (the project's own
        objects aside), with the URL of its published page ("" when there is none)."""
        folder = registry_in_use(self.env.config)
        if folder is None:
            return None
        index = registry_index(folder)
        result = resolve(target, kind, interface, index.kinds, index.suffixes)
        url = self.env.config.dbus_registry_url
        page = index.page(result.name) if result.name else None
        return result, f"{url.rstrip('/')}/{page}.html#{result.name}" if url and page else ""

    def registry_reference(self, node: pending_xref, contnode: Element) -> Element | None:
        """A reference to a registry object the project does not render (and no intersphinx
        inventory has): a link to its page of the registry's published documentation
        (``dbus_registry_url``), else the code text alone.  Never a warning: the project chose
        not to render it.  None for anything else, and Sphinx then calls warn_missing_reference."""
        kind = ROLE_KINDS.get(node["reftype"])
        if kind is None:
            return None
        found = self._registry_resolution(node["reftarget"], kind, node.get(_CURRENT))
        if found is None or found[0].name is None:
            return None
        resolution, url = found
        if not url:
            return contnode
        reference = nodes.reference("", "", internal=False, refuri=url, reftitle=resolution.name)
        reference += contnode
        return reference

    def resolve_any_xref(
        self,
        env: BuildEnvironment,
        fromdocname: str,
        builder: Builder,
        target: str,
        node: pending_xref,
        contnode: Element,
    ) -> list[tuple[str, nodes.reference]]:
        found: dict[str, str] = {}
        for kind in KINDS:
            result = self.resolve_target(target.lstrip("~"), kind, node.get(_CURRENT))
            if result.name is not None:
                found.setdefault(result.name, kind)
        return [
            (f"dbus:{KIND_ROLES[kind]}", self._refnode(builder, fromdocname, name, contnode))
            for name, kind in found.items()
        ]

    def warn_unresolved(self, node: pending_xref) -> bool:
        """Say why a reference did not resolve, at the reference, as the checker would."""
        role = node["reftype"]
        kind = ROLE_KINDS.get(role)
        if kind is None:
            return False
        if node.get("dbus:optional"):
            return True  # a link that is welcome but not required (the registry table)
        target = node["reftarget"]
        result = self.resolve_target(target, kind, node.get(_CURRENT))
        if result.problem == "unresolved":
            # Nothing of the name here: say what the registry has, if that is closer.
            in_registry = self._registry_resolution(target, kind, node.get(_CURRENT))
            if in_registry is not None and in_registry[0].problem in ("wrong-kind", "ambiguous"):
                result = in_registry[0]
        location = _reference_location(node)
        if result.problem == "wrong-kind":
            warn("R602", f":dbus:{role}: reference to {target!r}, but {result.detail}", location)
        elif result.problem == "ambiguous":
            warn("R603", f"reference to {kind} {target!r} is ambiguous: {result.detail}", location)
        else:
            warn("R601", f"reference to {kind} {target!r} does not resolve", location)
        return True

    def get_objects(self) -> Iterator[tuple[str, str, str, str, str, int]]:
        """Every object by its full name; and, for projects that still link with QEMU's own
        extension (whose roles look members up by their bare names, as its inventory lists
        them), each member whose bare name no other member has, under that name, hidden from
        the search (priority -1).  An ambiguous bare name gets no entry: such a link is better
        unresolved than sent to the wrong member, as QEMU's inventory sends one of the two
        ``Press``."""
        bare: dict[str, list[str]] = {}
        for name, entry in self.objects.items():
            yield (name, name, entry.objtype, entry.docname, entry.node_id, 1)
            if entry.objtype != "interface":
                bare.setdefault(name.rpartition(".")[2], []).append(name)
        for short, names in bare.items():
            if len(names) == 1 and member_name_error(short) is None:
                entry = self.objects[names[0]]
                yield (short, names[0], entry.objtype, entry.docname, entry.node_id, -1)

    def get_full_qualified_name(self, node: Element) -> str | None:
        target = node.get("reftarget")
        interface = node.get(_CURRENT)
        if not target:
            return None
        return target.lstrip(".") if not interface or "." in target.lstrip(".") else f"{interface}.{target}"


def _reference_location(node: pending_xref) -> Element | str:
    """A reference from a doc comment is located at its line and column in the XML, where
    ``qemu-dbus check`` reports it; any other at its node."""
    column = node.get(COLUMN)
    if column and node.source and node.line:
        return f"{node.source}:{node.line}:{column}"
    return node


def warn_missing_reference(app: object, domain: Domain | None, node: pending_xref) -> bool | None:
    """``warn-missing-reference`` handler: replace Sphinx's generic "target not found" (shown
    only with ``-n``) by the domain's located, typed warning (shown always: the role is
    ``warn_dangling``)."""
    if isinstance(domain, DBusDomain):
        return domain.warn_unresolved(node) or None
    return None

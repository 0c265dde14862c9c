"""The model as reStructuredText for the domain's own directives.

Like autodoc, rendering writes reST lines into a `StringList` whose every line carries the XML file
and line it came from; the directive parses it once, so a warning about any of it (a bad role in a
doc comment, a malformed list) points into the XML.  It reuses ``dbus:interface``,
``dbus:method``... rather than building nodes itself, so targets, index entries and references
have one implementation, shared with hand-written markup.

`render_member` is the one place that decides what a member's entry holds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from docutils.statemachine import StringList
from sphinx.directives import ObjectDescription

from ..diagnostics.rules import RULES
from ..model.introspection import (
    ALL_PLATFORMS,
    PLATFORM_LABELS,
    PLATFORMS,
    Access,
    Annotation,
    Arg,
    Direction,
    DocComment,
    Interface,
    Member,
    Method,
    Property,
    Signal,
    platforms_of,
)
from ..model.metadata import NAMESPACE, InterfaceMetadata, interface_metadata, waived_codes, waiver_reason
from ..model.releases import variant_dates
from ..security.deployment import Deployment
from ..security.trust import MemberTrust, ValidationDuty, interface_member_trust, validation_duties

INDENT = "   "
# Sphinx 7.2 renamed :noindex: to :no-index: (the old name still works there, not the new on 5.3).
NO_INDEX = "no-index" if "no-index" in ObjectDescription.option_spec else "noindex"
WAIVE = NAMESPACE + "Waive"
_ACCESS_OPTIONS = {Access.READ: "readonly", Access.WRITE: "writeonly", Access.READWRITE: "readwrite"}
_KIND_ORDER = {"method": 0, "signal": 1, "property": 2}
_INLINE_MARKUP = re.compile(r"([\\*`|_])")
#: The hook "on each member's entry": functions of (writer, interface name, member name, line)
#: that add a block after the member's trust note.  Modules built on this one register here
#: (sphinx/probe.py: what the probe found), so that this module imports none of them.
MEMBER_NOTES: list[Callable[[RestWriter, str, str, int], None]] = []


def escape(text: str) -> str:
    """Plain text (an annotation value) as reST that shows it literally."""
    return _INLINE_MARKUP.sub(r"\\\1", " ".join(text.split()))


def one_line(text: str) -> str:
    return " ".join(text.split())


def _code_point(char: str) -> str:
    return f"<U+{ord(char):04X}>"


def directive_argument(name: str, *, member: bool = False) -> str:
    """A name from XML as the argument of a ``dbus:*`` directive.  That argument is one stripped
    line per object, and a member's trailing ``()`` is dropped, so a name holding a line break
    would become two objects and one with spaces around it a valid name.  What the line cannot
    carry (characters that are not printable, spaces at either end, a member's trailing ``()``,
    a leading ``:``, which would make the line an option, an empty name) is written as code
    points (``A<U+000A>B``, ``<U+0020>A``, ``""``; not as backslash escapes, which
    ``strip_signature_backslash`` would undo): the object keeps one visibly invalid name, which
    the domain warns about like any invalid name.  Valid names are never changed."""
    if (
        name.isprintable()
        and name == name.strip(" ")
        and name
        and not name.startswith(":")
        and not (member and name.endswith("()"))
    ):
        return name
    if not name:
        return '""'
    text = "".join(char if char.isprintable() else _code_point(char) for char in name)
    core = text.strip(" ")
    start = text.index(core) if core else len(text)
    text = _code_point(" ") * start + core + _code_point(" ") * (len(text) - start - len(core))
    if text.startswith(":"):
        text = _code_point(":") + text[1:]
    if member and text.endswith("()"):
        text = text[:-2] + _code_point("(") + _code_point(")")
    return text


class RestWriter:
    """Lines of generated reST, each with the XML path and the line it stands for."""

    def __init__(self, path: str, options: Sequence[str] = ()) -> None:
        self.path = path
        self.lines = StringList()
        self._indent = ""
        self.options = tuple(options)  # added to every directive, e.g. ":no-index:"

    def directive(self, text: str, line: int) -> None:
        self.add(text, line)
        for option in self.options:
            self.add(INDENT + option, line)

    def add(self, text: str, line: int) -> None:
        """Append ``text`` (indented to the current level) as line ``line`` (1-based) of the
        XML file."""
        offset = max(line, 1) - 1
        self.lines.append(self._indent + text if text.strip() else "", self.path, offset)

    def blank(self, line: int) -> None:
        self.add("", line)

    def block(self, text: str, first_line: int) -> None:
        """A multi-line block whose lines follow each other in the XML file."""
        for index, line in enumerate(text.split("\n")):
            self.add(line, first_line + index)

    @contextmanager
    def indented(self) -> Iterator[None]:
        saved = self._indent
        self._indent += INDENT
        try:
            yield
        finally:
            self._indent = saved


# --- interfaces -----------------------------------------------------------------------------


def render_interface(
    interface: Interface, path: str, *, no_index: bool = False, deployment: Deployment | None = None
) -> StringList:
    """An interface and its members as ``dbus:interface`` markup, located in ``path``.  With
    ``no_index``, a copy that creates no targets (the interface is documented elsewhere).  With a
    ``deployment``, each member of a registry interface carries its trust note for it."""
    writer = RestWriter(path, [f":{NO_INDEX}:"] if no_index else ())
    metadata = interface_metadata(interface)
    if not (metadata.implementers and metadata.callers):
        deployment = None  # not registry metadata: nothing to say who talks to whom
    line = interface.location.line
    writer.directive(f".. dbus:interface:: {directive_argument(interface.name)}", line)
    with writer.indented():
        for option, value in _interface_options(interface, metadata):
            writer.add(f":{option}:{' ' + value if value else ''}", line)
        writer.blank(line)
        _doc(writer, interface.doc)
        _design_notes(writer, [("", interface.annotations)], line)
        for group in member_groups(interface):
            trust = interface_member_trust(interface, metadata, group[0].name, deployment) if deployment else None
            render_member(writer, interface, metadata, group, trust)
    writer.blank(line)
    return writer.lines


def _interface_options(interface: Interface, metadata: InterfaceMetadata) -> list[tuple[str, str]]:
    options: list[tuple[str, str]] = []
    since = metadata.since or interface.since
    if since:
        options.append(("since", one_line(since + _variant_dates(variant_dates(interface)))))
    if interface.deprecated:
        options.append(("deprecated", _deprecation(interface.doc)))
    platforms = platforms_of(interface.conditions)
    if platforms != ALL_PLATFORMS:
        options.append(("platform", ", ".join(sorted(platforms)) or "none"))
    if metadata.stability:
        options.append(("stability", metadata.stability))
    if metadata.implementers:
        options.append(("implementers", ", ".join(metadata.implementers)))
    if metadata.callers:
        options.append(("callers", ", ".join(metadata.callers)))
    if metadata.connection:
        options.append(("connection", metadata.connection))
    if metadata.bus_name:
        options.append(("bus-name", metadata.bus_name))
    if metadata.object_path:
        options.append(("object-path", metadata.object_path))
    return options


def _variant_dates(dates: Mapping[str, str]) -> str:
    """`` (Windows: 8.1)``: the platforms that got an item later than its own release."""
    if not dates:
        return ""
    return " (" + ", ".join(f"{PLATFORM_LABELS[p]}: {date}" for p, date in sorted(dates.items())) + ")"


def member_groups(interface: Interface) -> list[list[Member]]:
    """Members by kind (methods, signals, properties, as QEMU's pages list them), each in file
    order; members of the same kind and name in different ``<?if?>`` branches form one group,
    documented once with one signature per platform."""
    groups: dict[tuple[str, str], list[Member]] = {}
    for member in interface.members:
        groups.setdefault((member.kind, member.name), []).append(member)
    return sorted(groups.values(), key=lambda group: _KIND_ORDER[group[0].kind])


def _deprecation(doc: DocComment | None) -> str:
    return one_line(doc.deprecated) if doc and doc.deprecated else ""


def _doc(writer: RestWriter, doc: DocComment | None) -> None:
    if doc is None:
        return
    if doc.short:
        writer.add(".. container:: dbus-short", doc.symbol_line)
        writer.blank(doc.symbol_line)
        writer.add(INDENT + doc.short, doc.symbol_line)
        writer.blank(doc.symbol_line)
    if doc.body.strip():
        writer.block(doc.body, doc.body_line)
        writer.blank(doc.body_line + doc.body.count("\n"))


# --- members --------------------------------------------------------------------------------


def render_member(
    writer: RestWriter,
    interface: Interface,
    metadata: InterfaceMetadata,
    group: Sequence[Member],
    trust: MemberTrust | None = None,
) -> None:
    """One entry for a method, signal or property: its directive and options (since,
    deprecation, platform, no-reply, type, access, change signal), doc comment, args with raw
    and human-readable types, what each receiver must validate (from `validation_duties`), and
    the design notes of its waivers.  ``group`` holds the member's platform branches; their
    args become ``:arg-unix:``/``:arg-windows:`` fields so that each platform keeps its own
    signature.  ``trust`` adds the member's trust note: in which scenarios its messages cross a
    user boundary, between which peers, and who validates which value."""
    first = group[0]
    line = first.location.line
    doc = next((m.doc for m in group if m.doc is not None), None)
    member_platforms = frozenset().union(*(platforms_of(m.conditions) for m in group))
    writer.blank(line)
    writer.directive(f".. dbus:{first.kind}:: {directive_argument(first.name, member=True)}", line)
    with writer.indented():
        since = next((m.since for m in group if m.since), None)
        # A platform form dated later than the interface is there (RegisterListener(ay) when the
        # interface itself came to Windows earlier) says so beside the member's own date.
        interface_dates = variant_dates(interface)
        later = {
            platform: date
            for m in group
            for platform, date in variant_dates(m).items()
            if interface_dates.get(platform) != date
        }
        own = since or metadata.since or interface.since
        if own and ((since and since != (metadata.since or interface.since)) or later):
            writer.add(f":since: {one_line(own + _variant_dates(later))}", line)
        if any(m.deprecated for m in group):
            writer.add(f":deprecated: {_deprecation(doc)}".rstrip(), line)
        if member_platforms != ALL_PLATFORMS:
            writer.add(f":platform: {', '.join(sorted(member_platforms)) or 'none'}", line)
        if isinstance(first, Property):
            writer.add(f":type: {first.type}", line)
            writer.add(f":{_ACCESS_OPTIONS[first.access]}:", line)
            writer.add(f":emits-changed: {first.emits_changed.value}", line)
        if isinstance(first, Method) and any(m.no_reply for m in group if isinstance(m, Method)):
            writer.add(":noreply:", line)
        writer.blank(line)
        _doc(writer, doc)
        notes: list[tuple[str, tuple[Annotation, ...]]] = [("", first.annotations)]
        if isinstance(first, Property):
            _property_validation(writer, validation_duties(metadata, first), line)
        else:
            # The fields of every platform variant, written in the order of the signatures
            # (what all platforms share, then Unix, then Windows) whatever the XML's order.
            fields: list[tuple[int, int, Method | Signal, Arg, str, str, ValidationDuty | None]] = []
            for member in group:
                assert isinstance(member, (Method, Signal))
                duties = {id(duty.item): duty for duty in validation_duties(metadata, member)}
                for index, arg in enumerate(member.args):
                    name = arg.name or f"arg{index}"
                    for platform in _arg_platforms(member, arg, member_platforms):
                        fields.append(
                            (_PLATFORM_ORDER[platform], len(fields), member, arg, name, platform, duties.get(id(arg)))
                        )
                    notes.append((name, arg.annotations))
            described: dict[tuple[str, str, str], str] = {}
            for _order, _index, member, arg, name, platform, duty in sorted(fields, key=lambda f: f[:2]):
                _arg_field(writer, member, arg, name, platform, duty, doc, described)
            writer.blank(line)
        if trust is not None:
            _trust_note(writer, trust, line)
        for note in MEMBER_NOTES:
            note(writer, interface.name, first.name, line)
        _design_notes(writer, notes, line)


def _trust_note(writer: RestWriter, trust: MemberTrust, line: int) -> None:
    """The member's trust note, without the per-value validation notes (shown beside each value)."""
    writer.add(".. container:: dbus-trust", line)
    writer.blank(line)
    with writer.indented():
        writer.add(f"**Trust ({escape(trust.deployment)} deployment):** {escape(trust.summary(notes=False))}", line)
    writer.blank(line)


#: Fields shared by every platform first, then each platform in the order of `PLATFORMS` (the
#: order of a member's signatures).
_PLATFORM_ORDER = {"": 0, **{platform: index + 1 for index, platform in enumerate(PLATFORMS)}}


def _arg_platforms(member: Method | Signal, arg: Arg, member_platforms: frozenset[str]) -> list[str]:
    """The platforms an arg's field is written for: ``[""]`` when it exists wherever its member
    does, else each platform of its own (an ``:arg-unix:`` field, an ``:arg-windows:`` field)."""
    platforms = platforms_of(member.conditions + arg.conditions)
    return [""] if platforms == member_platforms else sorted(platforms, key=_PLATFORM_ORDER.__getitem__)


def _arg_field(
    writer: RestWriter,
    member: Method | Signal,
    arg: Arg,
    name: str,
    platform: str,
    duty: ValidationDuty | None,
    doc: DocComment | None,
    described: dict[tuple[str, str, str], str],
) -> None:
    """One ``:arg:``/``:ret:`` field (``-PLATFORM`` qualified when ``platform`` is given).  The
    description of an arg is written once: a later platform's variant of the same arg, with the
    same description, points back to it (``described``: field, name and description → the
    platform it was first written for), and keeps its own type and validation note."""
    field = "ret" if isinstance(member, Method) and arg.direction is Direction.OUT else "arg"
    source = member.doc or doc
    param = source.param(arg.name) if source is not None and arg.name else None
    text = one_line(param.text) if param else ""
    text_line = param.location.line if param else arg.location.line
    first = described.setdefault((field, name, text), PLATFORM_LABELS.get(platform, "")) if text else ""
    if platform and first and first != PLATFORM_LABELS[platform]:
        text = f"as described for {first}, above."
    qualifier = f"-{platform}" if platform else ""
    writer.add(f":{field}{qualifier} {arg.type} {name}: {text}".rstrip(), text_line)
    if duty is not None and duty.note:
        with writer.indented():
            where = _note_line(arg.annotations, arg.location.line)
            writer.blank(where)
            writer.add(".. container:: dbus-validation", where)
            writer.blank(where)
            with writer.indented():
                writer.add(f"{_validated_by(duty.receivers)} {escape(duty.note)}", where)
            writer.blank(where)


def _validated_by(receivers: Sequence[str]) -> str:
    return f"**Validated by {', '.join(receivers)}:**" if receivers else "**Validation:**"


def _note_line(annotations: tuple[Annotation, ...], default: int) -> int:
    for annotation in annotations:
        if annotation.name == NAMESPACE + "Validate":
            return annotation.location.line
    return default


def _property_validation(writer: RestWriter, duties: list[ValidationDuty], line: int) -> None:
    notes = [duty for duty in duties if duty.note]
    if not notes:
        return
    where = _note_line(notes[0].item.annotations, line)
    flows = "; ".join(
        f"{', '.join(d.receivers) or 'the receiver'} ({'reading' if d.flow == 'property-read' else 'writing'})"
        for d in notes
    )
    writer.add(f":Validated by: {flows}: {escape(notes[0].note or '')}", where)
    writer.blank(where)


def _design_notes(writer: RestWriter, owners: list[tuple[str, tuple[Annotation, ...]]], line: int) -> None:
    """``org.qemu.Registry.Waive`` annotations as a "Design note" admonition: the guideline a
    stable interface keeps breaking, and why."""
    waivers = [(owner, a) for owner, annotations in owners for a in annotations if a.name == WAIVE]
    if not waivers:
        return
    where = waivers[0][1].location.line
    writer.add(".. admonition:: Design note", where)
    writer.add("   :class: dbus-design-note", where)
    writer.blank(where)
    # One line per distinct waiver: args that waive the same codes for the same reason share it.
    grouped: dict[tuple[frozenset[str], str], tuple[list[str], int]] = {}
    for owner, annotation in waivers:
        key = (waived_codes(annotation.value), waiver_reason(annotation.value))
        subjects, _first = grouped.setdefault(key, ([], annotation.location.line))
        if owner:
            subjects.append(owner)
    with writer.indented():
        for (codes, reason), (subjects, first_line) in grouped.items():
            named = ", ".join(f"{code} ({RULES[code].name})" if code in RULES else code for code in sorted(codes))
            subject = ", ".join(f"``{name}``" for name in subjects) + ": " if subjects else ""
            writer.add(f"- {subject}{escape(named)}: {escape(reason)}", first_line)
    writer.blank(line)


def render_file(interfaces: Sequence[Interface], path: str) -> StringList:
    """Every interface of a file, in file order (``dbus-doc``)."""
    lines = StringList()
    for interface in interfaces:
        lines.extend(render_interface(interface, path))
    return lines

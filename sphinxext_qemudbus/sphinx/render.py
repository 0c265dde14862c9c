"""The model as entries for the domain's directives: what each rendered object shows.

An `Entry` is one ``dbus:interface``, ``dbus:method``, ``dbus:signal`` or ``dbus:property``
description: its name as the directive takes it, its options (as reST writes them, converted by
the directive's own option functions), its doc comment (`DocText`, the only text that is parsed:
it is reST), its fields, notes and, for an interface, its members.  `describe` turns entries into
nodes by running the domain's directives on them, so targets, index entries, signatures and
fields have one implementation, shared with hand-written markup; nothing here imports docutils.

Every text from the XML other than doc comments (names, types, annotation values) stays text:
it is never parsed as markup.  Every entry and text carries the XML line it stands for, so a
warning about any of it points into the XML.

`member_entry` is the one place that decides what a member's entry holds; modules built on this
one add notes to it through `MEMBER_NOTES` (``sphinx/probe.py``: what the probe found).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from sphinx.directives import ObjectDescription

from ..check.references import Reference, body_references, param_references, short_references
from ..diagnostics.frozen import record
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
from .domain import SignatureArg

# Sphinx 7.2 renamed :noindex: to :no-index: (the old name still works there, not the new on 5.3).
NO_INDEX = "no-index" if "no-index" in ObjectDescription.option_spec else "noindex"
WAIVE = NAMESPACE + "Waive"
_ACCESS_OPTIONS = {Access.READ: "readonly", Access.WRITE: "writeonly", Access.READWRITE: "readwrite"}
_KIND_ORDER = {"method": 0, "signal": 1, "property": 2}
_INLINE_MARKUP = re.compile(r"([\\*`|_])")

Options = tuple[tuple[str, "str | None"], ...]


def escape(text: str) -> str:
    """Plain text (a rule's documentation) as reST that shows it literally."""
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


def field_word(text: str) -> str:
    """An arg's name or type as one word of its field (``arg TYPE NAME``), which is split at
    whitespace: whitespace and characters that are not printable are written as code points.
    Valid names and types are never changed."""
    if text.isprintable() and not any(char.isspace() for char in text):
        return text
    return "".join(_code_point(char) if char.isspace() or not char.isprintable() else char for char in text)


# --- entries --------------------------------------------------------------------------------


@record(frozen=True)
class DocText:
    """Text of a doc comment, the only reST of an entry: one line (a short description, an
    ``@arg:`` text) or a dedented body, from ``line`` of the XML on, with the position of every
    ``:dbus:*:`` reference in it (found as the checker finds them, so both report a reference at
    the same place)."""

    text: str
    line: int
    references: tuple[Reference, ...] = ()


@record(frozen=True)
class NoteItem:
    """An item of a note's list, all plain text: a first line with an inline literal in it
    (``before``, ``code``, ``after``), a paragraph, and a command shown as a code block."""

    before: str
    code: str
    after: str
    text: str
    command: str
    language: str


@record(frozen=True)
class Note:
    """A note the entry generates: a bold label, then plain text (annotation values), then a
    list of `NoteItem`."""

    label: str
    text: str
    line: int
    items: tuple[NoteItem, ...] = ()


@record(frozen=True)
class Field:
    """A field of the entry's field list: ``arg TYPE NAME`` (and its platform forms) with the
    arg's ``@arg:`` text, or a field of its own with plain text; a validation note may follow."""

    name: str
    line: int
    doc: DocText | None = None
    text: str = ""
    note: Note | None = None


@record(frozen=True)
class DesignNotes:
    """``org.qemu.Registry.Waive`` annotations: one item per distinct waiver, each with the arg
    names it covers and its text."""

    items: tuple[tuple[tuple[str, ...], str, int], ...]
    line: int


@record(frozen=True)
class Entry:
    kind: str  # interface, method, signal, property
    argument: str  # the name, as the directive's argument (`directive_argument`)
    line: int
    options: Options
    short: DocText | None = None
    body: DocText | None = None
    fields: tuple[Field, ...] = ()
    args: tuple[SignatureArg, ...] = ()
    trust: Note | None = None
    #: What the hooks of `MEMBER_NOTES` add after the trust note: the class of its container, the note.
    notes: tuple[tuple[str, Note], ...] = ()
    design: DesignNotes | None = None
    members: tuple[Entry, ...] = ()


#: The hook "on each member's entry": functions of (XML path, interface name, member name, line)
#: that give the notes to show after the member's trust note, each with the class of its
#: container.  Modules built on this one register here (sphinx/probe.py: what the probe found),
#: so that this module imports none of them.
MEMBER_NOTES: list[Callable[[str, str, str, int], Sequence[tuple[str, Note]]]] = []


# --- interfaces -----------------------------------------------------------------------------


def interface_entry(interface: Interface, *, no_index: bool = False, deployment: Deployment | None = None) -> Entry:
    """An interface and its members.  With ``no_index``, a copy that creates no targets (the
    interface is documented elsewhere).  With a ``deployment``, each member of a registry
    interface carries its trust note for it."""
    metadata = interface_metadata(interface)
    if not (metadata.implementers and metadata.callers):
        deployment = None  # not registry metadata: nothing to say who talks to whom
    extra: Options = ((NO_INDEX, None),) if no_index else ()
    members = []
    for group in member_groups(interface):
        trust = interface_member_trust(interface, metadata, group[0].name, deployment) if deployment else None
        members.append(member_entry(interface, metadata, group, trust, extra))
    short, body = _doc_texts(interface.doc)
    line = _line(interface.location.line)
    return Entry(
        "interface",
        directive_argument(interface.name),
        line,
        tuple(_interface_options(interface, metadata)) + extra,
        short,
        body,
        design=_design_notes([("", interface.annotations)], line),
        members=tuple(members),
    )


def file_entries(interfaces: Sequence[Interface]) -> list[Entry]:
    """Every interface of a file, in file order (``dbus-doc``)."""
    return [interface_entry(interface) for interface in interfaces]


def _line(line: int) -> int:
    return max(line, 1)


def _interface_options(interface: Interface, metadata: InterfaceMetadata) -> list[tuple[str, str | None]]:
    options: list[tuple[str, str | None]] = []
    since = metadata.since or interface.since
    if since:
        options.append(("since", one_line(since + _variant_dates(variant_dates(interface)))))
    if interface.deprecated:
        options.append(("deprecated", _deprecation(interface.doc) or None))
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


def _doc_texts(doc: DocComment | None) -> tuple[DocText | None, DocText | None]:
    """A doc comment's short description and body."""
    if doc is None:
        return None, None
    short = DocText(doc.short, _line(doc.symbol_line), tuple(short_references(doc))) if doc.short else None
    text = doc.body
    body = DocText(text, _line(doc.body_line), tuple(body_references(doc))) if text.strip() else None
    return short, body


# --- members --------------------------------------------------------------------------------


def member_entry(
    interface: Interface,
    metadata: InterfaceMetadata,
    group: Sequence[Member],
    trust: MemberTrust | None = None,
    extra: Options = (),
) -> Entry:
    """One entry for a method, signal or property: its options (since, deprecation, platform,
    no-reply, type, access, change signal), doc comment, args with raw and human-readable types,
    what each receiver must validate (from `validation_duties`), and the design notes of its
    waivers.  ``group`` holds the member's platform branches; their args become
    ``arg-unix``/``arg-windows`` fields so that each platform keeps its own signature.
    ``trust`` adds the member's trust note: in which scenarios its messages cross a user
    boundary, between which peers, and who validates which value.  The hooks of `MEMBER_NOTES`
    add theirs after it."""
    first = group[0]
    line = _line(first.location.line)
    doc = next((m.doc for m in group if m.doc is not None), None)
    member_platforms = frozenset().union(*(platforms_of(m.conditions) for m in group))
    options: list[tuple[str, str | None]] = []
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
        options.append(("since", one_line(own + _variant_dates(later))))
    if any(m.deprecated for m in group):
        options.append(("deprecated", _deprecation(doc) or None))
    if member_platforms != ALL_PLATFORMS:
        options.append(("platform", ", ".join(sorted(member_platforms)) or "none"))
    if isinstance(first, Property):
        options.append(("type", first.type))
        options.append((_ACCESS_OPTIONS[first.access], None))
        options.append(("emits-changed", first.emits_changed.value))
    if isinstance(first, Method) and any(m.no_reply for m in group if isinstance(m, Method)):
        options.append(("noreply", None))
    short, body = _doc_texts(doc)
    fields: list[Field] = []
    args: list[SignatureArg] = []
    notes: list[tuple[str, tuple[Annotation, ...]]] = [("", first.annotations)]
    if isinstance(first, Property):
        fields += _property_validation(validation_duties(metadata, first), line)
    else:
        # The fields of every platform variant, in the order of the signatures (what all
        # platforms share, then Unix, then Windows) whatever the XML's order; the signature
        # takes each variant's args in the XML's order, which is the order of the message.
        unsorted: list[tuple[int, int, Method | Signal, Arg, str, str, ValidationDuty | None]] = []
        for member in group:
            assert isinstance(member, (Method, Signal))
            duties = {id(duty.item): duty for duty in validation_duties(metadata, member)}
            for index, arg in enumerate(member.args):
                name = arg.name or f"arg{index}"
                for platform in _arg_platforms(member, arg, member_platforms):
                    direction = _direction(member, arg)
                    args.append(SignatureArg(direction, platform or None, field_word(arg.type), field_word(name)))
                    unsorted.append(
                        (_PLATFORM_ORDER[platform], len(unsorted), member, arg, name, platform, duties.get(id(arg)))
                    )
                notes.append((name, arg.annotations))
        described: dict[tuple[str, str, str], str] = {}
        for _order, _index, member, arg, name, platform, duty in sorted(unsorted, key=lambda f: f[:2]):
            fields.append(_arg_field(member, arg, name, platform, duty, doc, described))
    note = None
    if trust is not None:
        note = Note(f"Trust ({one_line(trust.deployment)} deployment):", one_line(trust.summary(notes=False)), line)
    hooked = tuple(
        found for hook in MEMBER_NOTES for found in hook(first.location.path, interface.name, first.name, line)
    )
    return Entry(
        first.kind,
        directive_argument(first.name, member=True),
        line,
        tuple(options) + extra,
        short,
        body,
        tuple(fields),
        tuple(args),
        note,
        hooked,
        _design_notes(notes, line),
    )


#: Fields shared by every platform first, then each platform in the order of `PLATFORMS` (the
#: order of a member's signatures).
_PLATFORM_ORDER = {"": 0, **{platform: index + 1 for index, platform in enumerate(PLATFORMS)}}


def _arg_platforms(member: Method | Signal, arg: Arg, member_platforms: frozenset[str]) -> list[str]:
    """The platforms an arg's field is written for: ``[""]`` when it exists wherever its member
    does, else each platform of its own (an ``arg-unix`` field, an ``arg-windows`` field)."""
    platforms = platforms_of(member.conditions + arg.conditions)
    return [""] if platforms == member_platforms else sorted(platforms, key=_PLATFORM_ORDER.__getitem__)


def _direction(member: Method | Signal, arg: Arg) -> str:
    return "ret" if isinstance(member, Method) and arg.direction is Direction.OUT else "arg"


def _arg_field(
    member: Method | Signal,
    arg: Arg,
    name: str,
    platform: str,
    duty: ValidationDuty | None,
    doc: DocComment | None,
    described: dict[tuple[str, str, str], str],
) -> Field:
    """One ``arg``/``ret`` field (``-PLATFORM`` qualified when ``platform`` is given).  The
    description of an arg is shown once: a later platform's variant of the same arg, with the
    same description, points back to it (``described``: field, name and description → the
    platform it was first shown for), and keeps its own type and validation note."""
    field = _direction(member, arg)
    source = member.doc or doc
    param = source.param(arg.name) if source is not None and arg.name else None
    text = one_line(param.text) if param else ""
    text_line = _line(param.location.line if param else arg.location.line)
    first = described.setdefault((field, name, text), PLATFORM_LABELS.get(platform, "")) if text else ""
    note = None
    if duty is not None and duty.note:
        note = Note(
            _validated_by(duty.receivers), one_line(duty.note), _line(_note_line(arg.annotations, arg.location.line))
        )
    qualifier = f"-{platform}" if platform else ""
    name_words = f"{field}{qualifier} {field_word(arg.type)} {field_word(name)}"
    if platform and first and first != PLATFORM_LABELS[platform]:
        return Field(name_words, text_line, text=f"as described for {first}, above.", note=note)
    doc_text = DocText(text, text_line, tuple(param_references(param))) if param and text else None
    return Field(name_words, text_line, doc_text, note=note)


def _validated_by(receivers: Sequence[str]) -> str:
    return f"Validated by {', '.join(receivers)}:" if receivers else "Validation:"


def _note_line(annotations: tuple[Annotation, ...], default: int) -> int:
    for annotation in annotations:
        if annotation.name == NAMESPACE + "Validate":
            return annotation.location.line
    return default


def _property_validation(duties: list[ValidationDuty], line: int) -> list[Field]:
    notes = [duty for duty in duties if duty.note]
    if not notes:
        return []
    where = _line(_note_line(notes[0].item.annotations, line))
    flows = "; ".join(
        f"{', '.join(d.receivers) or 'the receiver'} ({'reading' if d.flow == 'property-read' else 'writing'})"
        for d in notes
    )
    return [Field("Validated by", where, text=one_line(f"{flows}: {notes[0].note or ''}"))]


def _design_notes(owners: list[tuple[str, tuple[Annotation, ...]]], line: int) -> DesignNotes | None:
    """``org.qemu.Registry.Waive`` annotations as a "Design note": the guideline a stable
    interface keeps breaking, and why."""
    waivers = [(owner, a) for owner, annotations in owners for a in annotations if a.name == WAIVE]
    if not waivers:
        return None
    # One item per distinct waiver: args that waive the same codes for the same reason share it.
    grouped: dict[tuple[frozenset[str], str], tuple[list[str], int]] = {}
    for owner, annotation in waivers:
        key = (waived_codes(annotation.value), waiver_reason(annotation.value))
        subjects, _first = grouped.setdefault(key, ([], _line(annotation.location.line)))
        if owner:
            subjects.append(owner)
    items = []
    for (codes, reason), (subjects, first_line) in grouped.items():
        named = ", ".join(f"{code} ({RULES[code].name})" if code in RULES else code for code in sorted(codes))
        items.append((tuple(subjects), one_line(f"{named}: {reason}"), first_line))
    return DesignNotes(tuple(items), _line(waivers[0][1].location.line))

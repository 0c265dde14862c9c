"""The rule table: every diagnostic the parser, checker and diff can emit, with a stable code.

Codes are grouped by their letter:

========  ===================================================================
``X``     XML: well-formedness, safety, structure of the introspection format
``S``     the D-Bus specification: names, signatures, attribute values
``P``     the reserved ``org.qemu.`` prefix (``qemu`` profile)
``M``     registry metadata annotations (``qemu`` profile)
``G``     the D-Bus API Design Guidelines
``D``     documentation coverage and doc-comment structure
``R``     references in doc comments
``U``     uniqueness: duplicates across files, members and args
``F``     file layout
``C``     API compatibility (``qemu-dbus diff``)
``L``     live conformance of a running peer (``qemu-dbus conform``; ``L2..``: ``qemu-dbus probe``)
========  ===================================================================

The documentation page that lists the rules is generated from this table, so it cannot drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .diagnostic import Diagnostic, Location, Severity
from .frozen import record

E, W, N = Severity.ERROR, Severity.WARNING, Severity.NOTE

PROFILES = ("qemu", "generic")


@record(frozen=True)
class Rule:
    code: str
    name: str
    severity: Severity
    doc: str
    hint: str = ""
    profiles: tuple[str, ...] = PROFILES
    #: A file that could not be read or parsed: reported and failing whatever ``--select`` and
    #: ``--ignore`` say (a selection must never turn an unchecked file into "no problems").
    fatal: bool = False

    @property
    def group(self) -> str:
        return GROUPS[self.code[0]]


GROUPS: Mapping[str, str] = {
    "X": "XML and file structure",
    "S": "D-Bus specification",
    "P": "Reserved prefix",
    "M": "Registry metadata",
    "G": "API design guidelines",
    "D": "Documentation",
    "R": "References",
    "U": "Duplicates",
    "F": "File layout",
    "C": "API compatibility",
    "L": "Live conformance",
}

_QEMU = ("qemu",)

_TABLE: tuple[Rule, ...] = (
    # --- X: XML ------------------------------------------------------------------------------
    Rule(
        "X001",
        "xml-syntax",
        E,
        "The file is not well-formed XML.  Always reported.",
        "Fix the XML syntax at the reported position.",
        fatal=True,
    ),
    Rule(
        "X002",
        "xml-encoding",
        E,
        "The file is not valid UTF-8, the only encoding D-Bus introspection data uses.  Always reported.",
        "Re-encode the file as UTF-8.",
        fatal=True,
    ),
    Rule(
        "X003",
        "xml-entity",
        E,
        "The file declares or uses an XML entity this tool does not expand: an external entity (it would read "
        "another file), a parameter entity, an entity whose text holds a reference or markup (the way to an "
        "entity-expansion bomb), entities expanding the file beyond the size bound, or a reference to an entity "
        "never declared.  Internal entities of plain text are expanded (X023).  Always reported.",
        "Write the text out instead of the entity.",
        fatal=True,
    ),
    Rule(
        "X004",
        "file-too-large",
        E,
        "The file is larger than the tools read (4 MiB).  Always reported.",
        "Split the file: one interface per file.",
        fatal=True,
    ),
    Rule(
        "X005",
        "empty-file",
        E,
        "The file is empty or holds only whitespace.  Always reported.",
        "Write a <node> element, or delete the file.",
        fatal=True,
    ),
    Rule(
        "X006",
        "unreadable-file",
        E,
        "The file could not be read (permissions, a symbolic link loop, an I/O error).  Always reported; "
        "qemu-dbus check exits with status 2.",
        "Check that the path exists and is readable.",
        fatal=True,
    ),
    Rule(
        "X007",
        "not-a-regular-file",
        E,
        "The path names a FIFO, a device, a socket or a folder: the tools read regular files only (a FIFO "
        "would block them, a device may never end).  Always reported; qemu-dbus check exits with status 2.",
        "Name the regular file to read.",
        fatal=True,
    ),
    Rule(
        "X008",
        "checker-process-died",
        E,
        "The process checking this file died (killed, out of memory, or a crash in a library), so the file "
        "was not checked.  Always reported; qemu-dbus check exits with status 2.",
        "Run again with -j 1 to check the file in the main process; if it dies again, please report it with the file.",
        fatal=True,
    ),
    Rule(
        "X010",
        "unknown-element",
        W,
        "An element that the introspection format does not define (elements in an XML namespace are extensions and are ignored silently).",
        "Remove it, or move it into a namespace of its own.",
    ),
    Rule(
        "X011",
        "unknown-attribute",
        W,
        "An attribute that the introspection format does not define on this element.",
        "Remove the attribute.",
    ),
    Rule(
        "X012",
        "missing-attribute",
        E,
        "A required attribute is missing: name on child node, interface, method, signal, property and annotation; type on arg and property; access on property; value on annotation.",
        "Add the attribute.",
    ),
    Rule(
        "X013",
        "bad-root",
        E,
        "The root element is not <node>, so nothing in the file is checked.  Always reported.",
        "Wrap the interfaces in a <node> element.",
        fatal=True,
    ),
    Rule(
        "X014",
        "unexpected-text",
        W,
        "Text content where the format allows only elements (documentation belongs in comments).",
        "Move the text into a doc comment.",
    ),
    Rule(
        "X015",
        "misplaced-element",
        E,
        "A known element in a place the format does not allow (an <arg> in a <property>, a <method> outside an <interface>).",
        "Move the element to where it belongs.",
    ),
    Rule(
        "X020",
        "unbalanced-conditional",
        E,
        "A conditional processing instruction (<?if?>, <?elseif?>, <?else?>, <?endif?>) without its partner at the same level.",
        "Close every <?if?> with <?endif?> among the same siblings.",
    ),
    Rule(
        "X021",
        "unknown-processing-instruction",
        W,
        "A processing instruction other than the conditionals (<?if?>, <?ifdef?>, <?ifndef?>, <?elseif?>, <?else?>, <?endif?>).  It is ignored, never executed.",
        "Remove it.",
    ),
    Rule(
        "X022",
        "unknown-condition",
        W,
        "A condition this tool cannot evaluate; the guarded items are kept on every platform.",
        "Write conditions as $(env.HOST_OS) == windows or $(env.HOST_OS) != windows.",
    ),
    Rule(
        "X023",
        "entities-expanded",
        N,
        "The file declares internal entities of plain text (as PackageKit's interface files do); they are "
        "expanded, as gdbus-codegen expands them.",
        "Write the text out if the file should read the same in every tool.",
    ),
    Rule(
        "X024",
        "conditions-too-deep",
        W,
        "More than 16 <?if?> tests in force at once (nested blocks and <?elseif?> branches); the tests beyond "
        "the first 16 are not applied, so the items they guard are kept on more platforms.",
        "Flatten the conditionals: QEMU's files test one variable, once.",
    ),
    Rule(
        "X099",
        "internal-error",
        E,
        "The tool failed on this file.  This is a bug: please report it with the file.  Always reported.",
        fatal=True,
    ),
    # --- S: spec ------------------------------------------------------------------------------
    Rule(
        "S101",
        "invalid-interface-name",
        E,
        "Interface names have at least two '.'-separated elements of [A-Za-z_][A-Za-z0-9_]* and at most 255 bytes.",
    ),
    Rule(
        "S102",
        "invalid-member-name",
        E,
        "Method and signal names are [A-Za-z_][A-Za-z0-9_]*, no '.', at most 255 bytes.",
    ),
    Rule(
        "S103",
        "invalid-property-name",
        E,
        'Property names should be valid member names: the spec says other names "should be avoided" and bindings cannot map them.',
    ),
    Rule(
        "S104",
        "invalid-node-name",
        E,
        "A <node> name must be an object path: absolute on the root node, relative on child nodes.",
    ),
    Rule(
        "S105",
        "invalid-signature",
        E,
        "A type attribute that is not a valid D-Bus type signature (grammar, 255-byte length, 32 arrays and 32 structs of nesting, dict entries only in arrays with a basic key, no empty struct).",
    ),
    Rule(
        "S106",
        "not-single-type",
        E,
        "An arg or property type must hold exactly one complete type ('ii' describes two args).",
        "Split it into one arg per complete type, or use a struct '(ii)'.",
    ),
    Rule("S107", "invalid-direction", E, "direction must be 'in' or 'out'.", 'Use direction="in" or direction="out".'),
    Rule(
        "S108",
        "invalid-access",
        E,
        "access must be 'read', 'write' or 'readwrite'.",
        'Use access="read", "write" or "readwrite".',
    ),
    Rule(
        "S109",
        "signal-arg-in",
        E,
        "Signal args are always 'out': a signal arg with direction=\"in\" is invalid.",
        "Remove the direction attribute.",
    ),
    Rule(
        "S110",
        "invalid-annotation-value",
        E,
        "A standard annotation with a value outside its set: Deprecated and Method.NoReply take true|false, Property.EmitsChangedSignal takes true|invalidates|const|false.",
    ),
    Rule(
        "S111",
        "noreply-with-out-args",
        E,
        "A method annotated Method.NoReply has out args, which a caller that asks for no reply can never receive.",
        "Remove the out args or the annotation.",
    ),
    Rule(
        "S112",
        "invalid-annotation-name",
        W,
        "Annotation names follow the interface-name rules (org.freedesktop.DBus.Deprecated).",
        "Use a reversed-domain name.",
    ),
    Rule(
        "S113",
        "misplaced-annotation",
        W,
        "A standard annotation on an element it does not apply to (NoReply on a signal, EmitsChangedSignal on a method).",
    ),
    # --- P: prefix -----------------------------------------------------------------------------
    Rule(
        "P201",
        "outside-reserved-prefix",
        E,
        "Registry interfaces live under the reserved org.qemu. prefix ('org.qemux.Foo' and 'org.qemu' alone are not under it).",
        "Name the interface org.qemu.<Name><version>; to check a project of your own, use --profile generic.",
        _QEMU,
    ),
    Rule(
        "P202",
        "bus-name-outside-prefix",
        E,
        "The registry's bus names are org.qemu or lie under org.qemu.",
        "Use org.qemu or a name under org.qemu.",
        _QEMU,
    ),
    # --- M: registry metadata ------------------------------------------------------------------
    Rule(
        "M301",
        "missing-metadata",
        E,
        "A registry interface lacks a required org.qemu.Registry.* annotation.",
        "Add the annotations it names; qemu-dbus rules M301 lists every key, its values and what it means.",
        _QEMU,
    ),
    Rule(
        "M302",
        "unknown-metadata-key",
        E,
        "An annotation in the org.qemu. namespace that the registry does not define.",
        "Use one of the org.qemu.Registry.* keys that qemu-dbus rules M302 lists.",
        _QEMU,
    ),
    Rule(
        "M303",
        "bad-metadata-value",
        E,
        "A registry annotation with a value outside its allowed set or form.",
        "Give one of the values qemu-dbus rules M303 lists for the key.",
        _QEMU,
    ),
    Rule(
        "M304",
        "misplaced-metadata",
        E,
        "A registry annotation on an element it does not apply to (Validate on an interface, ObjectPath on a method).",
        "Move the annotation to the element the key belongs to.",
        _QEMU,
    ),
    Rule(
        "M305",
        "missing-validation-note",
        W,
        "An arg or property whose data crosses between peers has no org.qemu.Registry.Validate note saying what its receiver must check.",
        'Add <annotation name="org.qemu.Registry.Validate" value="..."/>.',
        _QEMU,
    ),
    Rule(
        "M306",
        "inconsistent-metadata",
        E,
        "Registry annotations that contradict each other (a BusName on a peer-to-peer interface).",
        "",
        _QEMU,
    ),
    Rule(
        "M307",
        "member-older-than-interface",
        W,
        "A member claims to be older (Since) than its interface.",
        "Fix the Since line.",
        _QEMU,
    ),
    Rule(
        "M308",
        "member-without-since",
        E,
        "A registry member (method, signal, property) does not say since which QEMU release it exists, so a view of an older release (qemu-dbus registry --qemu-version, conform --qemu-version) cannot tell whether that release has it.",
        "End its doc comment with a 'Since: X.Y' line: the release that added the member (the interface's own release when it came with it), as verified in QEMU's history and recorded in interfaces/SOURCES.md.",
        _QEMU,
    ),
    Rule(
        "M309",
        "conflicting-since",
        E,
        "An interface's doc comment has a Since: line that differs from its org.qemu.Registry.Since annotation.",
        "Make the two agree (the annotation is what tools read).",
        _QEMU,
    ),
    Rule(
        "M320",
        "kind-contradicts-roles",
        E,
        "An interface's Kind disagrees with its roles: a management interface that QEMU calls or serves, or that "
        "another role than the manager calls; or an interface only the manager calls that is not marked management.",
        "A management interface is the manager's alone (Callers: manager); an interface QEMU and its peers speak is a peer interface.",
        _QEMU,
    ),
    # --- G: guidelines -------------------------------------------------------------------------
    Rule(
        "G401",
        "unversioned-interface",
        W,
        "Interface names carry a major version: a trailing number on an element (org.qemu.Display1.Console).",
        "Append the API version, e.g. Foo1.",
    ),
    Rule(
        "G402",
        "path-not-under-name",
        W,
        "Objects are exported under the path of the versioned name (/org/qemu/Display1/...), never at '/'.",
        "Export the object under the versioned name's path.",
    ),
    Rule(
        "G403",
        "member-not-camel-case",
        W,
        "Method, signal and property names are CamelCase: ^[A-Z][A-Za-z0-9]*$.",
        "Rename the member in CamelCase.",
    ),
    Rule(
        "G404",
        "arg-not-snake-case",
        W,
        "Arg names are lower_snake_case: ^[a-z][a-z0-9_]*$.",
        "Rename the arg in lower_snake_case.",
    ),
    Rule(
        "G405",
        "arg-type-prefix",
        W,
        "Arg names do not encode the type (s_name, str_name, i_count).",
        "Drop the type prefix.",
    ),
    Rule(
        "G406",
        "accessor-shadows-property",
        W,
        "A GetX or SetX method beside a property X duplicates the Properties interface.",
        "Drop the method and use the property.",
    ),
    Rule(
        "G407",
        "changed-signal-shadows-property",
        W,
        "An XChanged signal beside a property X duplicates PropertiesChanged.",
        "Drop the signal; emit PropertiesChanged (EmitsChangedSignal=true).",
    ),
    Rule(
        "G408",
        "added-removed-pair",
        W,
        "An XAdded(o)/XRemoved(o) signal pair re-implements org.freedesktop.DBus.ObjectManager.",
        "Implement ObjectManager instead.",
    ),
    Rule(
        "G409",
        "boolean-arg",
        W,
        "A boolean method arg: an enum (u) can grow a third value, a boolean cannot.",
        "Use a uint32 enum or flags.",
    ),
    Rule(
        "G410",
        "parallel-arrays",
        W,
        "Two or more array args in the same direction of one member: parallel arrays drift out of step.",
        "Use one array of structs a(...).",
    ),
    Rule(
        "G411",
        "length-beside-array",
        W,
        "An integer arg holding a length or count beside an array: D-Bus arrays carry their length.",
        "Remove the length arg.",
    ),
    Rule(
        "G412",
        "status-out-arg",
        W,
        "An out arg reporting success or failure (success, status, ok, error, result): failures are D-Bus errors.",
        "Return a D-Bus error instead.",
    ),
    Rule(
        "G413",
        "done-signal",
        W,
        "A DoneX, XDone or XCompleted signal standing in for a method reply.",
        "Return the result in the method's reply.",
    ),
    # --- D: documentation ----------------------------------------------------------------------
    Rule(
        "D501",
        "undocumented-interface",
        W,
        "An interface without a doc comment (or an empty one).",
        "Add a doc comment before the <interface> element.",
    ),
    Rule(
        "D502",
        "undocumented-member",
        W,
        "A method, signal or property without a doc comment (or an empty one).",
        "Add a doc comment before the element.",
    ),
    Rule(
        "D503",
        "undocumented-arg",
        W,
        "An arg without an '@name:' line of its own in its member's doc comment.",
        "Add '@name: description' to the member's doc comment.",
    ),
    Rule(
        "D504",
        "unnamed-arg",
        W,
        "An arg without a name cannot be documented or referred to.",
        "Give the arg a lower_snake_case name.",
    ),
    Rule(
        "D505",
        "unknown-param",
        W,
        "An '@name:' line naming an arg that the member does not have.",
        "Fix or remove the line.",
    ),
    Rule(
        "D506",
        "orphan-doc-comment",
        W,
        "A doc comment that documents nothing: no element follows it at the same level.",
        "Move it before the element it documents, or delete it.",
    ),
    Rule(
        "D507",
        "doc-symbol-mismatch",
        W,
        "A doc comment whose symbol line does not name the element after it.",
        "Make the first line of the comment the element's name followed by ':'.",
    ),
    Rule("D508", "duplicate-param", W, "An '@name:' line repeated in one doc comment."),
    Rule(
        "D509",
        "bad-since",
        W,
        "A Since value that is not a version number (7.0, 8.2.1).",
        "Write the release, e.g. 'Since: 8.1'.",
    ),
    Rule(
        "D510",
        "params-on-property",
        W,
        "'@name:' lines on a property or interface, which have no args.",
        "Describe the value in the body.",
    ),
    # --- R: references -------------------------------------------------------------------------
    Rule(
        "R601",
        "unresolved-reference",
        E,
        "A :dbus:iface:, :dbus:meth:, :dbus:sig: or :dbus:prop: reference in a doc comment that names nothing among the files checked.",
        "Use the full name (org.qemu.Display1.Console.RegisterListener) or a member of the current interface.",
    ),
    Rule(
        "R602",
        "wrong-kind-reference",
        E,
        "A reference that names an object of another kind (:dbus:meth: naming a property).",
        "Use the role of the object's kind.",
    ),
    Rule(
        "R603",
        "ambiguous-reference",
        E,
        "A relative reference that matches objects in several interfaces.",
        "Use the full name.",
    ),
    Rule(
        "R604",
        "unknown-role",
        W,
        "A :dbus:<role>: that the dbus domain does not define.",
        "Use iface, meth, sig or prop.",
    ),
    Rule(
        "R605",
        "sequence-unknown-member",
        W,
        "A dbus-sequence message names a method, signal or property that the registry does not have.",
        "Use the member's full name (org.qemu.Display1.Console.RegisterListener), or a standard org.freedesktop.DBus member.",
    ),
    Rule(
        "R606",
        "sequence-wrong-direction",
        W,
        "A dbus-sequence message goes where the registry says it cannot: a method call or property access from a role "
        "that does not call the interface, or to one that does not implement it; a signal the other way round.",
        "Swap the participants, or fix the participant's role.",
    ),
    Rule(
        "R607",
        "sequence-unknown-participant",
        W,
        "A dbus-sequence message or note names a participant that no participant line declares.",
        "Declare it first: 'participant ID ROLE label'.",
    ),
    Rule(
        "R608",
        "sequence-syntax",
        W,
        "A dbus-sequence line that is neither a participant, a message, a note nor a comment.",
        "Write 'participant ID ROLE [label]', 'FROM -> TO: NAME [remark]' or 'note FROM[, TO]: text'.",
    ),
    Rule(
        "R609",
        "sequence-participant",
        W,
        "A dbus-sequence participant declared twice, or with a role that is not a registry role.",
        "Give each participant one line and a role: qemu, helper, client, manager or bus (the bus daemon).",
    ),
    # --- U: duplicates -------------------------------------------------------------------------
    Rule(
        "U701",
        "duplicate-interface",
        E,
        "One interface defined twice (in two files or twice in one).",
        "Keep one definition.",
    ),
    Rule(
        "U702",
        "duplicate-member",
        E,
        "Two members of one interface share a name on the same platform.",
        "Rename or remove one; platform variants belong in <?if?>/<?else?> branches.",
    ),
    Rule("U703", "duplicate-arg", E, "Two args of one member share a name on the same platform.", "Rename one."),
    # --- F: file layout -------------------------------------------------------------------------
    Rule(
        "F801",
        "several-interfaces-per-file",
        W,
        "One interface per file, so that a file's history is its interface's history.",
        "Split the file.",
    ),
    Rule(
        "F802", "file-name-mismatch", W, "The file of an interface is named '<interface name>.xml'.", "Rename the file."
    ),
    Rule("F803", "no-interface", W, "The file defines no interface.", ""),
    # --- C: compatibility (qemu-dbus diff) -------------------------------------------------------
    Rule(
        "C001",
        "interface-removed",
        E,
        "An interface was removed: every client of it breaks.",
        "Keep it (deprecated) until a new major version replaces it.",
    ),
    Rule(
        "C002",
        "member-removed",
        E,
        "A method, signal or property was removed.",
        "Deprecate it instead; remove it only in a new interface version.",
    ),
    Rule(
        "C003",
        "arg-added",
        E,
        "An arg was added to a method or signal: existing callers send, or receive, the old signature.",
        "Add a new method (or use a trailing a{sv} options arg in the next version).",
    ),
    Rule("C004", "arg-removed", E, "An arg was removed from a method or signal."),
    Rule("C005", "arg-type-changed", E, "An arg's type changed."),
    Rule("C006", "arg-direction-changed", E, "An arg moved between in and out."),
    Rule("C007", "property-type-changed", E, "A property's type changed."),
    Rule("C008", "property-access-narrowed", E, "A property lost read or write access that clients may use."),
    Rule(
        "C009",
        "noreply-changed",
        E,
        "Method.NoReply was added or removed: callers wait for a reply that never comes, or never read one that does.",
    ),
    Rule(
        "C010",
        "emits-changed-weakened",
        E,
        "Property.EmitsChangedSignal was weakened (true > invalidates > const > false): clients that rely on the signal miss changes.",
    ),
    Rule("C011", "member-kind-changed", E, "A member changed kind (a method became a property)."),
    Rule(
        "C012",
        "arg-moved",
        E,
        "An arg moved to another position among the args of its direction: even when the signature stays the same (two 'u' args swapped), callers now pass each value where the other one was expected.",
    ),
    Rule(
        "C013",
        "stability-withdrawn",
        E,
        "A stable interface was marked unstable.  Its clients rely on the promise it made, so the gate keeps treating it as stable.",
        "Keep it stable; put unstable API in a new interface.",
    ),
    Rule(
        "C101",
        "interface-added",
        W,
        "An interface was added: a client that uses it does not work with the old version (forwards-incompatible).",
    ),
    Rule("C102", "member-added", W, "A method, signal or property was added (forwards-incompatible)."),
    Rule("C103", "property-access-widened", W, "A property gained read or write access (forwards-incompatible)."),
    Rule(
        "C104", "emits-changed-strengthened", W, "Property.EmitsChangedSignal was strengthened (forwards-incompatible)."
    ),
    Rule("C201", "arg-renamed", N, "An arg was renamed; the wire format is unchanged."),
    Rule("C202", "deprecated", N, "An item was deprecated."),
    Rule("C203", "undeprecated", N, "An item is no longer deprecated."),
    Rule("C204", "documentation-changed", N, "Documentation changed."),
    Rule(
        "C301",
        "unstable-change",
        N,
        "An incompatible change to an interface marked unstable in the registry: allowed, reported for review.",
    ),
    Rule(
        "L001",
        "live-member-missing",
        E,
        "A registered method, signal or property is missing from the running peer's object.",
        "Export the member, or fix the registry if the interface never had it.",
    ),
    Rule(
        "L002",
        "live-member-kind",
        E,
        "A member is a method, signal or property on the bus but another kind in the registry.",
    ),
    Rule(
        "L003",
        "live-signature",
        E,
        "A method's in or out args, or a signal's args, have other types on the bus than in the registry.",
        "Make the registry and the implementation agree; an interface's signatures never change once released.",
    ),
    Rule("L004", "live-property-type", E, "A property has another type on the bus than in the registry."),
    Rule("L005", "live-property-access", E, "A property's access (read, write, readwrite) differs from the registry."),
    Rule(
        "L006",
        "live-property-value-type",
        E,
        "A property's value, as Properties.GetAll returns it, has another type than the registry gives "
        "(an implementation that builds its variants by hand, not from the introspection data).",
        "Send the value with the registered type.",
    ),
    Rule(
        "L007",
        "live-message-unknown",
        E,
        "A message names an org.qemu.* interface or member the registry does not have (for the peer's platform), "
        "or a member of another kind than the message treats it as.",
        "Add the member to the registry with its documentation, or stop sending it.",
    ),
    Rule(
        "L008",
        "live-message-signature",
        E,
        "A message's body has another signature than the registry gives: a call's in args, a reply's out args "
        "(matched to its call), a signal's args.",
        "Make the registry and the implementation agree; a released member's signature never changes.",
    ),
    Rule(
        "L009",
        "live-message-path",
        E,
        "A message is sent to or emitted from another object path than the registry's ObjectPath for its interface.",
        "Use the registered object path; peer-to-peer listeners are reached by path alone.",
    ),
    Rule(
        "L010",
        "live-introspection-failed",
        E,
        "An object could not be introspected: no reply, an error reply, or a reply that is not usable introspection XML.",
        "Check the bus address, the peer's bus name and the object path.",
    ),
    Rule(
        "L011",
        "live-message-no-reply-flag",
        E,
        "A call to a method the registry marks org.freedesktop.DBus.Method.NoReply does not carry the "
        "NO_REPLY_EXPECTED flag, so the receiver must answer a call that nobody reads.",
        "Send the call without waiting for a reply (GDBus: no callback).",
    ),
    Rule(
        "L012",
        "live-message-fds",
        E,
        "A message's file descriptors do not match its signature: none passed where the signature has an h, "
        "or some passed where it has none.",
        "Pass exactly the descriptors the h args index (SCM_RIGHTS), and none otherwise.",
    ),
    Rule(
        "L013",
        "live-listener-handshake",
        E,
        "The D-Bus handshake on a listener's peer-to-peer socket did not complete in time or failed.  QEMU is "
        "the authentication server there and waits for it in its main loop.",
        "Answer the client's AUTH on the socket handed over with the registration call.",
    ),
    Rule(
        "L014",
        "live-listener-registration",
        E,
        "Registering a listener (Console.RegisterListener, Audio.RegisterOutListener or RegisterInListener) "
        "failed or was not answered in time.",
    ),
    Rule(
        "L015",
        "live-peer-exited",
        E,
        "The QEMU that conform --launch started exited before the run was over: it crashed, or something it was "
        "sent or shown made it quit.  The message gives its exit status and the last lines it wrote.",
    ),
    Rule(
        "L017",
        "live-unchecked",
        E,
        "The run stopped before it checked everything: the deadline (--deadline), the bound on objects or on the "
        "bytes of paths and replies kept, a message over the bound on values per message, consoles not listened "
        "to (descriptors ran out, or listening ended first), or a connection that ended early.  What was left is "
        "named.",
        "Raise --deadline, or name the objects to check with --object.",
    ),
    Rule(
        "L018",
        "live-message-malformed",
        E,
        "A peer-to-peer connection carried data that is not valid D-Bus (a malformed message, one over the "
        "size limit, descriptors no message claims), more than the run holds at once, a message cut short when "
        "listening ended, or broke while the tool was serving it.",
    ),
    Rule(
        "L101",
        "live-member-unregistered",
        W,
        "The running peer exports a member its interface has not in the registry: undocumented API.",
        "Add it to the registry (with its documentation), or stop exporting it.",
    ),
    Rule(
        "L102",
        "live-interface-unregistered",
        W,
        "The running peer exports an org.qemu.* interface that is not in the registry (for its platform).",
        "Add the interface to the registry.",
    ),
    Rule(
        "L103",
        "live-object-path",
        W,
        "An interface is exported at an object path its registry ObjectPath does not match.",
    ),
    Rule(
        "L104",
        "live-annotation",
        W,
        "Method.NoReply or Property.EmitsChangedSignal, as the running peer introspects it, says otherwise than the registry.",
    ),
    Rule(
        "L105",
        "live-bus-name",
        W,
        "The peer exports an interface but neither owns nor queues for the bus name the registry gives it, "
        "so callers that look for that name do not find it; or the name is one only QEMU holds (org.qemu) and "
        "the peer is merely queued for it, or other connections queue behind it: the owner gets every call, "
        "and the first in the queue takes the name over when the owner leaves.",
        "Request the name (queued, if several peers share it), or fix the registry's BusName; for a name "
        "only QEMU holds, find the other connections and keep them off it (qemu-dbus policy lets only QEMU's "
        "user own it).",
    ),
    Rule(
        "L106",
        "live-property-unread",
        W,
        "Properties.GetAll failed for an interface, or left out a readable property the object declares.",
        "Make every readable property readable through GetAll (a getter that fails drops it).",
    ),
    Rule(
        "L107",
        "live-newer-than-release",
        W,
        "The peer exports or sends an interface or member that the registry dates after the QEMU release "
        "checked (--qemu-version): the peer runs a newer QEMU, or the registry's Since is wrong.",
        "Check against the release the peer runs, or fix the Since line in the registry.",
    ),
    Rule(
        "L110",
        "live-release-unmatched",
        W,
        "Without --qemu-version, conform works out which QEMU releases the peer can be from what it exports "
        "(the registry dates every interface, member and platform variant), and checks it against the newest of "
        "them.  No release has everything this peer exports and lacks: it was checked against the closest one "
        "(the fewest differences), and the message names the two facts that disagree.",
        "Check the registry's Since lines for the items named, or pass --qemu-version to check against a given release.",
    ),
    Rule(
        "L108",
        "live-message-content",
        W,
        "A message's content breaks a rule the registry states about it: a listener Update before any Scanout, or "
        "outside both the latest Scanout and the console's current Width and Height (read on the bus when an Update "
        "does not fit: QEMU sends no Scanout after a mode switch), image data whose length disagrees with stride and height, a stride too short for "
        "the width, audio formats whose sizes do not add up.",
    ),
    Rule(
        "L109",
        "live-error-unregistered",
        W,
        "A call failed with an org.qemu.* error name that the registry does not give.",
        "Document the error name in the registry, or return one it gives.",
    ),
    # --- L2: qemu-dbus probe ---------------------------------------------------------------
    Rule(
        "L201",
        "probe-crash",
        E,
        "qemu-dbus probe: one call that a peer may make (values the registry allows for its types, or a descriptor "
        "it may pass) made QEMU exit: the message gives the exit status or signal, the last lines QEMU wrote (an "
        'assertion), the threshold of a crashing integer ("crashes for every value >= N") and a one-line command '
        "that reproduces it.  Whoever the bus policy lets make this call can take the VM down.",
        "Validate the value in QEMU's handler (report it to QEMU with the command); until then allow the call only "
        "to trusted peers.",
    ),
    Rule(
        "L202",
        "probe-hang",
        E,
        "qemu-dbus probe: after one call QEMU stopped answering for good (a read of VM.Name got no reply within "
        "--hang-timeout) and was killed: its main loop is blocked, the VM is frozen.",
        "Allow the call only to trusted peers; report it to QEMU with the command.",
    ),
    Rule(
        "L203",
        "probe-stall",
        E,
        "qemu-dbus probe: after one call (or one way of answering what QEMU waits for) QEMU answered a read of VM.Name "
        "only after --stall seconds: its main loop, and the VM, stood still meanwhile.",
        "Allow the call only to trusted peers, and serve what QEMU waits for at once.",
    ),
    Rule(
        "L204",
        "probe-contract",
        E,
        "qemu-dbus probe: a call got no reply while QEMU kept answering others, a reply whose signature differs "
        "from the registry's out args, or one over the tool's bound (not read); or QEMU broke a listener connection "
        "(a malformed message on it).",
        "Make the registry and QEMU agree.",
    ),
    Rule(
        "L205",
        "probe-undocumented-error",
        W,
        "qemu-dbus probe: a call failed with an error name that the registry does not give for the member or its "
        "interface.",
        "Document the error name in the member's doc comment.",
    ),
)

RULES: Mapping[str, Rule] = {rule.code: rule for rule in _TABLE}
RULES_BY_NAME: Mapping[str, Rule] = {rule.name: rule for rule in _TABLE}


def diagnostic(code: str, location: Location, message: str, hint: str | None = None) -> Diagnostic:
    """A diagnostic for rule ``code``, with the rule's severity and default hint."""
    rule = RULES[code]
    return Diagnostic(code, rule.severity, location, message, rule.hint if hint is None else hint)


def expand_selection(selectors: Iterable[str]) -> frozenset[str]:
    """Expand ``--select``/``--ignore`` values (codes, code prefixes like ``G4`` or ``D``, or rule
    names) into the set of codes they cover.  Unknown selectors raise ValueError."""
    codes: set[str] = set()
    for raw in selectors:
        for selector in filter(None, (part.strip() for part in raw.split(","))):
            if selector in RULES_BY_NAME:
                codes.add(RULES_BY_NAME[selector].code)
                continue
            matched = {code for code in RULES if code.startswith(selector.upper())}
            if not matched:
                raise ValueError(f"unknown rule code or name: {selector!r}")
            codes |= matched
    return frozenset(codes)

"""Registry metadata: ``org.qemu.Registry.*`` annotations that say who implements an interface, who
calls it, where it lives, how stable it is, and what each receiver must validate.

`KEYS` is the single definition: the checker enforces it and the documentation page is generated
from it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from ..diagnostics.frozen import record
from .introspection import Arg, Interface, Property
from .names import bus_name_error, path_pattern_error

NAMESPACE = "org.qemu.Registry."
ROLES = ("qemu", "helper", "client", "manager")
ROLE_DESCRIPTIONS: Mapping[str, str] = {
    "qemu": "the QEMU process itself",
    "helper": "a helper process QEMU runs beside it (migration state, vhost-user, TPM, slirp, virtiofsd)",
    "client": "a user-interface client attached to QEMU's display (a viewer, a VNC server)",
    "manager": "the management tool that runs the VM (libvirt, a cloud agent)",
}
CONNECTIONS = ("bus", "peer-to-peer")
#: ``peer``: an interface QEMU and its helpers or clients speak to each other (VMState1, the display).
#: ``management``: a back end's interface for the manager (qemu-vnc's Vnc1), never called by QEMU.
KINDS = ("peer", "management")
STABILITIES = ("stable", "unstable")
_VERSION = re.compile(r"[0-9]+\.[0-9]+(\.[0-9]+)?\Z")


def _roles_error(value: str) -> str | None:
    roles = [role.strip() for role in value.split(",")]
    if not all(roles):
        return "an empty role in the list"
    unknown = [role for role in roles if role not in ROLES]
    if unknown:
        return f"unknown role {unknown[0]!r}; roles are {', '.join(ROLES)}"
    if len(set(roles)) != len(roles):
        return "a role is listed twice"
    return None


def _choice_error(choices: tuple[str, ...]) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value in choices else f"expected one of {', '.join(choices)}"

    return check


def _version_error(value: str) -> str | None:
    return None if _VERSION.match(value) else "expected a QEMU version such as 7.0 or 8.2.1"


def _bus_name_value_error(value: str) -> str | None:
    if value.startswith(":"):
        return "a unique name cannot be registry metadata: give the well-known name"
    return bus_name_error(value)


def _text_error(value: str) -> str | None:
    return None if value.strip() else "the note is empty"


@record(frozen=True)
class MetadataKey:
    """One ``org.qemu.Registry.*`` annotation key."""

    key: str
    applies_to: tuple[str, ...]
    required: bool
    value: str
    doc: str
    validate: Callable[[str], str | None]

    @property
    def name(self) -> str:
        return NAMESPACE + self.key


KEYS: tuple[MetadataKey, ...] = (
    MetadataKey(
        "Implementers",
        ("interface",),
        True,
        "comma-separated roles: " + ", ".join(ROLES),
        "Who serves objects with this interface.  Several roles when both sides implement it "
        "(QEMU and the client both implement ``org.qemu.Display1.Clipboard``).",
        _roles_error,
    ),
    MetadataKey(
        "Callers",
        ("interface",),
        True,
        "comma-separated roles",
        "Who calls its methods, reads or writes its properties and receives its signals.  The "
        "policy generator allows exactly these roles to send to the implementers.",
        _roles_error,
    ),
    MetadataKey(
        "Connection",
        ("interface",),
        True,
        " or ".join(CONNECTIONS),
        "``bus``: reached through the VM's private bus.  ``peer-to-peer``: reached over a private "
        "connection whose socket one side hands to the other (a ``Register*Listener`` call); no "
        "bus policy applies to it.",
        _choice_error(CONNECTIONS),
    ),
    MetadataKey(
        "Kind",
        ("interface",),
        True,
        " or ".join(KINDS),
        "``peer``: an interface QEMU and its helpers or clients speak to each other "
        "(``org.qemu.VMState1``, ``org.qemu.Display1.*``).  ``management``: a back end's own "
        "interface for administrators and management tools, which QEMU never calls "
        "(``org.qemu.Vnc1.*``); only the manager calls it.  The checker holds the kind against "
        "``Implementers`` and ``Callers``.",
        _choice_error(KINDS),
    ),
    MetadataKey(
        "BusName",
        ("interface",),
        False,
        "a well-known bus name",
        "The name under which the implementer is reached on the bus (``org.qemu``), when it owns "
        "one.  Only on ``bus`` interfaces; omitted when callers address the implementer by its "
        "unique name.",
        _bus_name_value_error,
    ),
    MetadataKey(
        "ObjectPath",
        ("interface",),
        True,
        "an object path; {name} marks a variable part",
        "Where objects with this interface live: ``/org/qemu/Display1/Console_{id}``.",
        path_pattern_error,
    ),
    MetadataKey(
        "Stability",
        ("interface",),
        True,
        " or ".join(STABILITIES),
        "``stable`` interfaces never break their callers: an incompatible change needs a new "
        "interface version, and ``qemu-dbus diff`` enforces it.  ``unstable`` ones may change.",
        _choice_error(STABILITIES),
    ),
    MetadataKey(
        "Since",
        ("interface", "arg"),
        True,
        "a QEMU version (7.0, 8.2.1)",
        "The QEMU release that first shipped the interface.  Members added later say so with a "
        "``Since:`` line in their doc comment.  Inside an ``<?if?>`` branch it dates that platform's "
        "variant when it came later than the item: among an interface's annotations, after the "
        "interface's own (the D-Bus display exists on Windows since 8.1), or on the arg of a "
        "member's platform form (``RegisterListener(ay)``, Windows, 8.1).  Release views "
        "(``--qemu-version``) leave a variant out of the releases before its date.",
        _version_error,
    ),
    MetadataKey(
        "Validate",
        ("arg", "property"),
        False,
        "text",
        "What the receiver of this value must check before trusting it: sizes, ranges, formats, "
        "the kind of a passed file descriptor.  The receiver of an in-arg is the implementer, of "
        "an out-arg or signal arg the caller, of a property value its reader.  Required on every "
        "arg and property whose type is not ``b``.",
        _text_error,
    ),
    MetadataKey(
        "Waive",
        ("interface", "method", "signal", "property", "arg"),
        False,
        "CODE[,CODE]: reason",
        "Acknowledge a design-guideline finding (``G`` codes) on an interface whose stable API "
        "cannot change, with the reason.  It silences those codes on the element and everything "
        "inside it, and the reason is shown in the documentation.",
        lambda value: (
            None
            if re.match(r"G[0-9]{3}(\s*,\s*G[0-9]{3})*\s*:\s*\S", value)
            else "expected 'G409: reason' (guideline codes only, then a reason)"
        ),
    ),
)
KEYS_BY_NAME: Mapping[str, MetadataKey] = {key.name: key for key in KEYS}


@record(frozen=True)
class InterfaceMetadata:
    """The registry metadata of one interface, as far as it is present and valid."""

    implementers: tuple[str, ...]
    callers: tuple[str, ...]
    connection: str | None
    bus_name: str | None
    object_path: str | None
    stability: str | None
    since: str | None
    kind: str | None = None

    @property
    def peer_to_peer(self) -> bool:
        return self.connection == "peer-to-peer"

    @property
    def stable(self) -> bool:
        return self.stability == "stable"


def _valid(values: Mapping[str, str], key: str) -> str | None:
    value = values.get(NAMESPACE + key)
    if value is None or KEYS_BY_NAME[NAMESPACE + key].validate(value) is not None:
        return None
    return value


def _roles(value: str | None) -> tuple[str, ...]:
    return tuple(role.strip() for role in value.split(",")) if value else ()


def interface_metadata(interface: Interface) -> InterfaceMetadata:
    """Read the metadata of ``interface``; invalid or missing values read as None (the checker
    reports them)."""
    values: dict[str, str] = {}
    for annotation in interface.annotations:
        values.setdefault(annotation.name, annotation.value)  # the first one counts
    return InterfaceMetadata(
        implementers=_roles(_valid(values, "Implementers")),
        callers=_roles(_valid(values, "Callers")),
        connection=_valid(values, "Connection"),
        bus_name=_valid(values, "BusName"),
        object_path=_valid(values, "ObjectPath"),
        stability=_valid(values, "Stability"),
        since=_valid(values, "Since"),
        kind=_valid(values, "Kind"),
    )


VALIDATE = NAMESPACE + "Validate"


def validation_note(item: Arg | Property) -> str | None:
    return item.annotation(VALIDATE)


def waived_codes(annotation_value: str) -> frozenset[str]:
    codes, _, _ = annotation_value.partition(":")
    return frozenset(code.strip() for code in codes.split(",") if code.strip())


def waiver_reason(annotation_value: str) -> str:
    return annotation_value.partition(":")[2].strip()

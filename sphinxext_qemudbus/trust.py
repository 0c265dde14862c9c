"""Trust semantics: who must validate which data.

A bus policy only decides who may talk.  Whatever a peer *receives* from a peer of another trust
level must still be validated by the receiver:

* method in-args are received, and validated, by the implementer;
* method out-args (the reply) and signal args are received by the caller;
* a property value is received by whoever reads it (a caller); a written value by the implementer.

This module derives those duties from the registry metadata; the Sphinx pages and the policy
generator render them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .metadata import InterfaceMetadata, validation_note
from .model import Arg, Direction, Member, Method, Property, Signal


@dataclass(frozen=True, slots=True)
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


def crosses_roles(duty: ValidationDuty) -> bool:
    """Whether a value can travel between two *different* roles (a role trusting itself is moot)."""
    return any(sender != receiver for sender in duty.senders for receiver in duty.receivers)

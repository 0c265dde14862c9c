"""QEMU releases: what a given QEMU exported, according to the registry.

The registry describes one QEMU release, its newest (``interfaces/registry.toml``).  Every
interface says since which release QEMU has it (``org.qemu.Registry.Since``), and every member
added later says so in its doc comment (``Since: 8.1``).  The view of an older release drops
what came after it, so a client of QEMU 7.2 is not told to expect ``Audio.NSamples`` (10.0).
Platform variants are independent of this: project a release view on a platform as usual.

Releases compare as numbers, element by element, a missing element counting as 0: ``7.2`` is
``7.2.0``, older than ``7.10`` and than ``8.0``.
"""

from __future__ import annotations

import re
from dataclasses import replace

from .introspection import Interface

Release = tuple[int, int, int]

_RELEASE = re.compile(r"([0-9]{1,4})\.([0-9]{1,4})(?:\.([0-9]{1,4}))?\Z")


def parse_release(text: str) -> Release | None:
    """``7.2`` → (7, 2, 0), ``8.2.1`` → (8, 2, 1); None for anything that is not a release."""
    match = _RELEASE.match(text.strip())
    if match is None:
        return None
    major, minor, micro = match.groups()
    return int(major), int(minor), int(micro or 0)


def release_text(release: Release) -> str:
    """(7, 2, 0) → ``7.2``; (8, 2, 1) → ``8.2.1``."""
    major, minor, micro = release
    return f"{major}.{minor}.{micro}" if micro else f"{major}.{minor}"


def newer_than(since: str | None, release: Release) -> bool:
    """Whether something that exists since ``since`` came after ``release``.  An unknown or
    invalid ``since`` is not newer (the checker reports it): the view keeps what it cannot date."""
    if since is None:
        return False
    parsed = parse_release(since)
    return parsed is not None and parsed > release


def interface_at_release(interface: Interface, release: Release) -> Interface | None:
    """The interface as QEMU ``release`` exported it: None when it came later, else without the
    members that came later."""
    if newer_than(interface.since, release):
        return None
    members = tuple(member for member in interface.members if not newer_than(member.since, release))
    if len(members) == len(interface.members):
        return interface
    return replace(interface, members=members)

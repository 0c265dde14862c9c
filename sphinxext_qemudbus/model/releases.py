"""QEMU releases: what a given QEMU exported, according to the registry.

The registry describes one QEMU release, its newest (``interfaces/registry.toml``).  Every
interface says since which release QEMU has it (``org.qemu.Registry.Since``), and every member
added later says so in its doc comment (``Since: 8.1``).  The view of an older release drops
what came after it, so a client of QEMU 7.2 is not told to expect ``Audio.NSamples`` (10.0).

A platform variant can be younger than the item it belongs to: QEMU 7.0 had
``Console.RegisterListener(h)`` on Unix, and its Windows form ``RegisterListener(ay)`` came with
8.1, when QEMU first built its D-Bus display for Windows.  The registry says so with an
``org.qemu.Registry.Since`` annotation inside the variant's ``<?if?>`` branch: on the variant's
arg, or among an interface's annotations.  `since_on` reads the date of an item on one platform,
and a release view drops, per platform, what that platform did not have yet (`interface_at_release`).

Releases compare as numbers, element by element, a missing element counting as 0: ``7.2`` is
``7.2.0``, older than ``7.10`` and than ``8.0``.  `previous_release` knows QEMU's sequence of
feature releases, so that "lacks what 8.1 added" reads "8.0 or older".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

from ..diagnostics.diagnostic import Location
from .introspection import (
    ALL_PLATFORMS,
    PLATFORMS,
    Condition,
    Interface,
    Member,
    Method,
    Property,
    Signal,
    platforms_of,
)

Release = tuple[int, int, int]

#: The annotation that dates an interface, or (inside an ``<?if?>`` branch) a platform variant.
SINCE = "org.qemu.Registry.Since"

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


def feature_release(release: Release) -> Release:
    """The feature release a stable release belongs to: (10, 0, 2) → (10, 0, 0).  Stable
    releases fix bugs and add no D-Bus API, so the registry dates everything to X.Y."""
    return (release[0], release[1], 0)


def previous_release(release: Release) -> Release:
    """The feature release before ``release``.  QEMU has made three feature releases a year
    since 4.0, numbered X.0, X.1 and X.2 (the registry dates nothing before 5.0): the release
    before 8.1 is 8.0, the one before 8.0 is 7.2."""
    major, minor, _ = release
    return (major, minor - 1, 0) if minor > 0 else (major - 1, 2, 0)


def newer_than(since: str | None, release: Release) -> bool:
    """Whether something that exists since ``since`` came after ``release``.  An unknown or
    invalid ``since`` is not newer (the checker reports it): the view keeps what it cannot date."""
    if since is None:
        return False
    parsed = parse_release(since)
    return parsed is not None and parsed > release


def newest(dates: Iterable[str | None]) -> str | None:
    """The latest of ``dates`` that is a release (None when none is)."""
    parsed = [(release, text) for text in dates if text and (release := parse_release(text)) is not None]
    return max(parsed)[1] if parsed else None


def since_on(item: Interface | Member, platform: str) -> str | None:
    """Since when ``item`` exists on ``platform``: its own Since, or the later one of the platform
    variant it has there (an ``org.qemu.Registry.Since`` inside an ``<?if?>`` branch that holds on
    ``platform``: among the item's annotations, or on one of its args)."""
    dates = [item.since]
    dates += [a.value for a in item.annotations if a.name == SINCE and _holds(a.conditions, platform)]
    if isinstance(item, (Method, Signal)):
        dates += [arg.annotation(SINCE) for arg in item.args if _holds(arg.conditions, platform)]
    return newest(dates)


def _holds(conditions: tuple[Condition, ...], platform: str) -> bool:
    """Whether a part inside ``<?if?>`` branches is there on ``platform`` (an unconditioned part
    dates the item itself, not a variant)."""
    return bool(conditions) and platform in platforms_of(conditions)


def variant_dates(item: Interface | Member) -> dict[str, str]:
    """Platform → the date of the item's variant there, for the platforms where it is later
    than the item itself (empty for an item without dated variants)."""
    own = parse_release(item.since or "")
    found = {}
    for platform in sorted(platforms_of(item.conditions)):
        date = since_on(item, platform)
        parsed = parse_release(date or "")
        if date is not None and parsed is not None and (own is None or parsed > own):
            found[platform] = date
    return found


def interface_at_release(interface: Interface, release: Release, platform: str | None = None) -> Interface | None:
    """The interface as QEMU ``release`` exported it: None when it came later, else without the
    members that came later.  With ``platform``, the dates are that platform's (`since_on`);
    without, an item some platforms got later is kept for the others only (it gains the
    condition that says so, and its args for the later platforms are dropped)."""
    platforms = sorted(platforms_of(interface.conditions))
    if platform in platforms:
        platforms = [platform]  # (an interface of other platforms only is seen as a whole)
    present = _present(interface, platforms, release)
    if not present:
        return None
    members = []
    for member in interface.members:
        exists = [p for p in present if p in platforms_of(member.conditions)]
        on = _present(member, exists, release)
        if on:
            members.append(_member_on(member, on, platforms))
    conditions = interface.conditions
    if len(present) < len(platforms):
        conditions += only_on(set(platforms) - set(present), interface.location)
    unchanged = len(members) == len(interface.members) and all(
        new is old for new, old in zip(members, interface.members)
    )
    if unchanged and conditions == interface.conditions:
        return interface
    return replace(interface, members=tuple(members), conditions=conditions)


def _present(item: Interface | Member, platforms: list[str], release: Release) -> list[str]:
    return [p for p in platforms if not newer_than(since_on(item, p), release)]


def _member_on(member: Member, on: list[str], viewed: list[str]) -> Member:
    """``member`` as it is on the ``on`` platforms only, of the ``viewed`` ones: a condition for
    each other viewed platform it has (its interface lacks it at that release, or the member came
    there later), and no args of those platforms."""
    missing = (platforms_of(member.conditions) & set(viewed)) - set(on)
    conditions = member.conditions + only_on(missing, member.location)
    if isinstance(member, Property):
        return member if conditions == member.conditions else replace(member, conditions=conditions)
    args = tuple(arg for arg in member.args if platforms_of(arg.conditions) - missing)
    if conditions == member.conditions and len(args) == len(member.args):
        return member
    return replace(member, conditions=conditions, args=args)


def only_on(missing: Iterable[str], location: Location) -> tuple[Condition, ...]:
    """Conditions that exclude the ``missing`` platforms, written as QEMU's XML writes them
    (``$(env.HOST_OS) != windows``)."""
    return tuple(
        Condition("if", f"$(env.HOST_OS) != {PLATFORMS[platform]['HOST_OS']}", False, location)
        for platform in sorted(missing)
        if platform in ALL_PLATFORMS
    )

"""``qemu-dbus registry``: the registry for the people who use it rather than edit it.

``list`` tables the interfaces (since, stability, how each is reached), ``show NAME`` prints one
interface as a reader wants it (members with raw and readable types, access, NoReply, deprecation,
since, what each receiver must validate), ``path`` prints the folder in use.  ``--qemu-version``
answers for an older QEMU (`Registry.at_release`), ``--platform`` for one platform's build of the
XML.  Every name that comes from the XML is printed through `printable`, so a control character in a
hostile file cannot drive the reader's terminal.

`add_registry_option` and `registry_path` are the CLI side of the one rule that picks the
registry (`registry_folder`): every subcommand that reads it uses them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from .._version import __version__
from ..diagnostics.output import printable, render
from ..model.introspection import (
    ALL_PLATFORMS,
    PLATFORMS,
    Arg,
    Direction,
    Interface,
    Member,
    Method,
    Property,
    Signal,
    interface_for_platform,
    platform_label,
    platforms_of,
    signature_variants,
)
from ..model.metadata import interface_metadata, validation_note
from ..model.registry import Registry, RegistryLocationError, registry_folder
from ..model.releases import Release, newest, parse_release, release_text, since_on
from ..model.signature import SignatureError, describe, parse_single_type

EXIT_OK, EXIT_USAGE = 0, 2


def add_registry_option(parser: argparse.ArgumentParser) -> None:
    """``--registry PATH``: the registry to read, instead of the packaged one."""
    parser.add_argument(
        "--registry",
        default=None,
        metavar="PATH",
        help="the registry folder (default: the registry installed with this package; "
        "'qemu-dbus registry path' prints it)",
    )


def registry_path(args: argparse.Namespace, command: str) -> str | None:
    """The registry the subcommand reads, or None after saying why there is none."""
    try:
        return registry_folder(args.registry, "--registry")
    except RegistryLocationError as error:
        print(f"qemu-dbus {command}: error: {printable(str(error))}", file=sys.stderr)  # it names the path
        return None


def add_cli(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``qemu-dbus registry list|show|path`` on the CLI's subparsers."""
    parser = commands.add_parser(
        "registry",
        help="list the registered interfaces, show one, or print where the registry is",
        description="Read the registry of QEMU's D-Bus interfaces: 'list' the interfaces, 'show' one, "
        "or print the 'path' of the registry in use.  Exit status: 0, or 2 for an unknown name, "
        "usage errors and unreadable registries.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))
    actions.required = True

    listing = actions.add_parser("list", help="every interface: since, stability, how it is reached")
    _view_options(listing)
    listing.add_argument("--format", choices=("text", "json"), default="text", dest="fmt")
    listing.set_defaults(func=run_list)

    show = actions.add_parser("show", help="one interface, its members and what their receivers validate")
    show.add_argument("name", metavar="NAME", help="the interface (full name, or its last elements)")
    _view_options(show)
    show.add_argument("--format", choices=("text", "json"), default="text", dest="fmt")
    show.set_defaults(func=run_show)

    path = actions.add_parser("path", help="the folder of the registry in use")
    add_registry_option(path)
    path.set_defaults(func=run_path)


def _view_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--qemu-version",
        metavar="X.Y",
        help="what that QEMU release exported: leave out what came later",
    )
    parser.add_argument(
        "--platform",
        choices=tuple(PLATFORMS),
        help="as QEMU's build for that platform has it (default: every platform variant)",
    )
    add_registry_option(parser)


def _fail(message: str) -> int:
    # Escaped whole: the names it quotes (matches, suggestions) come from the registry.
    print(f"qemu-dbus registry: error: {printable(message)}", file=sys.stderr)
    return EXIT_USAGE


class _View:
    """The registry as the options ask for it: loaded, seen at a release, on a platform."""

    def __init__(self, registry: Registry, path: str, release: Release | None, platform: str | None) -> None:
        self.full = registry
        self.path = path
        self.release = release
        self.platform = platform
        self.registry = registry.at_release(release, platform) if release is not None else registry

    def interface(self, interface: Interface) -> Interface:
        return interface_for_platform(interface, self.platform) if self.platform else interface

    def entries(self) -> list[tuple[Interface, str]]:
        """(interface as seen, file) for every interface of the view."""
        return [
            (self.interface(entry.interface), entry.path)
            for entry in self.registry
            if self.platform is None or self.platform in platforms_of(entry.interface.conditions)
        ]

    def describe(self) -> dict[str, Any]:
        return {
            "registry": self.path,
            "qemu_release": self.full.release,
            "qemu_version": release_text(self.release) if self.release is not None else None,
            "platform": self.platform,
        }


def _load_view(args: argparse.Namespace) -> _View | int:
    release: Release | None = None
    if args.qemu_version is not None:
        release = parse_release(args.qemu_version)
        if release is None:
            return _fail(f"--qemu-version '{printable(args.qemu_version)}' is not a QEMU release such as 7.2")
    path = registry_path(args, "registry")
    if path is None:
        return EXIT_USAGE
    registry = Registry.load([path])
    if registry.errors:
        sys.stdout.write(render(registry.errors, "text", version=__version__))
        return _fail("the registry has errors (above); qemu-dbus check shows them all")
    declared = parse_release(registry.release) if registry.release else None
    if release is not None and declared is not None and release > declared:
        print(
            f"qemu-dbus registry: note: the registry describes QEMU {registry.release}; "
            f"what {release_text(release)} added after it is not in it",
            file=sys.stderr,
        )
    return _View(registry, path, release, args.platform)


# --- list ------------------------------------------------------------------------------------


def _since(interface: Interface, platform: str | None = None) -> str:
    """Since when the interface exists (on ``platform``: its date there, see `since_on`)."""
    own = interface_metadata(interface).since or interface.since
    return (newest([own, since_on(interface, platform)]) if platform else own) or "?"


def _member_since(member: Member, interface: Interface, platforms: Sequence[str]) -> str:
    """Since when the member exists on ``platforms`` (all of them: every platform's variant);
    a member that came with its interface carries the interface's date there."""
    dates: list[str | None] = [member.since or _since(interface)]
    for platform in platforms:
        dates += [since_on(member, platform), _since(interface, platform)]
    return newest(dates) or "?"


def _reached(interface: Interface) -> str:
    metadata = interface_metadata(interface)
    if metadata.peer_to_peer:
        where = "peer-to-peer"
    elif metadata.bus_name:
        where = f"bus name {metadata.bus_name}"
    else:
        where = "bus, by unique name"
    return f"{where} at {metadata.object_path}" if metadata.object_path else where


def _platforms(interface: Interface) -> list[str]:
    return sorted(platforms_of(interface.conditions))


def _interface_json(interface: Interface, path: str, platform: str | None) -> dict[str, Any]:
    metadata = interface_metadata(interface)
    return {
        "name": interface.name,
        "since": _since(interface, platform),
        "stability": metadata.stability,
        "deprecated": interface.deprecated,
        "implementers": list(metadata.implementers),
        "callers": list(metadata.callers),
        "connection": metadata.connection,
        "bus_name": metadata.bus_name,
        "object_path": metadata.object_path,
        "platforms": _platforms(interface),
        "summary": interface.doc.short if interface.doc else "",
        "file": path,
    }


def run_list(args: argparse.Namespace) -> int:
    view = _load_view(args)
    if isinstance(view, int):
        return view
    entries = view.entries()
    if args.fmt == "json":
        document = view.describe() | {"interfaces": [_interface_json(i, path, view.platform) for i, path in entries]}
        print(json.dumps(document, indent=2))
        return EXIT_OK
    rows = [("INTERFACE", "SINCE", "STABILITY", "REACHED")]
    for interface, _path in entries:
        metadata = interface_metadata(interface)
        only = platform_label(frozenset(_platforms(interface)))
        name = printable(interface.name) + (f" ({only} only)" if only else "")
        stability = (metadata.stability or "?") + (", deprecated" if interface.deprecated else "")
        since = _since(interface, view.platform)
        rows.append((name, printable(since), stability, printable(_reached(interface))))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths)) + "  " + row[3])
    return EXIT_OK


# --- show ------------------------------------------------------------------------------------


def _find(view: _View, name: str) -> Interface | int:
    """The interface ``name`` (a full name, or its last elements when they are unique), or the
    exit status after saying what is closest."""
    lookup = view.full.lookup(name)
    if lookup.found is None:
        problem = lookup.problem() or ""
        return _fail(
            problem if lookup.suggestions or lookup.ambiguous else f"{problem}; 'qemu-dbus registry list' lists them"
        )
    found = lookup.found
    if found not in view.registry:
        since = _since(view.full.interface(found), view.platform)
        there = f" on {view.platform}" if view.platform else ""
        return _fail(
            f"{found} is not part of QEMU {release_text(view.release or (0, 0, 0))}{there}: "
            f"it exists{' there' if there else ''} since {since}"
        )
    interface = view.registry.interface(found)
    if view.platform is not None and view.platform not in platforms_of(interface.conditions):
        only = platform_label(frozenset(_platforms(interface)))
        return _fail(f"{found} does not exist on {view.platform} ({only} only)")
    return view.interface(interface)


def _readable(code: str) -> str:
    try:
        text = describe(parse_single_type(code))
    except SignatureError:
        return "invalid type"
    return text


def _arg_json(arg: Arg, index: int) -> dict[str, Any]:
    return {
        "name": arg.name or f"arg{index}",
        "type": arg.type,
        "readable_type": _readable(arg.type),
        "direction": arg.direction.value,
        "validate": validation_note(arg),
    }


def _variants(member: Method | Signal, platform: str | None) -> list[tuple[frozenset[str], tuple[Arg, ...]]]:
    """The member's arg lists per platform; only ``platform``'s when the view has one."""
    variants = signature_variants(member)
    if platform is None:
        return variants
    return [(frozenset({platform}), args) for platforms, args in variants if platform in platforms]


def _member_json(member: Member, interface: Interface, platform: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "kind": member.kind,
        "name": member.name,
        "since": _member_since(member, interface, [platform] if platform else []),
        "deprecated": member.deprecated,
        "platforms": sorted(platforms_of(member.conditions)),
        "summary": member.doc.short if member.doc else "",
    }
    if isinstance(member, Property):
        result |= {
            "type": member.type,
            "readable_type": _readable(member.type),
            "access": member.access.value,
            "emits_changed": member.emits_changed.value,
            "validate": validation_note(member),
        }
    else:
        if isinstance(member, Method):
            result["no_reply"] = member.no_reply
        result["variants"] = [
            {
                "platforms": sorted(platforms),
                "since": _member_since(member, interface, sorted(platforms)),
                "args": [_arg_json(arg, i) for i, arg in enumerate(args)],
            }
            for platforms, args in _variants(member, platform)
        ]
    return result


def run_show(args: argparse.Namespace) -> int:
    view = _load_view(args)
    if isinstance(view, int):
        return view
    interface = _find(view, args.name)
    if isinstance(interface, int):
        return interface
    if args.fmt == "json":
        path = view.registry.entry(interface.name).path
        document = view.describe() | _interface_json(interface, path, view.platform)
        document["members"] = [_member_json(member, interface, view.platform) for member in interface.members]
        print(json.dumps(document, indent=2))
        return EXIT_OK
    sys.stdout.write("".join(line + "\n" for line in _show_lines(interface, view)))
    return EXIT_OK


def _show_lines(interface: Interface, view: _View) -> list[str]:
    metadata = interface_metadata(interface)
    since = _since(interface, view.platform)
    lines = [f"{printable(interface.name)}  (since {printable(since)}, {metadata.stability or 'stability unknown'})"]
    if view.release is not None:
        lines.append(f"  as QEMU {release_text(view.release)} exported it")
    if interface.doc and interface.doc.short:
        lines.append(f"  {printable(interface.doc.short)}")
    only = platform_label(frozenset(_platforms(interface)))
    if only:
        lines.append(f"  platform: {only} only")
    if interface.deprecated:
        lines.append("  deprecated")
    lines.append(
        f"  implemented by {', '.join(metadata.implementers) or '?'}; called by {', '.join(metadata.callers) or '?'}"
    )
    lines.append(f"  reached: {printable(_reached(interface))}")
    for kind, title in (("method", "Methods"), ("signal", "Signals"), ("property", "Properties")):
        members = [m for m in interface.members if m.kind == kind]
        if not members:
            continue
        lines += ["", title + ":"]
        for member in members:
            lines += _member_lines(member, interface, view.platform)
    return lines


def _flags(member: Member, interface: Interface, since: str) -> str:
    flags = [f"since {printable(since)}"]
    if isinstance(member, Method) and member.no_reply:
        flags.append("NoReply")
    if member.deprecated:
        flags.append("deprecated")
    platforms = platforms_of(member.conditions)
    if platforms != ALL_PLATFORMS and platforms != platforms_of(interface.conditions):
        flags.append(f"{platform_label(platforms)} only")
    return "[" + ", ".join(flags) + "]"


def _member_lines(member: Member, interface: Interface, platform: str | None) -> list[str]:
    name = printable(member.name)
    flags = _flags(member, interface, _member_since(member, interface, [platform] if platform else []))
    if isinstance(member, Property):
        lines = [
            f"  {name}: {printable(member.type)} ({_readable(member.type)}), {member.access.value}, "
            f"changes: {member.emits_changed.value}  {flags}"
        ]
        lines += _validation_lines(validation_note(member), "    ")
        return lines
    assert isinstance(member, (Method, Signal))
    variants = _variants(member, platform)
    lines = []
    for platforms, args in variants:
        label = f"  ({platform_label(platforms)})" if len(variants) > 1 else ""
        if len(variants) > 1:  # each platform's form, with its own date
            flags = _flags(member, interface, _member_since(member, interface, sorted(platforms)))
        lines.append(f"  {name}({_signature(member, args)}){label}  {flags}")
        for index, arg in enumerate(args):
            # A signal's args all travel one way; a method's go in or come out.
            direction = "" if isinstance(member, Signal) else "out " if arg.direction is Direction.OUT else "in "
            arg_name = printable(arg.name or f"arg{index}")
            lines.append(f"    {direction}{arg_name}: {printable(arg.type)} ({_readable(arg.type)})")
            lines += _validation_lines(validation_note(arg), "      ")
    return lines


def _signature(member: Method | Signal, args: Sequence[Arg]) -> str:
    ins = ", ".join(
        f"{printable(a.type)} {printable(a.name or '')}".strip() for a in args if a.direction is Direction.IN
    )
    if isinstance(member, Signal):
        return ins
    outs = ", ".join(
        f"{printable(a.type)} {printable(a.name or '')}".strip() for a in args if a.direction is Direction.OUT
    )
    return f"{ins}) -> ({outs}" if not member.no_reply else ins


def _validation_lines(note: str | None, indent: str) -> list[str]:
    return [f"{indent}validate: {printable(' '.join(note.split()))}"] if note else []


# --- path ------------------------------------------------------------------------------------


def run_path(args: argparse.Namespace) -> int:
    path = registry_path(args, "registry")
    if path is None:
        return EXIT_USAGE
    print(printable(path))
    return EXIT_OK

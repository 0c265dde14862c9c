"""The D-Bus specification's rules for names ("Valid names") and object paths.

Each ``*_error`` function returns a sentence saying what is wrong, or None for a valid name.  They
implement the spec, not a library: libdbus, GLib and sd-bus each accept some names the spec forbids.
"""

from __future__ import annotations

import functools
import re

MAX_NAME_LENGTH = 255
#: The name prefix QEMU reserves for its own interfaces and bus names (``org.qemu.*``).
RESERVED_PREFIX = "org.qemu"

_ELEMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_BUS_ELEMENT = re.compile(r"[A-Za-z_-][A-Za-z0-9_-]*\Z")
_UNIQUE_ELEMENT = re.compile(r"[A-Za-z0-9_-]+\Z")
_PATH_ELEMENT = re.compile(r"[A-Za-z0-9_]+\Z")
_PLACEHOLDER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")


def _too_long(name: str, kind: str) -> str | None:
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > MAX_NAME_LENGTH:
        return f"{kind} is {size} bytes long; the limit is {MAX_NAME_LENGTH}"
    return None


def _dotted_error(name: str, kind: str) -> str | None:
    if not name:
        return f"{kind} is empty"
    if problem := _too_long(name, kind):
        return problem
    elements = name.split(".")
    if len(elements) < 2:
        return f"{kind} needs at least two '.'-separated elements"
    for element in elements:
        if not element:
            return f"{kind} has an empty element"
        if not _ELEMENT.match(element):
            if element[0].isdigit():
                return f"{kind} element {element!r} starts with a digit"
            return f"{kind} element {element!r} may only hold [A-Za-z0-9_]"
    return None


@functools.lru_cache(maxsize=4096)
def interface_name_error(name: str) -> str | None:
    """Interface names: ≥2 elements of ``[A-Za-z_][A-Za-z0-9_]*``, at most 255 bytes."""
    return _dotted_error(name, "interface name")


@functools.lru_cache(maxsize=4096)
def member_name_error(name: str, kind: str = "member name") -> str | None:
    """Method and signal names: ``[A-Za-z_][A-Za-z0-9_]*``, no '.', at most 255 bytes."""
    if not name:
        return f"{kind} is empty"
    if problem := _too_long(name, kind):
        return problem
    if "." in name:
        return f"{kind} must not contain '.'"
    if not _ELEMENT.match(name):
        if name[0].isdigit():
            return f"{kind} starts with a digit"
        return f"{kind} may only hold [A-Za-z0-9_]"
    return None


@functools.lru_cache(maxsize=4096)
def bus_name_error(name: str) -> str | None:
    """Well-known or unique bus names."""
    if not name:
        return "bus name is empty"
    if problem := _too_long(name, "bus name"):
        return problem
    unique = name.startswith(":")
    body = name[1:] if unique else name
    if body.startswith("."):
        return "bus name must not start with '.'"
    elements = body.split(".")
    if len(elements) < 2:
        return "bus name needs at least two '.'-separated elements"
    for element in elements:
        if not element:
            return "bus name has an empty element"
        if unique:
            if not _UNIQUE_ELEMENT.match(element):
                return f"bus name element {element!r} may only hold [A-Za-z0-9_-]"
        elif not _BUS_ELEMENT.match(element):
            if element[0].isdigit():
                return f"bus name element {element!r} starts with a digit"
            return f"bus name element {element!r} may only hold [A-Za-z0-9_-]"
    return None


@functools.lru_cache(maxsize=4096)
def object_path_error(path: str) -> str | None:
    """``/`` or ``/`` + ``[A-Za-z0-9_]+`` elements, no empty element, no trailing ``/``."""
    if not path:
        return "object path is empty"
    if not path.startswith("/"):
        return "object path must start with '/'"
    if path == "/":
        return None
    if path.endswith("/"):
        return "object path must not end with '/'"
    for element in path[1:].split("/"):
        if not element:
            return "object path has an empty element ('//')"
        if not _PATH_ELEMENT.match(element):
            return f"object path element {element!r} may only hold [A-Za-z0-9_]"
    return None


def relative_path_error(name: str) -> str | None:
    """A child ``<node name>`` is a relative path: elements of ``[A-Za-z0-9_]+`` joined by ``/``."""
    if name.startswith("/"):
        return object_path_error(name)
    return object_path_error("/" + name)


def path_pattern_error(pattern: str) -> str | None:
    """An object path in which ``{name}`` placeholders stand for variable parts."""
    if "{" in pattern or "}" in pattern:
        concrete = _PLACEHOLDER.sub("x", pattern)
        if "{" in concrete or "}" in concrete:
            return "placeholders are written {name}, with name of [A-Za-z0-9_]"
        return object_path_error(concrete)
    return object_path_error(pattern)


def path_pattern_regex(pattern: str) -> re.Pattern[str]:
    """A regex matching concrete object paths for a pattern (``{id}`` matches one path fragment)."""
    parts = _PLACEHOLDER.split(pattern)
    return re.compile("[A-Za-z0-9_]+".join(re.escape(part) for part in parts) + r"\Z")


def is_under_prefix(name: str, prefix: str) -> bool:
    """Whether ``name`` lies strictly under the dotted ``prefix`` (``org.qemu.X`` is under
    ``org.qemu``; ``org.qemux.X`` and ``org.qemu`` itself are not)."""
    return name.startswith(prefix + ".") and len(name) > len(prefix) + 1

"""Every warning of the Sphinx side goes through here, as ``type="dbus", subtype=<code>``.

Rule codes (``X001``, ``R601``...) come from `sphinxext_qemudbus.diagnostics.rules`, the same table the checker
uses; the few problems that exist only in a docs build have the word codes of `SPHINX_WARNINGS`.
Either can be silenced with ``suppress_warnings = ["dbus.<code>"]`` (or ``"dbus"`` for all).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional, Union

import sphinx
from docutils import nodes
from sphinx.util import logging

from ..diagnostics.diagnostic import Diagnostic, Location, Severity

logger = logging.getLogger("sphinxext_qemudbus")

#: Warnings that only a docs build can produce, with what they mean (rendered on the
#: extension's documentation page).
SPHINX_WARNINGS: Mapping[str, str] = {
    "registry": "The registry that ``dbus_registry_path`` names (or, when it is not set, the one "
    "installed with the extension) does not exist or holds no ``*.xml`` file.  Reported once, at "
    "``conf.py``; the directives that read the registry then render nothing.",
    "missing-interface": "A ``dbus-interface`` names an interface that no file of the registry "
    "defines (the warning names the closest ones), or a short name that several interfaces end "
    "with, or a ``dbus-registry`` names a folder without interfaces.",
    "duplicate-object": "Two descriptions of the same D-Bus object (by full name).  The warning "
    "gives both locations; links go to the description in the first document by name.",
    "deployment": "A ``dbus-policy``, ``dbus-trust-table`` or ``dbus-deployment`` (or the "
    "``dbus_trust_deployment`` setting) names a deployment file that cannot be read, or one that "
    "does not agree with the registry.",
    "policy": "A ``dbus-policy`` asks for a ``<policy>`` element the configuration does not have.",
    "doc-markup": "A doc comment (or other text from XML) uses markup that documentation from XML "
    "may not use: a directive outside the allowed set, raw output, a local image or a download. "
    "It is left out (a download keeps its text).",
    "unsafe-link": "A link in a doc comment whose target a browser would run or read locally "
    "(``javascript:``, ``data:``, ``vbscript:``, ``file:``... anything but a relative URL or "
    "``http``, ``https``, ``mailto`` and the like).  The text is kept, the link is not.",
    "field-list": "The ``:arg:``/``:ret:`` fields of a hand-written ``dbus:method`` or "
    "``dbus:signal`` were not parsed as a field list: the signature shows them, the page would show "
    "them as raw text.  In MyST, enable its ``fieldlist`` extension "
    '(``myst_enable_extensions = ["fieldlist"]``).',
    "xml-value": "A value from the XML that a description cannot take as an option: registry "
    "metadata or a ``Since:`` line it refuses (a connection that is neither ``bus`` nor "
    "``peer-to-peer``, an empty value, a member that exists on no platform).  The object is "
    "rendered without it; ``qemu-dbus check`` says what is wrong with the XML.",
    "outside-source": "A ``dbus-doc`` path that leads out of the source folder (or out of "
    "``dbusdoc_srctree`` when it is set).  The file is still rendered; set ``dbusdoc_srctree`` "
    "to the tree the XML lives in.",
}


# Sphinx 7.3 added show_warning_types (on by default from 8.0), which appends "[dbus.R601]" to
# every message.  Where Sphinx does not (5.3, which QEMU builds with; 7.x by default; or the
# setting turned off), say it ourselves: a warning is only useful if the reader can tell what to
# suppress.  Set from the configuration of the build (`note_warning_types`).
class _Build:
    append_code = True  # whether warn() says the code itself


_BUILD = _Build()


def note_warning_types(app: Any, config: Any) -> None:
    """``config-inited``: whether Sphinx shows each warning's type and subtype itself."""
    _BUILD.append_code = not (sphinx.version_info >= (7, 3) and getattr(config, "show_warning_types", False))


NodeOrLocation = Union[nodes.Node, str, tuple[str, Optional[int]], None]


def location_text(location: Location) -> str | None:
    """A Sphinx location string ``path:line`` for a place in an XML file.  A string that holds a
    ``:`` is printed as it is; anything else would be read as a docname."""
    if location.line:
        return f"{location.path}:{location.line}"
    return None


def warn(code: str, message: str, location: NodeOrLocation, **kwargs: Any) -> None:
    """Log a warning of type ``dbus`` and subtype ``code``."""
    if _BUILD.append_code:
        message = f"{message} [dbus.{code}]"
    logger.warning(message, type="dbus", subtype=code, location=location, **kwargs)


def log_diagnostic(diagnostic: Diagnostic, fallback: NodeOrLocation = None) -> None:
    """Log a parser or checker `Diagnostic` at its place in the XML file.  Errors and warnings
    become Sphinx warnings; notes are only shown with ``-v``.  A diagnostic without a line
    (an unreadable file) is reported at ``fallback``, the directive that wanted the file."""
    location: NodeOrLocation = location_text(diagnostic.location)
    message = diagnostic.message
    if location is None:
        location = fallback
        message = f"{diagnostic.location.path}: {message}"
    if diagnostic.severity is Severity.NOTE:
        logger.verbose(message, type="dbus", subtype=diagnostic.code, location=location)
        return
    warn(diagnostic.code, message, location)

"""sphinxext-qemudbus: QEMU's D-Bus interface registry, checker and Sphinx extension.

``extensions = ["sphinxext_qemudbus"]`` in a Sphinx ``conf.py`` loads the ``dbus`` domain and the
registry directives.  Importing this package does not import Sphinx: the parser, checker and CLI
work without a docs toolchain, and Sphinx is imported only when Sphinx calls `setup`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

__all__ = ["__version__", "setup"]

if TYPE_CHECKING:
    from sphinx.application import Sphinx


def setup(app: Sphinx) -> dict[str, Any]:
    from .sphinx import setup as sphinx_setup

    metadata: dict[str, Any] = sphinx_setup(app)
    return metadata

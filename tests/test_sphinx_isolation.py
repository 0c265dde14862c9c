"""Sphinx stays at the edge: the parser, checker, registry and CLI never import it, so
``qemu-dbus check`` starts fast and works without a docs toolchain."""

from __future__ import annotations

import subprocess
import sys

CORE = [
    "sphinxext_qemudbus",
    "sphinxext_qemudbus.cli",
    "sphinxext_qemudbus.check.checker",
    "sphinxext_qemudbus.model.parser",
    "sphinxext_qemudbus.model.registry",
    "sphinxext_qemudbus.check.references",
    "sphinxext_qemudbus.security.trust",
]


def test_core_modules_do_not_import_sphinx() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {module}\n" for module in CORE)
        + "loaded = sorted(m for m in sys.modules if m == 'sphinx' or m.startswith(('sphinx.', 'docutils')))\n"
        + "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_extension_entry_point_loads_the_sphinx_side() -> None:
    import sphinxext_qemudbus
    from sphinxext_qemudbus.sphinx import setup

    assert sphinxext_qemudbus.setup.__module__ == "sphinxext_qemudbus"
    assert setup.__module__ == "sphinxext_qemudbus.sphinx"

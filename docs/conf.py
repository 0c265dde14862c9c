"""Sphinx configuration of the sphinxext-qemudbus documentation: QEMU's D-Bus interop
documentation generated from the registry in ../interfaces, and the extension's own manual."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(".."))  # build from a plain checkout too

from sphinxext_qemudbus import __version__

project = "QEMU D-Bus interfaces"
author = "sphinxext-qemudbus developers"
copyright = "the sphinxext-qemudbus developers"
version = release = __version__

extensions = ["sphinxext_qemudbus", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# The registry: one introspection file per interface.  This checkout's folder, named explicitly
# (the default is the registry installed with the extension, the same files in a checkout).
dbus_registry_path = "../interfaces"
# As QEMU's docs/conf.py: the D-Bus index files org.qemu.Display1.VM under "D".
dbus_index_common_prefix = ["org.qemu."]

html_theme = "alabaster"
html_theme_options = {"page_width": "1200px", "sidebar_width": "240px"}
html_title = "QEMU D-Bus interfaces"
html_static_path = ["_static"]
html_css_files = ["docs.css"]  # readable on a phone: the sidebar's contrast, nothing wider than the page

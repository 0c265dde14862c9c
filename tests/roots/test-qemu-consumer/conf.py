# A project that links to QEMU's published D-Bus pages through intersphinx (the inventory is
# QEMU's own extension's or this one's, per test), with this extension loaded for its roles.
import os

project = "consumer"
extensions = ["sphinxext_qemudbus", "sphinx.ext.intersphinx"]
exclude_patterns = ["_build"]
intersphinx_mapping = {"qemu": ("https://www.qemu.org/docs/master/", os.environ["QEMUDBUS_TEST_INVENTORY"])}

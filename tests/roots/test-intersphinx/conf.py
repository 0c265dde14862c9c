# Another project that links to a registry project through its objects.inv.
import os

project = "intersphinx"
extensions = ["sphinxext_qemudbus", "sphinx.ext.intersphinx"]
exclude_patterns = ["_build"]
intersphinx_mapping = {
    "registry": ("https://registry.invalid/", os.environ["QEMUDBUS_TEST_INVENTORY"]),
}

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

project = "untrusted"
extensions = ["sphinxext_qemudbus", "myst_parser", "evilroles"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]

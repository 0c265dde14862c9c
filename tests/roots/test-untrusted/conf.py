project = "untrusted"
extensions = ["sphinxext_qemudbus", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]

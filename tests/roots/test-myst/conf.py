project = "myst"
extensions = ["sphinxext_qemudbus", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
dbus_registry_path = "interfaces"

# The probe's recorded results in the documentation: a registry of one interface with a results
# file whose texts are hostile (markup, a backquote, a newline, HTML).
import os

project = "probe"
extensions = ["sphinxext_qemudbus"]
exclude_patterns = ["_build"]
dbus_registry_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "registry")
# The interface refers to the Console, which this project does not render.
suppress_warnings = ["dbus.R601"]

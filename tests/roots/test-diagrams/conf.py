import os

import sphinxext_qemudbus

project = "diagrams"
extensions = ["sphinxext_qemudbus"]
exclude_patterns = ["_build"]
dbus_registry_path = os.path.join(os.path.dirname(os.path.dirname(sphinxext_qemudbus.__file__)), "interfaces")

project = "duplicates"
extensions = ["sphinxext_qemudbus"]
exclude_patterns = ["_build"]
dbus_registry_path = "interfaces"

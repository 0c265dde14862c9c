project = "missing"
extensions = ["sphinxext_qemudbus"]
exclude_patterns = ["_build"]
dbus_registry_path = "no-such-folder"

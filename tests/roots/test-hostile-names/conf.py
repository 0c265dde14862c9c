project = "hostile-names"
extensions = ["sphinxext_qemudbus"]
exclude_patterns = ["_build"]

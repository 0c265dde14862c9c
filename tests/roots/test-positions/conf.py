project = "positions"
extensions = ["sphinxext_qemudbus"]
exclude_patterns = ["_build"]

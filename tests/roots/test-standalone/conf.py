# A project of its own, as the README's "Use it in your own project" shows it: the extension and
# MyST, no registry setting (the registry installed with the extension is used).
project = "standalone"
extensions = ["sphinxext_qemudbus", "myst_parser"]
exclude_patterns = ["_build"]

"""The registry, installed as the package data ``sphinxext_qemudbus.interfaces``.

pyproject.toml maps that package onto this folder, so the wheel, the sdist and an editable install
all carry these very files, and `sphinxext_qemudbus.model.registry.packaged_registry` finds them
with `importlib.resources`.  This file only makes the folder a package; it holds no code.
"""

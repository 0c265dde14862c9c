"""The package's version, in a module of its own that imports nothing: every floor may read it,
while the package's ``__init__`` (the Sphinx entry point) sits above them all."""

__version__ = "0.2.0"

"""The located, immutable model of D-Bus introspection data and everything that reads it: the safe parser, doc comments, signatures, names, source positions, registry metadata, file listing and the registry loader.

Imports only `diagnostics`.
"""

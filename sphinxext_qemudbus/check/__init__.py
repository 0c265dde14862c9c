"""``qemu-dbus check``: the rules run over parsed files, reference resolution and the per-file result cache.

Imports only `model` and `diagnostics`.
"""

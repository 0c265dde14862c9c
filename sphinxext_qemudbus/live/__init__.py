"""``qemu-dbus conform``: a running peer compared with the registry.

Imports only `model` and `diagnostics`.
"""

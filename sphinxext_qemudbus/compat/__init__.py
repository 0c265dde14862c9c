"""``qemu-dbus diff``: the API-compatibility gate and its git baseline.

Imports only `model` and `diagnostics`.
"""

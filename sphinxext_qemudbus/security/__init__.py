"""The security model: deployments (who runs as which user), trust (who must validate what) and the dbus-daemon policies generated from them.

Imports only `model` and `diagnostics`.
"""

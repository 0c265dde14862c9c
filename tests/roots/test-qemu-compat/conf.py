# A docs project shaped like QEMU's docs/: dbus-doc paths relative to a source tree,
# QEMU's index prefix and default role, hand-written XML in QEMU's style.
import os

qemu_docdir = os.path.abspath(os.path.dirname(__file__))
project = "QEMU-like"
extensions = ["sphinxext_qemudbus"]
default_role = "any"
exclude_patterns = ["_build"]
dbusdoc_srctree = os.path.join(qemu_docdir, "src")
dbus_index_common_prefix = ["org.qemu."]

# QEMU's docs/conf.py reduced to the settings its D-Bus pages use, as docs/qemu-switch/conf.py.diff
# leaves them (tests/test_qemu_tree.py checks that these are the switched lines).  It replaces
# docs/conf.py in a copy of this tree: QEMU's whole conf.py loads QEMU's other extensions.
import os
import sphinx

qemu_docdir = os.path.abspath(".")
default_role = 'any'
project = u'QEMU'
language = 'en'
exclude_patterns = ['_build', 'Thumbs.db', '.DS_Store']
suppress_warnings = ["ref.option"]
man_make_section_directory = False
extensions = []

if sphinx.version_info[:2] >= (5, 3):
    tags.add('sphinx4')
    extensions += ['sphinxext_qemudbus']
else:
    extensions += ['fakedbusdoc']

dbusdoc_srctree = os.path.join(qemu_docdir, '..')
dbus_index_common_prefix = ["org.qemu."]
man_pages = [('interop/dbus-display', 'qemu-dbus-display', 'QEMU D-Bus display', [], 7)]

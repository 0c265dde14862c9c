"""The Sphinx side of sphinxext-qemudbus: ``extensions = ["sphinxext_qemudbus"]``.

Module map (Sphinx is imported only in this package):

``config``      the ``conf.py`` settings, one declarative table
``domain``      the ``dbus`` domain: object directives, roles, index, reference resolution
``render``      model → entries (names, options, doc texts, fields, notes) located in the XML
``describe``    entries → nodes, by the domain's own directives; only doc comments are parsed
``rst``         parse doc comments (and the project's own generated tables) as reST, in reST
                and MyST documents
``untrusted``   doc comments as untrusted reST: no raw, no file insertion, allowed directives only
``directives``  ``dbus-interface``, ``dbus-doc``, ``dbus-registry`` and the generated tables
``policy``      ``dbus-policy``, ``dbus-trust-table``, ``dbus-deployment``: the security model
``diagrams``    ``dbus-deployment-diagram``, ``dbus-sequence``: the pictures, as SVG or as tables
``probe``       ``qemu-dbus probe``'s recorded results: on each member, and ``dbus-probe-results``
``tables``      docutils tables from rows of nodes
``sources``     parse each XML file once per build; find interfaces in the registry folder
``reporting``   every warning as ``type="dbus", subtype=<code>``
``style``       the stylesheet of the reference pages
``manpage``     man pages: one line per platform variant of a signature
``external``    references to objects rendered elsewhere: intersphinx, QEMU's old inventories,
                the registry
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .._version import __version__
from . import config, diagrams, external, manpage, policy, probe, reporting
from .directives import DIRECTIVES
from .domain import DBusDomain, warn_missing_reference
from .sources import registry_files
from .style import CSS_FILE, write_css

if TYPE_CHECKING:
    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment

#: Bumped whenever what the domain stores in the environment changes shape.
ENV_VERSION = 1


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the domain, the directives and the settings.  Parallel reading and writing are
    safe (a test builds with ``-j 2``): the domain merges worker data, and the XML cache is per
    process."""
    config.register(app)
    app.connect("config-inited", reporting.note_warning_types)
    app.add_domain(DBusDomain)
    for name, directive in {**DIRECTIVES, **probe.DIRECTIVES}.items():
        app.add_directive(name, directive)
    app.connect("warn-missing-reference", warn_missing_reference)
    app.connect("env-get-outdated", _rescanned_documents)
    app.add_css_file(CSS_FILE)
    app.connect("build-finished", write_css)
    policy.setup(app)
    diagrams.setup(app)
    manpage.setup(app)
    external.setup(app)
    return {
        "version": __version__,
        "env_version": ENV_VERSION,
        "parallel_read_safe": True,
        "parallel_write_safe": True,
    }


def _rescanned_documents(
    app: Sphinx, env: BuildEnvironment, added: set[str], changed: set[str], removed: set[str]
) -> list[str]:
    """``env-get-outdated``: documents that listed a registry folder whose files have changed
    (a file added or removed), which ``note_dependency`` alone cannot notice."""
    domain = env.get_domain("dbus")
    assert isinstance(domain, DBusDomain)
    outdated = []
    for docname, (folder, names) in domain.scans.items():
        current = tuple(os.path.basename(path) for path in registry_files(folder))
        if current != tuple(names):
            outdated.append(docname)
    return outdated

"""The extension's configuration values, declared once.

`CONFIG_VALUES` is the only place that names a ``conf.py`` setting of this extension: `setup`
registers every entry, and the ``dbus-config`` directive renders the same table on the
extension's documentation page, so the two cannot drift.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..diagnostics.frozen import record
from ..model.registry import RegistryLocationError, registry_folder
from .reporting import warn

if TYPE_CHECKING:
    from sphinx.application import Sphinx
    from sphinx.config import Config


@record(frozen=True)
class ConfigValue:
    """One ``conf.py`` setting.  ``help`` is reStructuredText; ``rebuild`` is Sphinx's rebuild
    condition (``env``: changing it re-reads every document)."""

    name: str
    default: Any
    rebuild: str
    types: tuple[type, ...]
    help: str
    qemu: bool = False  # also understood by QEMU's own docs/sphinx/dbusdoc.py or dbusdomain.py

    @property
    def type_names(self) -> str:
        return " or ".join("None" if t is type(None) else t.__name__ for t in self.types)


CONFIG_VALUES: tuple[ConfigValue, ...] = (
    ConfigValue(
        "dbus_registry_path",
        None,
        "env",
        (str, type(None)),
        "The folder of the registry's introspection XML, one ``<interface name>.xml`` file per "
        "interface.  A relative path is taken from the folder of ``conf.py``.  None (the default) "
        "uses the registry installed with the extension (``qemu-dbus registry path`` prints "
        "where).  Read by ``dbus-interface``, ``dbus-registry``, ``dbus-policy``, "
        "``dbus-trust-table`` and ``dbus-deployment``, and to resolve references to registry "
        "objects the project does not render.  A folder that does not exist or holds no "
        "``*.xml`` file is one warning (``dbus.registry``) at ``conf.py``.",
    ),
    ConfigValue(
        "dbus_registry_url",
        None,
        "env",
        (str, type(None)),
        "The root URL of the registry's published documentation, such as QEMU's "
        "``https://www.qemu.org/docs/master/``.  A reference to a registry interface or member "
        "that the project does not render itself links to ``<URL><page>.html#<full name>``, with "
        "the page that the registry's ``registry.toml`` gives the interface's family "
        "(``interop/dbus-display`` for ``org.qemu.Display1.*``).  When it is None such a "
        "reference is shown as code text, without a link and without a warning.",
    ),
    ConfigValue(
        "dbusdoc_srctree",
        None,
        "env",
        (str, type(None)),
        "The folder that ``dbus-doc`` paths are relative to (QEMU sets it to its source tree).  "
        "When it is None, a ``dbus-doc`` path is relative to the document that names it, or to "
        "the source folder when it starts with ``/``.",
        qemu=True,
    ),
    ConfigValue(
        "dbus_index_common_prefix",
        [],
        "env",
        (list, tuple),
        "Name prefixes that the D-Bus index skips when it groups interfaces by their first "
        'letter: with ``["org.qemu."]``, ``org.qemu.Display1.VM`` is listed under *D*.',
        qemu=True,
    ),
    ConfigValue(
        "dbus_trust_deployment",
        "default",
        "env",
        (str, type(None)),
        "The deployment whose trust notes appear on every member rendered from the registry "
        "(which peers' messages cross a user boundary in each scenario, and who validates what): "
        "a built-in deployment (``default``, ``lockdown``) or a deployment ``.toml`` file, "
        "relative to the folder of ``conf.py``.  None leaves the trust notes out.",
    ),
    ConfigValue(
        "dbus_toc_members",
        False,
        "env",
        (bool,),
        "List every method, signal and property in the table of contents, under its interface "
        "(Sphinx's ``toc_object_entries`` must be on too).  Off by default: interfaces are "
        "sections of their own already, a family page has a hundred members, and Sphinx before 7 "
        "copies every entry into the navigation of every page.",
    ),
)

CONFIG_BY_NAME = {value.name: value for value in CONFIG_VALUES}


def register(app: Sphinx) -> None:
    """Register every value of `CONFIG_VALUES` (with its help text where Sphinx takes one)."""
    import inspect

    takes_description = "description" in inspect.signature(app.add_config_value).parameters
    for value in CONFIG_VALUES:
        default = list(value.default) if isinstance(value.default, list) else value.default
        if takes_description:  # Sphinx >= 7.4
            app.add_config_value(value.name, default, value.rebuild, value.types, description=value.help)
        else:
            app.add_config_value(value.name, default, value.rebuild, value.types)
    app.connect("config-inited", _resolve_paths)


def _resolve_paths(app: Sphinx, config: Config) -> None:
    """Make the folder settings absolute now, relative to ``conf.py``, so that directives never
    depend on the current directory (nor on `BuildEnvironment.app`, deprecated in Sphinx 9)."""
    for name in ("dbus_registry_path", "dbusdoc_srctree"):
        value = config[name]
        if isinstance(value, str) and value and not os.path.isabs(value):
            setattr(config, name, os.path.normpath(os.path.join(app.confdir, value)))
    deployment = config["dbus_trust_deployment"]
    if isinstance(deployment, str) and deployment.endswith(".toml") and not os.path.isabs(deployment):
        config.dbus_trust_deployment = os.path.normpath(os.path.join(app.confdir, deployment))
    _choose_registry(app, config)


def _choose_registry(app: Sphinx, config: Config) -> None:
    """Settle which registry the build reads (`registry_folder`: the configured folder, else the
    packaged one) and store it in ``dbus_registry_path``.  A registry that cannot be used is one
    warning here, at ``conf.py``, naming the setting; the setting then becomes ``""`` and every
    directive that needs the registry renders nothing without a warning of its own."""
    configured = config["dbus_registry_path"]
    try:
        config.dbus_registry_path = registry_folder(configured, "dbus_registry_path")
    except RegistryLocationError as error:
        config.dbus_registry_path = ""
        fix = "name a folder of introspection XML files, or leave the setting out to use the registry installed with the extension"
        message = f"{error}; {fix if configured else 'set dbus_registry_path to a folder of introspection XML files'}"
        warn("registry", message, _setting_location(os.path.join(app.confdir, "conf.py"), "dbus_registry_path"))


def _setting_location(conf_py: str, name: str) -> str:
    """``conf.py:LINE`` of the line that sets ``name`` (line 1 when it is not set there)."""
    try:
        with open(conf_py, encoding="utf-8", errors="replace") as stream:
            line = next((number for number, text in enumerate(stream, 1) if text.lstrip().startswith(name)), 1)
    except OSError:
        line = 1
    return f"{conf_py}:{line}"


def registry_in_use(config: Config) -> str | None:
    """The registry folder the build reads, or None when it is unusable (already reported)."""
    folder = config["dbus_registry_path"]
    return str(folder) if folder else None


def common_prefixes(config: Config) -> Sequence[str]:
    prefixes = config["dbus_index_common_prefix"] or ()
    return sorted((str(p) for p in prefixes), key=len, reverse=True)

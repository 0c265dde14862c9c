"""References to D-Bus objects this project does not render.

The domain resolves a reference among the project's own objects.  When none matches, Sphinx asks
``missing-reference`` handlers, in priority order:

1. intersphinx (priority 500): an inventory entry of the same full name and kind;
2. `resolve_in_qemu_inventory` (600): an inventory written by QEMU's own extension
   (``docs/sphinx/dbusdomain.py``), the one QEMU publishes until it switches.  That extension
   lists members under their bare names, one entry per name (of the two ``Press``, only the last
   is listed), and properties as ``dbus:member``, so intersphinx finds no member by its full name.
   Its pages give every member the id of its full name, though (``#org.qemu.Display1.Keyboard.Press``,
   checked on QEMU's own pages by ``tests/test_qemu_tree.py``), so a member whose interface the
   inventory lists, and whose bare name it lists with the same kind, is linked there exactly;
3. `resolve_in_registry` (900): an object of the registry in use, linked to the registry's
   published page (``dbus_registry_url``), else shown as code text without a warning.

Only then does the domain warn (``warn-missing-reference``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from docutils import nodes

from ..check.references import ROLE_KINDS

if TYPE_CHECKING:
    from docutils.nodes import Element
    from sphinx.addnodes import pending_xref
    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment

#: The inventory types QEMU's extension wrote for each kind of object.
QEMU_TYPES = {
    "interface": ("dbus:interface",),
    "method": ("dbus:method",),
    "signal": ("dbus:signal",),
    "property": ("dbus:member", "dbus:property"),
}
_MEMBER_KINDS = ("method", "signal", "property")


def resolve_in_qemu_inventory(
    app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: Element
) -> Element | None:
    if node.get("refdomain") == "dbus":
        kind = ROLE_KINDS.get(node["reftype"])
        kinds: tuple[str, ...] = (kind,) if kind in _MEMBER_KINDS else ()
    elif node.get("reftype") == "any":
        kinds = _MEMBER_KINDS
    else:
        return None
    inventories: dict[str, dict[str, dict[str, Any]]] = getattr(env, "intersphinx_named_inventory", {})
    if not kinds or not inventories:
        return None
    target = node["reftarget"].lstrip("~.")
    named, _, rest = target.partition(":")
    if rest and named in inventories:
        inventories, target = {named: inventories[named]}, rest
    interface, _, member = target.rpartition(".")
    if not interface or not member:
        return None
    for inventory in inventories.values():
        page = inventory.get("dbus:interface", {}).get(interface)
        if page is None:
            continue
        for found in kinds:
            if any(member in inventory.get(kind, {}) for kind in QEMU_TYPES[found]):
                project, version, uri = _fields(page)
                reference = nodes.reference(
                    "",
                    "",
                    internal=False,
                    refuri=f"{uri.partition('#')[0]}#{interface}.{member}",
                    reftitle=f"(in {project} v{version})" if version else f"(in {project})",
                )
                reference += contnode
                return reference
    return None


def _fields(item: Any) -> tuple[str, str, str]:
    """(project, version, uri) of an inventory item: a tuple up to Sphinx 8.1, an object after."""
    uri = getattr(item, "uri", None)
    if isinstance(uri, str):
        return item.project_name, item.project_version, uri
    project, version, uri, _ = item
    return project, version, uri


def resolve_in_registry(app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: Element) -> Element | None:
    if node.get("refdomain") != "dbus":
        return None
    from .domain import DBusDomain

    domain = env.get_domain("dbus")
    assert isinstance(domain, DBusDomain)
    return domain.registry_reference(node, contnode)


def setup(app: Sphinx) -> None:
    app.connect("missing-reference", resolve_in_qemu_inventory, priority=600)
    app.connect("missing-reference", resolve_in_registry, priority=900)
